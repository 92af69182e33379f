import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { orgApi } from "../../api/endpoints";
import { useToast } from "../../components/Toast";
import {
  Button, Card, ConfirmButton, EmptyState, ErrorState, InlineError, Spinner, TextArea, TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

/** Organisation secrets: keys for an agent's own AI endpoints and headers for its tools. Write-only: a value is
 * sent once and never shown again; saving an existing name rotates it. */
export function SecretsTab() {
  const qc = useQueryClient();
  const notify = useToast();
  const secrets = useQuery({ queryKey: ["secrets"], queryFn: orgApi.secrets });
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const save = useMutation({
    mutationFn: () => orgApi.putSecret(name.trim(), value),
    onSuccess: (s) => {
      notify(s.version > 1 ? `Secret “${s.name}” rotated` : `Secret “${s.name}” saved`);
      setName("");
      setValue("");
      qc.invalidateQueries({ queryKey: ["secrets"] });
    },
  });
  const remove = useMutation({
    mutationFn: (n: string) => orgApi.deleteSecret(n),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["secrets"] }),
  });
  function submit(e: FormEvent) {
    e.preventDefault();
    if (name.trim() && value) save.mutate();
  }
  return (
    <Card title="Secrets">
      <p className="muted">
        API keys for your own LLM, speech-to-text or text-to-speech endpoints, and HTTP headers for tools (a JSON
        object such as <code>{'{"Authorization": "Bearer …"}'}</code>). Agents refer to them by name. Values are
        encrypted and never shown again; saving an existing name rotates it.
      </p>
      <form className="inline-form" onSubmit={submit}>
        <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} placeholder="crm-headers" maxLength={64} autoComplete="off" />
        <TextArea label="Value" value={value} onChange={(e) => setValue(e.target.value)} className="grow" rows={2} autoComplete="off" />
        <Button type="submit" variant="primary" busy={save.isPending} disabled={!name.trim() || !value}>Save secret</Button>
      </form>
      <InlineError error={save.error ?? remove.error} />
      {secrets.isPending ? (
        <Spinner label="Loading secrets…" />
      ) : secrets.isError ? (
        <ErrorState error={secrets.error} onRetry={() => void secrets.refetch()} />
      ) : secrets.data.length === 0 ? (
        <EmptyState title="No secrets" />
      ) : (
        <DataTable caption="Secrets" columns={["Name", "Value", "Version", "Updated", "By", { hidden: "Actions" }]}>
          {secrets.data.map((s) => (
            <tr key={s.name}>
              <td className="mono">{s.name}</td>
              <td className="mono">{s.value_masked}</td>
              <td>{s.version}</td>
              <td>{fmtDateTime(s.updated_at)}</td>
              <td>{s.updated_by ?? ""}</td>
              <td className="row-actions">
                <ConfirmButton onConfirm={() => remove.mutate(s.name)} label={`Delete secret ${s.name}`} confirmLabel="Delete">
                  Delete
                </ConfirmButton>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </Card>
  );
}
