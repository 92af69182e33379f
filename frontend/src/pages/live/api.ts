/** Live calls: the organisation's calls in progress and one call's live view, as server-sent events. */
import { http } from "../../api/http";
import { openEventStream, type SseHandle } from "../../api/sse";

export interface ListenTicket {
  url: string;
  ticket: string;
  expires_in_s: number;
}

export interface LiveCall {
  id: string;
  direction: "inbound" | "outbound";
  carrier: string;
  from_number: string;
  to_number: string;
  agent_id: string | null;
  agent_name: string | null;
  campaign_id: string | null;
  started_at: string | null;
  elapsed_s: number;
  turn_count: number;
  last_v2v_ms: number | null;
  voice_server_id: string | null;
}

export interface LiveTurn {
  turn_index: number;
  speaker: "caller" | "agent" | "system";
  text: string;
  start_ms: number;
  end_ms: number;
  interrupted: boolean;
  latency: { voice_to_voice_ms?: number | null } | null;
}

export interface LiveTool {
  name: string;
  ok: boolean;
  duration_ms: number;
  detail: string;
}

export type LiveCallEvent =
  | { type: "turn"; turn: LiveTurn }
  | { type: "interim"; text: string }
  | { type: "tool"; tool: LiveTool }
  | { type: "end"; end_reason: string | null; status: string | null };

function parse<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

export const liveApi = {
  /** Owners and admins: an instruction for the agent; the caller hears nothing. */
  whisper: (id: string, text: string) => http.post<void>(`/live/calls/${encodeURIComponent(id)}/whisper`, { text }),
  /** Owners and admins: where to listen in (a socket on the voice server holding the call). */
  listen: (id: string) => http.post<ListenTicket>(`/live/calls/${encodeURIComponent(id)}/listen`),
  /** Owners and admins: take the call over (a socket on the voice server holding the call; the agent steps out). */
  takeover: (id: string) => http.post<ListenTicket>(`/live/calls/${encodeURIComponent(id)}/takeover`),
  /** `calls` with the whole list whenever it changes. */
  calls: (onCalls: (calls: LiveCall[]) => void, onStatus?: (s: string) => void): SseHandle =>
    openEventStream("/live/stream", {
      onMessage: (m) => {
        const calls = m.event === "calls" ? parse<LiveCall[]>(m.data) : null;
        if (calls) onCalls(calls);
      },
      onStatus,
    }),
  /** `turn` and `tool` as they are applied (those so far first), `interim` caller words, then `end`. */
  call: (id: string, onEvent: (e: LiveCallEvent) => void, onStatus?: (s: string) => void): SseHandle => {
    let ended = false;
    return openEventStream(`/live/calls/${encodeURIComponent(id)}/stream`, {
      onMessage: (m) => {
        if (m.event === "turn") {
          const turn = parse<LiveTurn>(m.data);
          if (turn) onEvent({ type: "turn", turn });
        } else if (m.event === "interim") {
          const interim = parse<{ text: string }>(m.data);
          if (interim) onEvent({ type: "interim", text: interim.text });
        } else if (m.event === "tool") {
          const tool = parse<LiveTool>(m.data);
          if (tool) onEvent({ type: "tool", tool });
        } else if (m.event === "end") {
          ended = true;
          const end = parse<{ end_reason: string | null; status: string | null }>(m.data);
          onEvent({ type: "end", end_reason: end?.end_reason ?? null, status: end?.status ?? null });
        }
      },
      onStatus,
      shouldStop: () => ended,
    });
  },
};

/** Plays a listen-in socket: sends the ticket, then schedules each PCM16 block back to back. */
export function playListenIn(ticket: ListenTicket, onEnd: (reason: string) => void): () => void {
  const ws = new WebSocket(ticket.url);
  ws.binaryType = "arraybuffer";
  let ctx: AudioContext | null = null;
  let rate = 8000;
  let at = 0;
  ws.onopen = () => ws.send(ticket.ticket);
  ws.onmessage = (m) => {
    if (typeof m.data === "string") {
      rate = (JSON.parse(m.data) as { sample_rate: number }).sample_rate;
      ctx = new AudioContext();
      return;
    }
    if (!ctx) return;
    const pcm = new Int16Array(m.data as ArrayBuffer);
    const buffer = ctx.createBuffer(1, pcm.length, rate);
    const out = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    at = Math.max(at, ctx.currentTime + 0.05);
    source.start(at);
    at += buffer.duration;
  };
  ws.onclose = (e) => {
    void ctx?.close();
    onEnd(e.reason || "ended");
  };
  return () => ws.close();
}
