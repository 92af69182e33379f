import { Fragment, useCallback, useMemo, useRef, useState, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import { callsApi } from "../../api/endpoints";
import { rawRequest } from "../../api/http";
import { Transcript } from "../../components/Transcript";
import { Card, ConfirmButton, EmptyState, ErrorState, errorMessage, PageHeader, Spinner } from "../../components/ui";
import { WaveformPlayer, type PlayerHandle } from "../../components/WaveformPlayer";
import { fmtDateTime, fmtDuration, fmtInt, fmtMs, humanize } from "../../lib/format";
import { CallStatusBadge } from "./status";
import { FlowPath } from "./FlowPath";

/**
 * The whole recording, streamed through the backend with the Authorization header (same origin: no token in a URL,
 * no object-store CORS). The bytes feed both the waveform (drawn from the samples) and playback.
 */
async function loadRecording(callId: string): Promise<ArrayBuffer> {
  const res = await rawRequest("GET", `/calls/${callId}/recording/audio`, { accept: "audio/wav, audio/*" });
  return res.arrayBuffer();
}

function percentile(values: number[], p: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export default function CallDetailPage() {
  const { callId } = useParams();
  const { can } = useAuth();
  const notify = useToast();
  const navigate = useNavigate();
  const call = useQuery({ queryKey: ["calls", callId], queryFn: () => callsApi.get(callId!) });
  const hasRecording = !!call.data && (call.data.has_recording ?? !!call.data.recording);
  const recording = useQuery({
    queryKey: ["calls", callId, "recording"],
    queryFn: () => loadRecording(callId!),
    enabled: hasRecording,
    staleTime: Infinity,
    retry: 1,
  });
  const [time, setTime] = useState(0);
  const playerRef = useRef<PlayerHandle>(null);
  const onTime = useCallback((t: number) => setTime(t), []);
  const turns = useMemo(() => [...(call.data?.turns ?? [])].sort((a, b) => a.start_ms - b.start_ms || a.turn_index - b.turn_index), [call.data]);
  const v2v = turns.map((t) => t.latency?.voice_to_voice_ms).filter((x): x is number => x != null);

  if (call.isPending) return <Spinner label="Loading call…" />;
  if (call.isError) return <ErrorState error={call.error} onRetry={() => void call.refetch()} />;
  const c = call.data;
  const u = c.usage ?? {};

  return (
    <>
      <PageHeader
        title={<><span className="mono">{c.from_number}</span> <span aria-hidden="true">→</span><span className="sr-only">to</span> <span className="mono">{c.to_number}</span></>}
        subtitle={<><Link to="/calls">Call log</Link> / {fmtDateTime(c.started_at)}</>}
        actions={<><CallStatusBadge call={c} />{can("admin") && c.ended_at ? (
          <ConfirmButton confirmLabel="Delete for good" label="Delete call" onConfirm={() => {
            callsApi.remove(c.id).then(() => { notify("Call deleted"); navigate("/calls"); },
                                       (e: unknown) => notify(errorMessage(e), "bad"));
          }}>Delete call</ConfirmButton>) : null}</>}
      />
      <div className="call-facts">
        <Fact label="Direction" value={`${humanize(c.direction)}${c.carrier === "browser" ? " (browser test)" : ` via ${c.carrier}`}`} />
        <Fact
          label="Agent"
          value={c.agent_id ? <Link to={`/agents/${c.agent_id}`}>{c.agent_name ?? "Agent"}{c.agent_version ? ` v${c.agent_version}` : ""}</Link> : "—"}
        />
        <Fact label="Duration" value={fmtDuration(c.duration_s)} />
        <Fact label="End reason" value={<>{humanize(c.end_reason)}{c.end_detail ? <span className="muted small"> · {c.end_detail}</span> : null}</>} />
        <Fact label="Voice-to-voice p50 / p95" value={`${fmtMs(percentile(v2v, 50))} / ${fmtMs(percentile(v2v, 95))}`} />
        {c.campaign_id && <Fact label="Campaign" value={<Link to={`/campaigns/${c.campaign_id}`}>Open campaign</Link>} />}
      </div>

      <Card title="Recording">
        {!hasRecording ? (
          <EmptyState title="No recording">{c.status === "in_progress" ? "The call is still in progress." : "Recording was off for this call, or it has not been uploaded yet."}</EmptyState>
        ) : recording.isPending ? (
          <Spinner label="Loading recording…" />
        ) : recording.isError ? (
          <ErrorState error={recording.error} title="Couldn't load the recording" onRetry={() => void recording.refetch()} />
        ) : (
          <WaveformPlayer ref={playerRef} wav={recording.data} turns={turns} onTime={onTime} />
        )}
      </Card>

      <div className="split split-wide">
        <Card title="Transcript">
          <Transcript turns={turns} currentTime={time} onSeek={(s) => playerRef.current?.seek(s, true)} />
        </Card>
        <div className="stack">
          <Card title="Usage">
            <dl className="kv kv-tight">
              <dt>Caller audio</dt><dd>{fmtDuration(u.caller_audio_s)}</dd>
              <dt>Agent audio</dt><dd>{fmtDuration(u.agent_audio_s)}</dd>
              <dt>STT audio</dt><dd>{u.stt_audio_s != null ? `${u.stt_audio_s.toFixed(1)} s` : "—"}</dd>
              <dt>LLM tokens (prompt / completion)</dt><dd>{fmtInt(u.llm_prompt_tokens)} / {fmtInt(u.llm_completion_tokens)}</dd>
              <dt>TTS characters</dt><dd>{fmtInt(u.tts_characters)}</dd>
            </dl>
          </Card>
          {c.cost && (
            <Card title="Cost">
              <dl className="kv kv-tight" aria-label="Cost breakdown">
                <dt>Telephony</dt><dd>{c.cost.telephony.toFixed(4)}</dd>
                <dt>STT / LLM / TTS</dt><dd>{c.cost.stt.toFixed(4)} / {c.cost.llm.toFixed(4)} / {c.cost.tts.toFixed(4)}</dd>
                <dt>Compute</dt><dd>{c.cost.compute.toFixed(4)}</dd>
                <dt>Total</dt><dd><strong>{c.cost.total.toFixed(4)} {c.cost.currency}</strong></dd>
              </dl>
            </Card>
          )}
          {c.analysis && (
            <Card title="Analysis">
              {c.analysis.status === "done" ? (
                <dl className="kv kv-tight" aria-label="Analysis result">
                  <dt>Summary</dt><dd>{c.analysis.summary}</dd>
                  {c.analysis.success != null && (<><dt>Success</dt><dd>{c.analysis.success ? "yes" : "no"}</dd></>)}
                  {Object.entries(c.analysis.data ?? {}).map(([k, v]) => (
                    <Fragment key={k}><dt>{k}</dt><dd>{String(v)}</dd></Fragment>
                  ))}
                </dl>
              ) : (
                <p className="muted">{c.analysis.status === "pending" ? "Analysing…" : `Failed: ${c.analysis.error ?? ""}`}</p>
              )}
            </Card>
          )}
          {c.flow_path && c.flow_path.length > 0 && <FlowPath steps={c.flow_path} variables={c.flow_variables ?? {}} />}
          {c.degradations && c.degradations.length > 0 && (
            <Card title="Service fallbacks">
              <ul className="plain-list" aria-label="Service fallbacks">
                {c.degradations.map((d, i) => (
                  <li key={i}>
                    <strong>{d.service.toUpperCase()}</strong> {d.from_endpoint ? <code>{d.from_endpoint}</code> : null} → <code>{humanize(d.to)}</code>
                    {d.reason ? <span className="muted small"> · {d.reason}</span> : null}
                  </li>
                ))}
              </ul>
            </Card>
          )}
          {c.tools && c.tools.length > 0 && (
            <Card title="Tool calls">
              <ul className="plain-list">
                {c.tools.map((t, i) => (
                  <li key={i}>
                    <code>{t.name}</code> {t.ok ? "✓" : "✗"} <span className="muted small">{fmtMs(t.duration_ms)}{t.detail ? ` · ${t.detail}` : ""}</span>
                    {t.arguments ? <div className="mono small">{t.arguments}</div> : null}
                  </li>
                ))}
              </ul>
            </Card>
          )}
        </div>
      </div>
    </>
  );
}

function Fact({ label, value }: { label: string; value: ReactNode }) {
  return (
    <div className="fact">
      <div className="fact-label">{label}</div>
      <div className="fact-value">{value}</div>
    </div>
  );
}
