import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { agentsApi, numbersApi, orgApi } from "../../api/endpoints";
import { ApiError } from "../../api/http";
import type { AgentSummary, Carrier, PhoneNumber } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, ConfirmButton, Dialog, EmptyState, ErrorState, InlineError, PageHeader, SelectField, Spinner,
  TextField,
} from "../../components/ui";
import { E164_RE } from "../../lib/csv";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

const CARRIERS: { id: Carrier; label: string; account: string; token: string }[] = [
  { id: "twilio", label: "Twilio", account: "Account SID", token: "Auth token" },
  { id: "vobiz", label: "Vobiz", account: "Auth ID", token: "Auth token" },
];

export default function PhoneNumbersPage() {
  const { can } = useAuth();
  const admin = can("admin");
  const numbers = useQuery({ queryKey: ["phone-numbers"], queryFn: numbersApi.list });
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const [adding, setAdding] = useState(false);

  return (
    <>
      <PageHeader
        title="Phone numbers"
        subtitle="Numbers your carriers route to the platform, and the agent that answers each."
        actions={admin ? <Button variant="primary" onClick={() => setAdding(true)}>Add number</Button> : null}
      />
      {numbers.isPending ? (
        <Spinner label="Loading numbers…" />
      ) : numbers.isError ? (
        <ErrorState error={numbers.error} onRetry={() => void numbers.refetch()} />
      ) : numbers.data.length === 0 ? (
        <EmptyState title="No phone numbers" action={admin ? <Button variant="primary" onClick={() => setAdding(true)}>Add number</Button> : null}>
          Add a Twilio or Vobiz number and pick the agent that answers it.
        </EmptyState>
      ) : (
        <DataTable caption="Phone numbers" columns={["Number", "Carrier", "Label", "Answered by", "Added", admin && { hidden: "Actions" }]}>
          {numbers.data.map((n) => (
            <NumberRow key={n.id} number={n} agents={agents.data ?? []} admin={admin} />
          ))}
        </DataTable>
      )}
      <CarrierCredentialsCard admin={admin} />
      <AddNumberDialog open={adding} onClose={() => setAdding(false)} agents={agents.data ?? []} />
    </>
  );
}

function NumberRow({ number, agents, admin }: { number: PhoneNumber; agents: AgentSummary[]; admin: boolean }) {
  const qc = useQueryClient();
  const notify = useToast();
  const link = useMutation({
    mutationFn: (agent_id: string | null) => numbersApi.update(number.id, { agent_id }),
    onSuccess: (n) => {
      qc.invalidateQueries({ queryKey: ["phone-numbers"] });
      const a = agents.find((x) => x.id === n.agent_id);
      notify(a ? `${n.number} now answered by ${a.name}` : `${n.number} unlinked`);
    },
    onError: (e) => notify(`Couldn't change the agent: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const remove = useMutation({
    mutationFn: () => numbersApi.remove(number.id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["phone-numbers"] });
      notify(`${number.number} removed`);
    },
    onError: (e) => notify(`Couldn't remove: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const agentName = agents.find((a) => a.id === number.agent_id)?.name;
  return (
    <tr>
      <td className="mono nowrap">{number.number}</td>
      <td><Badge>{number.carrier}</Badge></td>
      <td>{number.label || <span className="muted">—</span>}</td>
      <td>
        {admin ? (
          <SelectField
            label={<span className="sr-only">Agent for {number.number}</span>}
            className="field-inline"
            value={number.agent_id ?? ""}
            disabled={link.isPending}
            onChange={(e) => link.mutate(e.target.value || null)}
          >
            <option value="">Not linked (calls are rejected)</option>
            {agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </SelectField>
        ) : (
          agentName ?? <span className="muted">Not linked</span>
        )}
      </td>
      <td>{fmtDateTime(number.created_at)}</td>
      {admin && (
        <td className="row-actions">
          <ConfirmButton onConfirm={() => remove.mutate()} busy={remove.isPending} label={`Remove ${number.number}`} confirmLabel="Remove">
            Remove
          </ConfirmButton>
        </td>
      )}
    </tr>
  );
}

function AddNumberDialog({ open, onClose, agents }: { open: boolean; onClose: () => void; agents: AgentSummary[] }) {
  const qc = useQueryClient();
  const notify = useToast();
  const [form, setForm] = useState({ number: "", carrier: "twilio" as Carrier, label: "", agent_id: "" });
  const [touched, setTouched] = useState(false);
  const create = useMutation({
    mutationFn: () =>
      numbersApi.create({ number: form.number.trim(), carrier: form.carrier, label: form.label.trim() || null, agent_id: form.agent_id || null }),
    onSuccess: (n) => {
      qc.invalidateQueries({ queryKey: ["phone-numbers"] });
      notify(`${n.number} added`);
      setForm({ number: "", carrier: form.carrier, label: "", agent_id: "" });
      setTouched(false);
      onClose();
    },
  });
  const server = create.error instanceof ApiError ? create.error.fieldMap() : {};
  const numberError = touched && !E164_RE.test(form.number.trim()) ? "Use E.164: + country code and number, e.g. +14155550123" : server.number;

  function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (!E164_RE.test(form.number.trim())) return;
    create.mutate();
  }
  return (
    <Dialog
      title="Add a phone number"
      open={open}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="add-number-form" busy={create.isPending}>Add number</Button>
        </>
      }
    >
      <form id="add-number-form" onSubmit={submit} noValidate>
        <TextField
          label="Number"
          type="tel"
          inputMode="tel"
          autoComplete="off"
          placeholder="+14155550123"
          value={form.number}
          onChange={(e) => setForm({ ...form, number: e.target.value.replace(/[\s()-]/g, "") })}
          error={numberError}
        />
        <SelectField label="Carrier" value={form.carrier} onChange={(e) => setForm({ ...form, carrier: e.target.value as Carrier })} error={server.carrier}>
          {CARRIERS.map((c) => <option key={c.id} value={c.id}>{c.label}</option>)}
        </SelectField>
        <TextField label="Label (optional)" value={form.label} onChange={(e) => setForm({ ...form, label: e.target.value })} placeholder="Support line" />
        <SelectField label="Answered by" value={form.agent_id} onChange={(e) => setForm({ ...form, agent_id: e.target.value })} error={server.agent_id}>
          <option value="">Not linked yet</option>
          {agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
        </SelectField>
        <InlineError error={create.error && !Object.keys(server).length ? create.error : create.error instanceof ApiError && create.error.status === 409 ? create.error : null} />
      </form>
    </Dialog>
  );
}

/** Carrier credentials: write-only. The backend stores them encrypted and only ever returns masked values. */
function CarrierCredentialsCard({ admin }: { admin: boolean }) {
  const creds = useQuery({ queryKey: ["carrier-credentials"], queryFn: orgApi.carrierCredentials, enabled: admin });
  const [editing, setEditing] = useState<Carrier | null>(null);
  if (!admin) return null;
  return (
    <Card title="Carrier credentials">
      <p className="muted">
        Used to place outbound calls and verify carrier webhooks. They are stored encrypted and never shown again, only masked.
      </p>
      {creds.isPending ? (
        <Spinner label="Loading credentials…" />
      ) : creds.isError ? (
        <ErrorState error={creds.error} onRetry={() => void creds.refetch()} />
      ) : (
        <div className="cred-grid">
          {CARRIERS.map((c) => {
            const cur = creds.data.find((x) => x.carrier === c.id);
            return (
              <div key={c.id} className="cred-box">
                <div className="cred-head">
                  <strong>{c.label}</strong>
                  {cur ? <Badge tone="good">configured</Badge> : <Badge>not set</Badge>}
                </div>
                {cur && (
                  <dl className="kv">
                    <dt>{c.account}</dt>
                    <dd className="mono" data-testid={`${c.id}-account-masked`}>{cur.account_id_masked}</dd>
                    <dt>{c.token}</dt>
                    <dd className="mono" data-testid={`${c.id}-token-masked`}>{cur.auth_token_masked}</dd>
                    <dt>Updated</dt>
                    <dd>{fmtDateTime(cur.updated_at)}</dd>
                  </dl>
                )}
                {editing === c.id ? (
                  <CredentialForm carrier={c} onDone={() => setEditing(null)} />
                ) : (
                  <Button onClick={() => setEditing(c.id)}>{cur ? "Replace" : "Set"} {c.label} credentials</Button>
                )}
              </div>
            );
          })}
        </div>
      )}
    </Card>
  );
}

function CredentialForm({ carrier, onDone }: { carrier: (typeof CARRIERS)[number]; onDone: () => void }) {
  const qc = useQueryClient();
  const notify = useToast();
  const [account, setAccount] = useState("");
  const [token, setToken] = useState("");
  const save = useMutation({
    mutationFn: () => orgApi.setCarrierCredentials(carrier.id, { account_id: account.trim(), auth_token: token }),
    onSuccess: () => {
      // Drop the secret from memory as soon as it is stored.
      setToken("");
      setAccount("");
      qc.invalidateQueries({ queryKey: ["carrier-credentials"] });
      notify(`${carrier.label} credentials saved`);
      onDone();
    },
  });
  return (
    <form
      className="cred-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (account.trim() && token) save.mutate();
      }}
    >
      <TextField label={carrier.account} value={account} onChange={(e) => setAccount(e.target.value)} autoComplete="off" spellCheck={false} required />
      <TextField label={carrier.token} type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="new-password" required />
      <InlineError error={save.error} />
      <div className="row">
        <Button onClick={onDone}>Cancel</Button>
        <Button type="submit" variant="primary" busy={save.isPending} disabled={!account.trim() || !token}>Save</Button>
      </div>
    </form>
  );
}
