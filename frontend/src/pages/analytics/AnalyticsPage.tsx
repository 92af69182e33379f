import { useMemo, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { agentsApi, analyticsApi } from "../../api/endpoints";
import { campaignsApi } from "../campaigns/api";
import type { DayPoint } from "../../api/types";
import { BarChart, LineChart } from "../../components/charts";
import { Card, EmptyState, ErrorState, PageHeader, SelectField, Spinner } from "../../components/ui";
import { fmtDate, fmtDuration, fmtInt, fmtMs, fmtPct } from "../../lib/format";
import { CostCharts, Kpi } from "./CostCharts";
import { utcDay } from "./days";

export interface FilledDay {
  date: string;
  calls: number;
  answered: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

/** Every UTC day of the range (the backend buckets by UTC day), zeros where there were no calls. */
export function fillDays(points: DayPoint[], days: number, until = new Date()): FilledDay[] {
  const byDate = new Map(points.map((p) => [p.date.slice(0, 10), p]));
  const out: FilledDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const key = utcDay(new Date(until.getTime() - i * 86_400_000));
    const p = byDate.get(key);
    out.push({ date: key, calls: p?.calls ?? 0, answered: p?.answered ?? 0, p50_ms: p?.p50_ms ?? null, p95_ms: p?.p95_ms ?? null });
  }
  return out;
}

export default function AnalyticsPage() {
  const [days, setDays] = useState(30);
  const [agentId, setAgentId] = useState("");
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const now = new Date();
  const query = { since: utcDay(new Date(now.getTime() - (days - 1) * 86_400_000)), until: utcDay(now), agent_id: agentId || undefined };
  const data = useQuery({ queryKey: ["analytics", days, agentId], queryFn: () => analyticsApi.summary(query) });
  const costs = useQuery({ queryKey: ["analytics-costs", days], queryFn: () => analyticsApi.costs({ since: query.since, until: query.until }) });
  const campaigns = useQuery({ queryKey: ["campaigns"], queryFn: campaignsApi.list });
  const agentNames = useMemo(() => new Map((agents.data ?? []).map((a) => [a.id, a.name])), [agents.data]);
  const campaignNames = useMemo(() => new Map((campaigns.data ?? []).map((c) => [c.id, c.name])), [campaigns.data]);
  const filled = useMemo(() => (data.data ? fillDays(data.data.per_day, days) : []), [data.data, days]);
  const hasDailyLatency = filled.some((d) => d.p50_ms != null);
  const labels = filled.map((d) => fmtDate(d.date));

  return (
    <>
      <PageHeader title="Analytics" subtitle="Volume, answer rate, how fast agents respond and what calls cost (days in UTC)." />
      <div className="filters" role="group" aria-label="Analytics range">
        <SelectField label="Range" value={String(days)} onChange={(e) => setDays(Number(e.target.value))}>
          <option value="7">Last 7 days</option>
          <option value="30">Last 30 days</option>
          <option value="90">Last 90 days</option>
        </SelectField>
        <SelectField label="Agent" value={agentId} onChange={(e) => setAgentId(e.target.value)}>
          <option value="">All agents</option>
          {(agents.data ?? []).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
        </SelectField>
      </div>
      {data.isPending ? (
        <Spinner label="Crunching numbers…" />
      ) : data.isError ? (
        <ErrorState error={data.error} onRetry={() => void data.refetch()} />
      ) : (
        <>
          <div className="kpis">
            <Kpi label="Calls" value={fmtInt(data.data.total_calls)} />
            <Kpi label="Answer rate" value={fmtPct(data.data.answer_rate)} />
            <Kpi label="Average duration" value={fmtDuration(data.data.avg_duration_s)} />
            <Kpi label="Voice-to-voice p50" value={fmtMs(data.data.voice_to_voice_p50_ms)} />
            <Kpi label="Voice-to-voice p95" value={fmtMs(data.data.voice_to_voice_p95_ms)} />
          </div>
          {data.data.total_calls === 0 ? (
            <EmptyState title="No calls in this range">Charts appear once calls come in.</EmptyState>
          ) : (
            <div className="chart-grid">
              <Card>
                <BarChart
                  title="Calls per day"
                  labels={labels}
                  stacked
                  integer
                  series={[
                    { name: "Answered", tone: "a", values: filled.map((d) => d.answered) },
                    { name: "Not answered", tone: "c", values: filled.map((d) => d.calls - d.answered) },
                  ]}
                  format={(v) => fmtInt(v)}
                  summary={`${fmtInt(data.data.total_calls)} calls over ${days} days, busiest day ${fmtInt(Math.max(...filled.map((d) => d.calls)))}.`}
                />
              </Card>
              <Card>
                <LineChart
                  title="Answer rate"
                  labels={labels}
                  yMax={1}
                  series={[{ name: "Answered", tone: "a", values: filled.map((d) => (d.calls ? d.answered / d.calls : null)) }]}
                  format={(v) => fmtPct(v)}
                  summary={`Overall ${fmtPct(data.data.answer_rate)}.`}
                />
              </Card>
              <Card className="span-2">
                <LineChart
                  title="Voice-to-voice latency per day"
                  labels={labels}
                  series={[
                    { name: "p50", tone: "a", values: filled.map((d) => d.p50_ms) },
                    { name: "p95", tone: "b", values: filled.map((d) => d.p95_ms) },
                  ]}
                  format={(v) => fmtMs(v)}
                  summary={
                    hasDailyLatency
                      ? `p50 ${fmtMs(data.data.voice_to_voice_p50_ms)}, p95 ${fmtMs(data.data.voice_to_voice_p95_ms)} over the range (${fmtInt(data.data.latency_samples)} turns).`
                      : "No answered turns with a measured latency in this range."
                  }
                />
              </Card>
              <Card title="Usage" className="span-2">
                <dl className="kv kv-row">
                  <dt>Caller audio</dt><dd>{fmtDuration(data.data.usage.caller_audio_s)}</dd>
                  <dt>Agent audio</dt><dd>{fmtDuration(data.data.usage.agent_audio_s)}</dd>
                  <dt>STT audio</dt><dd>{fmtDuration(data.data.usage.stt_audio_s)}</dd>
                  <dt>LLM tokens</dt><dd>{fmtInt((data.data.usage.llm_prompt_tokens ?? 0) + (data.data.usage.llm_completion_tokens ?? 0))}</dd>
                  <dt>TTS characters</dt><dd>{fmtInt(data.data.usage.tts_characters)}</dd>
                </dl>
              </Card>
            </div>
          )}
        </>
      )}
      {/* Costs cover every agent (the agent filter applies to the charts above). */}
      {costs.isError ? (
        <ErrorState error={costs.error} onRetry={() => void costs.refetch()} />
      ) : costs.data ? (
        <CostCharts costs={costs.data} days={days} agentNames={agentNames} campaignNames={campaignNames} />
      ) : null}
    </>
  );
}
