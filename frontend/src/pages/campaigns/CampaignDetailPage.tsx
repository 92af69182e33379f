import { useEffect, useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { agentsApi } from "../../api/endpoints";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import { Badge, Button, Card, ConfirmButton, EmptyState, ErrorState, PageHeader, SelectField, Spinner } from "../../components/ui";
import { fmtDateTime, humanize } from "../../lib/format";
import { campaignsApi, TERMINAL, WEEKDAYS, type Campaign, type Progress } from "./api";
import { CampaignProgress } from "./CampaignProgress";
import { statusTone } from "./CampaignsListPage";
import { DataTable } from "../../components/DataTable";

const DAY_LABEL: Record<string, string> = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
export const CONTACT_LABELS: Record<string, string> = {
  importing: "Importing", pending: "Waiting", dialing: "Dialing", completed: "Completed", voicemail: "Voicemail",
  busy: "Busy", no_answer: "No answer", failed: "Failed", dnc: "Do-not-call", canceled: "Canceled",
};
const CONTACT_STATUSES = ["pending", "dialing", "completed", "voicemail", "busy", "no_answer", "failed", "dnc", "canceled"];

export default function CampaignDetailPage() {
  const { campaignId } = useParams();
  const id = campaignId!;
  const { can } = useAuth();
  const notify = useToast();
  const qc = useQueryClient();
  const campaign = useQuery({ queryKey: ["campaigns", id], queryFn: () => campaignsApi.get(id) });
  const progress = useQuery({ queryKey: ["campaigns", id, "progress"], queryFn: () => campaignsApi.progress(id) });
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const [live, setLive] = useState<"connecting" | "open" | "retrying" | "closed">("closed");
  const [statusFilter, setStatusFilter] = useState("");
  const statusRef = useRef<string | undefined>(undefined);
  const contactsRefreshed = useRef(0);
  statusRef.current = campaign.data?.status;

  const contacts = useQuery({
    queryKey: ["campaigns", id, "contacts", statusFilter],
    queryFn: () => campaignsApi.contacts(id, statusFilter || undefined),
    enabled: campaign.isSuccess,
  });

  const setStatus = (status: Campaign["status"]) =>
    qc.setQueryData<Campaign>(["campaigns", id], (c) => (c ? { ...c, status } : c));

  // Live progress over SSE while the campaign can still change; the stream ends itself once it is terminal.
  const active = campaign.data && !TERMINAL.includes(campaign.data.status);
  useEffect(() => {
    if (!active) return;
    const handle = campaignsApi.events(
      id,
      (ev) => {
        if (ev.type === "progress") {
          const { type: _t, ...p } = ev;
          qc.setQueryData<Progress>(["campaigns", id, "progress"], p);
          if (p.status !== statusRef.current) setStatus(p.status);
          // Outcomes changed: refresh the contact table (one page), at most every 2 s.
          if (Date.now() - contactsRefreshed.current > 2000) {
            contactsRefreshed.current = Date.now();
            void qc.invalidateQueries({ queryKey: ["campaigns", id, "contacts"] });
          }
          if (TERMINAL.includes(p.status)) void qc.invalidateQueries({ queryKey: ["campaigns", id] });
        } else if (ev.type === "end") {
          void qc.invalidateQueries({ queryKey: ["campaigns", id] });
          void qc.invalidateQueries({ queryKey: ["campaigns", id, "contacts"] });
        }
      },
      (s) => setLive(s as typeof live),
      () => TERMINAL.includes(statusRef.current as never),
    );
    return () => handle.close();
  }, [active, id, qc]);

  const action = useMutation({
    mutationFn: (a: "start" | "pause" | "resume" | "cancel") => campaignsApi.action(id, a),
    onSuccess: (c) => {
      qc.setQueryData(["campaigns", id], c);
      qc.invalidateQueries({ queryKey: ["campaigns"], exact: true });
      void qc.invalidateQueries({ queryKey: ["campaigns", id, "progress"] });
      notify(`Campaign ${c.status}`);
    },
    onError: (e) => notify(`Couldn't do that: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const [downloading, setDownloading] = useState(false);

  if (campaign.isPending) return <Spinner label="Loading campaign…" />;
  if (campaign.isError) return <ErrorState error={campaign.error} onRetry={() => void campaign.refetch()} />;
  const c = campaign.data;
  const admin = can("admin");
  const busy = action.isPending;
  const windowDays = c.windows?.days ?? {};
  const days = WEEKDAYS.filter((d) => windowDays[d]?.length);

  return (
    <>
      <PageHeader
        title={c.name}
        subtitle={<><Link to="/campaigns">Campaigns</Link> / <Badge tone={statusTone(c.status)}>{c.status}</Badge></>}
        actions={
          <>
            {admin && c.status === "draft" && <Button variant="primary" busy={busy} onClick={() => action.mutate("start")}>Start</Button>}
            {admin && c.status === "running" && <Button busy={busy} onClick={() => action.mutate("pause")}>Pause</Button>}
            {admin && c.status === "paused" && <Button variant="primary" busy={busy} onClick={() => action.mutate("resume")}>Resume</Button>}
            {admin && !TERMINAL.includes(c.status) && (
              <ConfirmButton onConfirm={() => action.mutate("cancel")} confirmLabel="Cancel campaign for good" label="Cancel campaign">Cancel</ConfirmButton>
            )}
            <Button
              busy={downloading}
              onClick={async () => {
                setDownloading(true);
                try {
                  await campaignsApi.report(id, c.name);
                } catch (e) {
                  notify(`Report failed: ${e instanceof Error ? e.message : e}`, "bad");
                } finally {
                  setDownloading(false);
                }
              }}
            >
              Download outcome report
            </Button>
          </>
        }
      />
      <Card
        title="Progress"
        actions={
          active ? (
            <span className="live-dot" data-state={live} aria-live="polite">
              {live === "open" ? "Live" : live === "retrying" ? "Reconnecting…" : "Connecting…"}
            </span>
          ) : null
        }
      >
        {progress.isPending ? (
          <Spinner label="Loading progress…" />
        ) : progress.isError ? (
          <ErrorState error={progress.error} onRetry={() => void progress.refetch()} />
        ) : (
          <CampaignProgress progress={progress.data} />
        )}
      </Card>
      <div className="split">
        <Card title="Settings">
          <dl className="kv">
            <dt>Agent</dt><dd>{agents.data?.find((a) => a.id === c.agent_id)?.name ?? "—"}</dd>
            <dt>Calling hours</dt>
            <dd>
              {days.map((d) => `${DAY_LABEL[d]} ${windowDays[d]!.map((r) => `${r.start}–${r.end}`).join(", ")}`).join("; ") || "none"} ({c.windows?.timezone ?? "UTC"}
              {c.windows?.use_contact_timezone ? ", or the contact's own" : ""})
            </dd>
            <dt>Limits</dt><dd>{c.max_concurrent_calls} live calls · {c.calls_per_second}/s</dd>
            <dt>Retries</dt>
            <dd>{Object.entries(c.retry ?? {}).map(([o, r]) => `${humanize(o)} ×${r?.max_attempts ?? 1}`).join(", ")}</dd>
            <dt>Voicemail</dt><dd>{c.voicemail?.action === "leave_message" ? "Leave a message" : "Hang up"}</dd>
            <dt>Created</dt><dd>{fmtDateTime(c.created_at)}</dd>
            <dt>Started</dt><dd>{fmtDateTime(c.started_at)}</dd>
            <dt>Finished</dt><dd>{fmtDateTime(c.completed_at ?? c.canceled_at)}</dd>
          </dl>
          <Link to={`/calls?campaign_id=${c.id}`}>See this campaign's calls</Link>
        </Card>
        <Card
          title="Contacts"
          actions={
            <SelectField label={<span className="sr-only">Filter contacts by status</span>} className="field-inline" value={statusFilter} onChange={(e) => setStatusFilter(e.target.value)}>
              <option value="">All statuses</option>
              {CONTACT_STATUSES.map((s) => <option key={s} value={s}>{CONTACT_LABELS[s]}</option>)}
            </SelectField>
          }
        >
          {contacts.isPending ? (
            <Spinner label="Loading contacts…" />
          ) : contacts.isError ? (
            <ErrorState error={contacts.error} onRetry={() => void contacts.refetch()} />
          ) : contacts.data.items.length === 0 ? (
            <EmptyState title="No contacts here" />
          ) : (
            <DataTable caption="Contacts" className="table-compact" columns={["Phone", "Status", "Dials", "Next attempt", { hidden: "Call" }]}>
              {contacts.data.items.map((ct) => (
                <tr key={ct.id}>
                  <td className="mono">{ct.phone}</td>
                  <td>{CONTACT_LABELS[ct.status] ?? humanize(ct.status)}</td>
                  <td>{ct.dials}</td>
                  <td>{fmtDateTime(ct.next_attempt_at)}</td>
                  <td>{ct.last_call_id && <Link to={`/calls/${ct.last_call_id}`}>Call</Link>}</td>
                </tr>
              ))}
            </DataTable>
          )}
        </Card>
      </div>
    </>
  );
}
