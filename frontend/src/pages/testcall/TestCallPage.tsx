import { useEffect, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { agentsApi, testCallApi } from "../../api/endpoints";
import { Badge, Button, Card, EmptyState, InlineError, PageHeader, SelectField, Spinner } from "../../components/ui";
import { BrowserCall, type CallState, type TranscriptEvent } from "../../lib/browserCall";
import { fmtDuration } from "../../lib/format";
import { Keypad } from "./Keypad";

interface Line extends TranscriptEvent {
  id: number;
}

/** Interim transcripts replace the previous interim line of the same speaker; a final one settles it. */
export function applyTranscript(lines: Line[], ev: TranscriptEvent, nextId: () => number): Line[] {
  const last = [...lines].reverse().find((l) => l.role === ev.role);
  if (last && !last.final) return lines.map((l) => (l.id === last.id ? { ...ev, id: l.id } : l));
  return [...lines, { ...ev, id: nextId() }];
}

const STATE_LABEL: Record<CallState, string> = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  ending: "Hanging up…",
  ended: "Call ended",
  failed: "Failed",
};

export default function TestCallPage() {
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const [agentId, setAgentId] = useState("");
  const [state, setState] = useState<CallState>("idle");
  const [detail, setDetail] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [lines, setLines] = useState<Line[]>([]);
  const [level, setLevel] = useState(0);
  const [muted, setMuted] = useState(false);
  const [agentSpeaking, setAgentSpeaking] = useState(false);
  const [bargeIns, setBargeIns] = useState(0);
  const [keysWanted, setKeysWanted] = useState(false);
  const [callId, setCallId] = useState<string | null>(null);
  const [startedAt, setStartedAt] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());
  const callRef = useRef<BrowserCall | null>(null);
  const idRef = useRef(0);
  const supported = typeof window !== "undefined" && !!navigator.mediaDevices?.getUserMedia && "WebSocket" in window && "AudioContext" in window;

  useEffect(() => {
    if (!agentId && agents.data?.length) setAgentId(agents.data[0].id);
  }, [agents.data, agentId]);
  useEffect(() => () => callRef.current?.hangup(), []);
  useEffect(() => {
    if (state !== "live") return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [state]);

  async function start() {
    setError(null);
    setDetail(null);
    setLines([]);
    setBargeIns(0);
    setKeysWanted(false);
    setCallId(null);
    setState("connecting");
    try {
      const session = await testCallApi.start(agentId);
      setCallId(session.call_id);
      const call = new BrowserCall(session.ws_url, {
        onState: (s, d) => {
          setState(s);
          if (d) setDetail(d);
          if (s === "live") setStartedAt(Date.now());
        },
        onReady: (id) => id && setCallId(id),
        onTranscript: (ev) => setLines((ls) => applyTranscript(ls, ev, () => ++idRef.current)),
        onClear: () => setBargeIns((n) => n + 1),
        onKeypad: setKeysWanted,
        onEnd: (reason) => setDetail(`Ended: ${reason.replace(/_/g, " ")}`),
        onLevel: setLevel,
        onAgentSpeaking: setAgentSpeaking,
      });
      callRef.current = call;
      await call.start();
    } catch (e) {
      setError(e);
      setState("failed");
    }
  }

  const live = state === "live" || state === "connecting";
  return (
    <>
      <PageHeader title="Browser test call" subtitle="Talk to an agent from your microphone through the same pipeline as a phone call." />
      {!supported && <InlineError error={new Error("This browser can't capture the microphone (needs HTTPS or localhost, WebSocket and Web Audio).")} />}
      <div className="split">
        <Card title="Call">
          {agents.isPending ? (
            <Spinner label="Loading agents…" />
          ) : !agents.data?.length ? (
            <EmptyState title="No agents" action={<Link to="/agents/new" className="btn btn-primary">Create an agent</Link>}>
              Create an agent first.
            </EmptyState>
          ) : (
            <>
              <SelectField label="Agent" value={agentId} onChange={(e) => setAgentId(e.target.value)} disabled={live}>
                {agents.data.map((a) => <option key={a.id} value={a.id}>{a.name} (v{a.version})</option>)}
              </SelectField>
              <div className="call-status" aria-live="polite">
                <Badge tone={state === "live" ? "good" : state === "failed" ? "bad" : "neutral"}>{STATE_LABEL[state]}</Badge>
                {state === "live" && startedAt && <span className="mono">{fmtDuration((now - startedAt) / 1000)}</span>}
                {detail && <span className="muted small">{detail}</span>}
              </div>
              <div className="meter" role="meter" aria-label="Microphone level" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(level * 100)}>
                <span style={{ width: `${Math.min(100, Math.round(Math.sqrt(level) * 100))}%` }} />
              </div>
              <div className="row">
                {!live ? (
                  <Button variant="primary" onClick={() => void start()} disabled={!agentId || !supported}>
                    <span aria-hidden="true">◉</span> Start call
                  </Button>
                ) : (
                  <>
                    <Button variant="danger" onClick={() => callRef.current?.hangup()}>Hang up</Button>
                    <Button
                      aria-pressed={muted}
                      onClick={() => {
                        callRef.current?.setMuted(!muted);
                        setMuted(!muted);
                      }}
                    >
                      {muted ? "Unmute" : "Mute"}
                    </Button>
                  </>
                )}
              </div>
              {state === "live" && (
                <Keypad waiting={keysWanted} onPress={(key) => callRef.current?.sendDigit(key) ?? false} />
              )}
              <InlineError error={error} />
              <p className="muted small">
                Use headphones: the agent's voice coming out of speakers would be heard by the microphone and interrupt the agent.
                {agentSpeaking && <> <Badge tone="info">agent speaking</Badge></>}
                {bargeIns > 0 && <> <Badge tone="warn">barge-ins: {bargeIns}</Badge></>}
              </p>
              {callId && (state === "ended" || state === "failed") && (
                <p><Link to={`/calls/${callId}`}>Open this call in the call log</Link></p>
              )}
            </>
          )}
        </Card>
        <Card title="Live transcript">
          {lines.length === 0 ? (
            <p className="muted">{state === "live" ? "Say hello…" : "The conversation will appear here."}</p>
          ) : (
            <ol className="transcript transcript-live" aria-live="polite" aria-relevant="additions text">
              {lines.map((l) => (
                <li key={l.id} className={`turn turn-${l.role}${l.final ? "" : " interim"}`}>
                  <div className="turn-meta"><span className="turn-speaker">{l.role === "caller" ? "You" : "Agent"}</span></div>
                  <p className="turn-text">{l.text}{!l.final && <span className="sr-only"> (still listening)</span>}</p>
                </li>
              ))}
            </ol>
          )}
        </Card>
      </div>
    </>
  );
}
