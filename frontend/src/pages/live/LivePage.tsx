import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useAuth } from "../../auth/AuthContext";
import { Badge, Button, Card, EmptyState, errorMessage, PageHeader, TextField } from "../../components/ui";
import { BrowserCall } from "../../lib/browserCall";
import { fmtDuration, fmtMs, humanize } from "../../lib/format";
import { liveApi, playListenIn, type LiveCall, type LiveTool, type LiveTurn } from "./api";

/** Seconds since `iso`, refreshed every second, so durations tick between server updates. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function ConnectionBadge({ status }: { status: string }) {
  const tone = status === "open" ? "good" : status === "retrying" ? "warn" : "neutral";
  return <Badge tone={tone}>{status === "open" ? "Live" : humanize(status)}</Badge>;
}

export default function LivePage() {
  const { callId } = useParams();
  return callId ? <LiveCallView callId={callId} /> : <LiveCallsList />;
}

function LiveCallsList() {
  const [calls, setCalls] = useState<LiveCall[] | null>(null);
  const [status, setStatus] = useState("connecting");
  const now = useNow();
  useEffect(() => {
    const handle = liveApi.calls(setCalls, setStatus);
    return () => handle.close();
  }, []);
  return (
    <>
      <PageHeader title="Live calls" subtitle="Calls in progress across your organisation, as they happen."
                  actions={<ConnectionBadge status={status} />} />
      {calls === null ? null : calls.length === 0 ? (
        <EmptyState title="No calls in progress">Calls appear here the moment they start.</EmptyState>
      ) : (
        <table className="table" aria-label="Calls in progress">
          <thead>
            <tr>
              <th>Agent</th><th>From</th><th>To</th><th>Direction</th><th>Duration</th><th>Turns</th>
              <th>Last latency</th><th />
            </tr>
          </thead>
          <tbody>
            {calls.map((c) => (
              <tr key={c.id} data-call-id={c.id}>
                <td>{c.agent_name ?? "—"}</td>
                <td>{c.from_number}</td>
                <td>{c.to_number}</td>
                <td>{humanize(c.direction)}</td>
                <td>{fmtDuration(c.started_at ? Math.max(0, (now - Date.parse(c.started_at)) / 1000) : c.elapsed_s)}</td>
                <td>{c.turn_count}</td>
                <td>{c.last_v2v_ms == null ? "—" : fmtMs(c.last_v2v_ms)}</td>
                <td><Link to={`/live/${c.id}`}>Watch</Link></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

type Entry = { kind: "turn"; turn: LiveTurn } | { kind: "tool"; tool: LiveTool };

function LiveCallView({ callId }: { callId: string }) {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [interim, setInterim] = useState<string | null>(null);
  const [ended, setEnded] = useState<string | null>(null);
  const [status, setStatus] = useState("connecting");
  const { can } = useAuth();
  useEffect(() => {
    setEntries([]);
    setInterim(null);
    setEnded(null);
    const handle = liveApi.call(callId, (e) => {
      if (e.type === "interim") setInterim(e.text);
      else if (e.type === "turn") {
        if (e.turn.speaker === "caller") setInterim(null); // the final line replaces the interim one
        setEntries((xs) => [...xs, { kind: "turn", turn: e.turn }]);
      } else if (e.type === "tool") setEntries((xs) => [...xs, { kind: "tool", tool: e.tool }]);
      else setEnded(e.end_reason ?? e.status ?? "ended");
    }, setStatus);
    return () => handle.close();
  }, [callId]);
  return (
    <>
      <PageHeader title="Live call" subtitle={<Link to="/live">All live calls</Link>}
                  actions={ended ? <Badge tone="neutral">Ended: {humanize(ended)}</Badge> : <ConnectionBadge status={status} />} />
      {!ended && can("admin") ? <Supervise callId={callId} /> : null}
      <Card title="Transcript">
        {entries.length === 0 && !interim ? <p className="muted">Waiting for the first turn…</p> : (
          <ol className="live-transcript" aria-label="Live transcript">
            {entries.map((e, i) => e.kind === "turn" ? (
              <li key={i} data-speaker={e.turn.speaker}>
                <strong>{humanize(e.turn.speaker)}:</strong> {e.turn.text}
                {e.turn.interrupted ? <Badge tone="warn">interrupted</Badge> : null}
                {e.turn.latency?.voice_to_voice_ms != null ? (
                  <span className="muted"> · {fmtMs(e.turn.latency.voice_to_voice_ms)}</span>
                ) : null}
              </li>
            ) : (
              <li key={i} data-tool={e.tool.name}>
                <Badge tone={e.tool.ok ? "info" : "bad"}>{e.tool.name === "transfer_call" ? "Transfer" : "Tool"}</Badge>{" "}
                {e.tool.name} · {fmtMs(e.tool.duration_ms)}
              </li>
            ))}
            {interim ? (
              <li className="muted" data-speaker="caller" data-interim="true">
                <strong>Caller:</strong> {interim}…
              </li>
            ) : null}
          </ol>
        )}
      </Card>
    </>
  );
}

/** Owners and admins: listen in (read-only), take the call over (microphone; the agent steps out until handed back)
 * and whisper an instruction to the agent. */
function Supervise({ callId }: { callId: string }) {
  const [listening, setListening] = useState<(() => void) | null>(null);
  const [note, setNote] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [takenOver, setTakenOver] = useState<BrowserCall | null>(null);
  useEffect(() => () => takenOver?.hangup(), [takenOver]);
  const takeOver = async () => {
    try {
      const ticket = await liveApi.takeover(callId);
      const call = new BrowserCall(ticket.url, {
        onState: (s, detail) => {
          if (s === "ended" || s === "failed") {
            setTakenOver(null);
            setMessage(detail ? `Take-over ended: ${detail}` : "The agent has the call again.");
          }
        },
      }, ticket.ticket);
      setTakenOver(call);
      setMessage("You have the call: the agent is silent until you hand it back.");
      await call.start();
    } catch (e) {
      setMessage(errorMessage(e));
    }
  };
  useEffect(() => () => listening?.(), [listening]);
  const listen = async () => {
    try {
      const ticket = await liveApi.listen(callId);
      setListening(() => playListenIn(ticket, (reason) => {
        setListening(null);
        setMessage(`Listening stopped: ${reason}`);
      }));
      setMessage(null);
    } catch (e) {
      setMessage(errorMessage(e));
    }
  };
  const whisper = async () => {
    try {
      await liveApi.whisper(callId, note);
      setNote("");
      setMessage("Instruction sent to the agent.");
    } catch (e) {
      setMessage(errorMessage(e));
    }
  };
  return (
    <Card title="Supervise">
      {listening ? <Button onClick={() => { listening(); setListening(null); }}>Stop listening</Button>
        : <Button onClick={() => void listen()}>Listen in</Button>}
      {takenOver ? <Button onClick={() => takenOver.hangup()}>Hand back to the agent</Button>
        : <Button onClick={() => void takeOver()}>Take over</Button>}
      <TextField label="Whisper to the agent" value={note} onChange={(e) => setNote(e.target.value)} maxLength={1000} />
      <Button onClick={() => void whisper()} disabled={!note.trim()}>Send instruction</Button>
      {message ? <p role="status">{message}</p> : null}
    </Card>
  );
}
