import { useState } from "react";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";
import { agentsApi, callsApi, type CallFilters } from "../../api/endpoints";
import { useToast } from "../../components/Toast";
import { Button, EmptyState, ErrorState, PageHeader, SelectField, Spinner, TextField } from "../../components/ui";
import type { CallStatus } from "../../api/types";
import { dayToIso, fmtDateTime, fmtDuration, humanize } from "../../lib/format";
import { useDebounced } from "../../lib/useDebounced";
import { CallStatusBadge } from "./status";
import { DataTable } from "../../components/DataTable";

const FILTER_KEYS = ["q", "agent_id", "direction", "status", "success", "campaign_id", "from", "to"] as const;
const CALL_STATUSES: CallStatus[] = ["queued", "in_progress", "completed", "busy", "no_answer", "failed", "voicemail", "canceled"];

export default function CallLogPage() {
  const [params, setParams] = useSearchParams();
  const notify = useToast();
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const [q, setQ] = useState(params.get("q") ?? "");
  const debouncedQ = useDebounced(q, 350);
  const get = (k: string) => params.get(k) ?? "";
  const setParam = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };

  const filters: CallFilters = {
    q: debouncedQ.trim() || undefined,
    agent_id: get("agent_id") || undefined,
    direction: get("direction") || undefined,
    status: get("status") || undefined,
    success: get("success") || undefined,
    campaign_id: get("campaign_id") || undefined,
    since: dayToIso(get("from"), "start"),
    until: dayToIso(get("to"), "end"),
  };
  const calls = useInfiniteQuery({
    queryKey: ["calls", filters],
    queryFn: ({ pageParam }) => callsApi.list(filters, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  const [exporting, setExporting] = useState(false);
  const rows = calls.data?.pages.flatMap((p) => p.items) ?? [];
  const anyFilter = FILTER_KEYS.some((k) => get(k)) || !!q;
  const agentName = (id?: string | null) => agents.data?.find((a) => a.id === id)?.name;

  async function exportCsv() {
    setExporting(true);
    try {
      await callsApi.exportCsv(filters);
    } catch (e) {
      notify(`Export failed: ${e instanceof Error ? e.message : e}`, "bad");
    } finally {
      setExporting(false);
    }
  }

  return (
    <>
      <PageHeader
        title="Call log"
        subtitle="Every call, inbound and outbound, with its transcript and recording."
        actions={<Button onClick={() => void exportCsv()} busy={exporting}>Export CSV</Button>}
      />
      <form className="filters" role="search" aria-label="Filter calls" onSubmit={(e) => e.preventDefault()}>
        <TextField
          label="Search transcripts and numbers"
          type="search"
          value={q}
          onChange={(e) => {
            setQ(e.target.value);
            setParam("q", e.target.value);
          }}
          placeholder="e.g. refund, +1415…"
          className="grow"
        />
        <SelectField label="Agent" value={get("agent_id")} onChange={(e) => setParam("agent_id", e.target.value)}>
          <option value="">All agents</option>
          {(agents.data ?? []).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
        </SelectField>
        <SelectField label="Direction" value={get("direction")} onChange={(e) => setParam("direction", e.target.value)}>
          <option value="">Both</option>
          <option value="inbound">Inbound</option>
          <option value="outbound">Outbound</option>
        </SelectField>
        <SelectField label="Status" value={get("status")} onChange={(e) => setParam("status", e.target.value)}>
          <option value="">Any</option>
          {CALL_STATUSES.map((s) => <option key={s} value={s}>{humanize(s)}</option>)}
        </SelectField>
        <SelectField label="Analysis" value={get("success")} onChange={(e) => setParam("success", e.target.value)}>
          <option value="">Any</option>
          <option value="true">Successful</option>
          <option value="false">Not successful</option>
        </SelectField>
        <TextField label="From" type="date" value={get("from")} onChange={(e) => setParam("from", e.target.value)} />
        <TextField label="To" type="date" value={get("to")} onChange={(e) => setParam("to", e.target.value)} />
        {anyFilter && (
          <Button
            variant="ghost"
            className="filters-clear"
            onClick={() => {
              setQ("");
              setParams(new URLSearchParams(), { replace: true });
            }}
          >
            Clear filters
          </Button>
        )}
      </form>

      {calls.isPending ? (
        <Spinner label="Loading calls…" />
      ) : calls.isError ? (
        <ErrorState error={calls.error} onRetry={() => void calls.refetch()} />
      ) : rows.length === 0 ? (
        <EmptyState title={anyFilter ? "No calls match these filters" : "No calls yet"}>
          {anyFilter ? "Try a wider date range or clear the filters." : "Calls appear here as soon as they start. Try a browser test call."}
        </EmptyState>
      ) : (
        <>
          <DataTable caption="Calls, newest first" className="table-calls table-stack" columns={["Started", "Direction", "From → To", "Agent", "Duration", "Outcome"]}>
            {rows.map((c) => (
              <tr key={c.id}>
                <td data-label="Started">
                  <Link to={`/calls/${c.id}`} className="strong-link" aria-label={`Call at ${fmtDateTime(c.started_at)} from ${c.from_number}`}>
                    {fmtDateTime(c.started_at)}
                  </Link>
                </td>
                <td data-label="Direction">
                  <span aria-hidden="true">{c.direction === "inbound" ? "↙" : "↗"}</span> {c.direction}
                  {c.carrier === "browser" && <span className="muted small"> (browser)</span>}
                </td>
                <td data-label="From → To" className="mono nowrap">{c.from_number} → {c.to_number}</td>
                <td data-label="Agent">{c.agent_name ?? agentName(c.agent_id) ?? <span className="muted">—</span>}</td>
                <td data-label="Duration">{fmtDuration(c.duration_s)}</td>
                <td data-label="Outcome"><CallStatusBadge call={c} /></td>
              </tr>
            ))}
          </DataTable>
          <div className="pager" aria-live="polite">
            <span className="muted">{rows.length} call{rows.length === 1 ? "" : "s"} shown</span>
            {calls.hasNextPage && (
              <Button onClick={() => void calls.fetchNextPage()} busy={calls.isFetchingNextPage}>Load more</Button>
            )}
          </div>
        </>
      )}
    </>
  );
}
