import { useEffect, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { http } from "../../api/http";
import { useToast } from "../../components/Toast";
import { Button, Card, ErrorState, errorMessage, NumberField, Spinner, TextField } from "../../components/ui";
import { fmtDateTime, humanize } from "../../lib/format";

interface Retention {
  recordings_days: number | null;
  transcripts_days: number | null;
  metadata_days: number | null;
}

interface Erasure {
  id: string;
  call_id: string;
  scope: string;
  reason: string;
  objects_deleted: number;
  at: string;
}

/** Owners and admins: retention periods, "forget this number", and the record of what was deleted. */
export function PrivacyTab() {
  const notify = useToast();
  const client = useQueryClient();
  const retention = useQuery({ queryKey: ["retention"], queryFn: () => http.get<Retention>("/privacy/retention") });
  const erasures = useQuery({ queryKey: ["erasures"], queryFn: () => http.get<Erasure[]>("/privacy/erasures") });
  const [draft, setDraft] = useState<Retention | null>(null);
  const [number, setNumber] = useState("");
  useEffect(() => {
    if (retention.data) setDraft(retention.data);
  }, [retention.data]);
  if (retention.isPending || !draft) return <Spinner label="Loading privacy settings…" />;
  if (retention.isError) return <ErrorState error={retention.error} onRetry={() => void retention.refetch()} />;
  const save = async () => {
    try {
      await http.put<Retention>("/privacy/retention", draft);
      notify("Retention saved");
      await client.invalidateQueries({ queryKey: ["retention"] });
    } catch (e) {
      notify(errorMessage(e), "bad");
    }
  };
  const forget = async () => {
    try {
      const out = await http.post<{ calls: number; contacts: number }>("/privacy/forget-number", { number });
      notify(`Forgotten: ${out.calls} calls, ${out.contacts} contacts`);
      setNumber("");
      await client.invalidateQueries({ queryKey: ["erasures"] });
    } catch (e) {
      notify(errorMessage(e), "bad");
    }
  };
  const field = (key: keyof Retention, label: string) => (
    <NumberField label={label} hint="Days after the call ends; empty keeps it" min={1} max={3650} step={1}
                 value={draft[key]} onValue={(v) => setDraft({ ...draft, [key]: v })} />
  );
  return (
    <>
      <Card title="Retention">
        {field("recordings_days", "Delete recordings after")}
        {field("transcripts_days", "Delete transcripts after")}
        {field("metadata_days", "Delete calls entirely after")}
        <Button onClick={() => void save()}>Save retention</Button>
      </Card>
      <Card title="Forget a phone number">
        <TextField label="Phone number (E.164)" value={number} onChange={(e) => setNumber(e.target.value)}
                   placeholder="+14155550100" />
        <Button variant="danger" disabled={!number.trim()} onClick={() => void forget()}>Forget every call and contact</Button>
      </Card>
      <Card title="Deleted recently">
        {erasures.data?.length ? (
          <ul>
            {erasures.data.slice(0, 50).map((e) => (
              <li key={e.id}>{fmtDateTime(e.at)} · {humanize(e.scope)} of call <span className="mono">{e.call_id.slice(0, 10)}</span> · {humanize(e.reason)}</li>
            ))}
          </ul>
        ) : <p className="muted">Nothing deleted yet.</p>}
      </Card>
    </>
  );
}
