import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { orgApi } from "../../api/endpoints";
import type { ApiKey } from "../../api/types";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, ConfirmButton, EmptyState, ErrorState, InlineError, OneTimeSecret, SelectField, Spinner, TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

export function ApiKeysTab() {
  const qc = useQueryClient();
  const notify = useToast();
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: orgApi.apiKeys });
  const [name, setName] = useState("");
  const [role, setRole] = useState<"member" | "admin">("member");
  const [created, setCreated] = useState<ApiKey | null>(null);
  const create = useMutation({
    mutationFn: () => orgApi.createApiKey(name.trim(), role),
    onSuccess: (k) => {
      setCreated(k);
      setName("");
      qc.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => orgApi.revokeApiKey(id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["api-keys"] });
      notify("Key revoked; requests using it now fail");
    },
  });
  function submit(e: FormEvent) {
    e.preventDefault();
    if (name.trim()) create.mutate();
  }
  return (
    <Card title="API keys">
      <p className="muted">For scripts and integrations: send it as <code>X-API-Key: &lt;key&gt;</code>. Keys are stored hashed and can never manage members or other keys.</p>
      <form className="inline-form" onSubmit={submit}>
        <TextField label="Key name" value={name} onChange={(e) => setName(e.target.value)} placeholder="CRM sync" className="grow" maxLength={100} />
        <SelectField label="Access" value={role} onChange={(e) => setRole(e.target.value as "member" | "admin")}>
          <option value="member">Read-only (member)</option>
          <option value="admin">Read and write (admin)</option>
        </SelectField>
        <Button type="submit" variant="primary" busy={create.isPending} disabled={!name.trim()}>Create key</Button>
      </form>
      <InlineError error={create.error} />
      {created?.key && <OneTimeSecret label={`New key “${created.name}”`} value={created.key} />}
      {keys.isPending ? (
        <Spinner label="Loading keys…" />
      ) : keys.isError ? (
        <ErrorState error={keys.error} onRetry={() => void keys.refetch()} />
      ) : keys.data.length === 0 ? (
        <EmptyState title="No API keys" />
      ) : (
        <DataTable caption="API keys" columns={["Name", "Key", "Access", "Created", "Last used", { hidden: "Actions" }]}>
          {keys.data.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td className="mono">{k.prefix}…</td>
              <td><Badge>{k.role}</Badge></td>
              <td>{fmtDateTime(k.created_at)}</td>
              <td>{k.last_used_at ? fmtDateTime(k.last_used_at) : <span className="muted">never</span>}</td>
              <td className="row-actions">
                {k.revoked_at ? (
                  <Badge tone="bad">revoked</Badge>
                ) : (
                  <ConfirmButton onConfirm={() => revoke.mutate(k.id)} label={`Revoke key ${k.name}`} confirmLabel="Revoke">
                    Revoke
                  </ConfirmButton>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </Card>
  );
}
