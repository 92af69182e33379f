import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { orgApi } from "../../api/endpoints";
import type { Webhook } from "../../api/types";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, Checkbox, ConfirmButton, EmptyState, ErrorState, InlineError, OneTimeSecret, Spinner,
  TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

/** The backend's KNOWN_EVENTS (backend/models/webhooks.py); `campaign.*` subscribes to every campaign event. */
export const WEBHOOK_EVENTS = [
  { id: "call.started", label: "Call started" },
  { id: "call.ended", label: "Call ended" },
  { id: "call.transcript", label: "Transcript ready" },
  { id: "campaign.*", label: "Every campaign event" },
  { id: "campaign.started", label: "Campaign started" },
  { id: "campaign.paused", label: "Campaign paused" },
  { id: "campaign.resumed", label: "Campaign resumed" },
  { id: "campaign.completed", label: "Campaign completed" },
  { id: "campaign.canceled", label: "Campaign canceled" },
  { id: "campaign.contact_finished", label: "A campaign contact finished" },
];

export function WebhooksTab() {
  const qc = useQueryClient();
  const hooks = useQuery({ queryKey: ["webhooks"], queryFn: orgApi.webhooks });
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["call.ended"]);
  const [created, setCreated] = useState<Webhook | null>(null);
  const create = useMutation({
    mutationFn: () => orgApi.createWebhook(url.trim(), events),
    onSuccess: (w) => {
      setCreated(w);
      setUrl("");
      qc.invalidateQueries({ queryKey: ["webhooks"] });
    },
  });
  const validUrl = /^https?:\/\/\S+$/.test(url.trim());
  function submit(e: FormEvent) {
    e.preventDefault();
    if (validUrl && events.length) create.mutate();
  }
  return (
    <>
      <Card title="Add a webhook">
        <p className="muted">
          We POST JSON to your URL, signed with HMAC-SHA256 in the <code>X-Voiceagent-Signature</code> header, and retry with backoff.
        </p>
        <form onSubmit={submit} noValidate>
          <TextField label="Endpoint URL" type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://example.com/hooks/voice" error={url && !validUrl ? "Enter an http(s) URL" : null} />
          <fieldset className="checks">
            <legend>Events</legend>
            {WEBHOOK_EVENTS.map((ev) => (
              <Checkbox
                key={ev.id}
                label={<>{ev.label} <code className="muted small">{ev.id}</code></>}
                checked={events.includes(ev.id)}
                onChange={(v) => setEvents((cur) => (v ? [...cur, ev.id] : cur.filter((x) => x !== ev.id)))}
              />
            ))}
          </fieldset>
          <InlineError error={create.error} />
          <Button type="submit" variant="primary" busy={create.isPending} disabled={!validUrl || !events.length}>Add webhook</Button>
        </form>
        {created?.secret && <OneTimeSecret label={`Signing secret for ${created.url}`} value={created.secret} />}
      </Card>
      <Card title="Webhooks">
        {hooks.isPending ? (
          <Spinner label="Loading webhooks…" />
        ) : hooks.isError ? (
          <ErrorState error={hooks.error} onRetry={() => void hooks.refetch()} />
        ) : hooks.data.length === 0 ? (
          <EmptyState title="No webhooks" />
        ) : (
          <ul className="plain-list">
            {hooks.data.map((w) => <WebhookRow key={w.id} hook={w} />)}
          </ul>
        )}
      </Card>
    </>
  );
}

function WebhookRow({ hook }: { hook: Webhook }) {
  const qc = useQueryClient();
  const notify = useToast();
  const [open, setOpen] = useState(false);
  const deliveries = useQuery({ queryKey: ["webhooks", hook.id, "deliveries"], queryFn: () => orgApi.deliveries(hook.id), enabled: open });
  const toggle = useMutation({
    mutationFn: () => orgApi.updateWebhook(hook.id, { active: !hook.active }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["webhooks"] }),
    onError: (e) => notify(`Couldn't update: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const remove = useMutation({
    mutationFn: () => orgApi.deleteWebhook(hook.id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["webhooks"] });
      notify("Webhook deleted");
    },
  });
  return (
    <li className="webhook">
      <div className="list-row">
        <span className="mono break">{hook.url}</span>
        {hook.active ? <Badge tone="good">active</Badge> : <Badge>paused</Badge>}
        <span className="muted small">{hook.events.join(", ")}</span>
        <span className="grow" />
        <Button variant="ghost" aria-expanded={open} onClick={() => setOpen((o) => !o)}>Deliveries</Button>
        <Button variant="ghost" busy={toggle.isPending} onClick={() => toggle.mutate()}>{hook.active ? "Pause" : "Resume"}</Button>
        <ConfirmButton onConfirm={() => remove.mutate()} label={`Delete webhook ${hook.url}`} confirmLabel="Delete">Delete</ConfirmButton>
      </div>
      {open && (
        <div className="deliveries">
          {deliveries.isPending ? (
            <Spinner label="Loading deliveries…" />
          ) : deliveries.isError ? (
            <InlineError error={deliveries.error} />
          ) : deliveries.data.length === 0 ? (
            <p className="muted">Nothing delivered yet.</p>
          ) : (
            <DataTable caption="Recent deliveries" className="table-compact" columns={["When", "Event", "Status", "Attempts", "Response"]}>
              {deliveries.data.map((d) => (
                <tr key={d.id}>
                  <td>{fmtDateTime(d.created_at)}</td>
                  <td><code>{d.event}</code></td>
                  <td><Badge tone={d.status === "delivered" ? "good" : d.status === "failed" ? "bad" : "info"}>{d.status}</Badge></td>
                  <td>{d.attempts}</td>
                  <td>{d.response_status ?? "—"}{d.error ? <span className="muted small"> {d.error}</span> : null}</td>
                </tr>
              ))}
            </DataTable>
          )}
        </div>
      )}
    </li>
  );
}
