import { useEffect, useRef } from "react";
import type { Turn, TurnLatency } from "../api/types";
import { fmtDuration, fmtMs } from "../lib/format";
import { Badge } from "./ui";

const STAGES: { key: keyof TurnLatency; label: string }[] = [
  { key: "vad_stop_ms", label: "End of speech (VAD)" },
  { key: "smart_turn_ms", label: "Turn detection" },
  { key: "stt_final_ms", label: "STT final" },
  { key: "turn_end_ms", label: "Turn end (wait)" },
  { key: "llm_first_token_ms", label: "LLM first token" },
  { key: "tts_first_audio_ms", label: "TTS first audio" },
];

/** Index of the turn playing at `seconds` (the last one that started), or -1. */
export function activeTurnIndex(turns: Turn[], seconds: number): number {
  const ms = seconds * 1000;
  let idx = -1;
  turns.forEach((t, i) => {
    if (t.start_ms <= ms) idx = i;
  });
  if (idx >= 0 && ms > turns[idx].end_ms + 1500 && !turns.some((t) => t.start_ms > ms)) return idx;
  return idx;
}

export function LatencyBreakdown({ latency }: { latency: TurnLatency }) {
  const total = latency.voice_to_voice_ms;
  const stages = STAGES.filter((s) => latency[s.key] != null);
  const max = Math.max(total ?? 0, ...stages.map((s) => latency[s.key] as number), 1);
  return (
    <dl className="latency">
      {stages.map((s) => (
        <div key={s.key} className="latency-row">
          <dt>{s.label}</dt>
          <dd>
            <span className="latency-bar" style={{ width: `${((latency[s.key] as number) / max) * 100}%` }} aria-hidden="true" />
            {fmtMs(latency[s.key])}
          </dd>
        </div>
      ))}
      {total != null && (
        <div className="latency-row latency-total">
          <dt>Voice to voice</dt>
          <dd>
            <span className="latency-bar" style={{ width: `${(total / max) * 100}%` }} aria-hidden="true" />
            {fmtMs(total)}
          </dd>
        </div>
      )}
    </dl>
  );
}

function latencyTone(ms?: number | null): "good" | "warn" | "bad" | "neutral" {
  if (ms == null) return "neutral";
  return ms <= 800 ? "good" : ms <= 1500 ? "warn" : "bad";
}

/** The transcript, following playback: the current turn is highlighted and kept in view; clicking a turn seeks there. */
export function Transcript({ turns, currentTime, onSeek, follow = true }: {
  turns: Turn[];
  currentTime: number;
  onSeek?: (seconds: number) => void;
  follow?: boolean;
}) {
  const listRef = useRef<HTMLOListElement>(null);
  const active = activeTurnIndex(turns, currentTime);
  useEffect(() => {
    if (!follow || active < 0) return;
    const list = listRef.current;
    const item = list?.children[active] as HTMLElement | undefined;
    if (!list || !item) return;
    // Scroll the transcript box only, never the page.
    const top = item.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + item.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTo?.({ top: Math.max(0, top - 40), behavior: "smooth" });
    }
  }, [active, follow]);

  if (!turns.length) return <p className="muted">No transcript for this call.</p>;
  return (
    <ol className="transcript" ref={listRef} aria-label="Transcript">
      {turns.map((t, i) => (
        <li
          key={`${t.turn_index}-${i}`}
          className={`turn turn-${t.speaker}${i === active ? " active" : ""}`}
          aria-current={i === active ? "true" : undefined}
          data-testid="transcript-turn"
        >
          <div className="turn-meta">
            <button
              type="button"
              className="turn-time link-btn"
              onClick={() => onSeek?.(t.start_ms / 1000)}
              aria-label={`Play from ${fmtDuration(t.start_ms / 1000)}, ${t.speaker}`}
            >
              {fmtDuration(t.start_ms / 1000)}
            </button>
            <span className="turn-speaker">{t.speaker === "caller" ? "Caller" : t.speaker === "agent" ? "Agent" : "System"}</span>
            {t.interrupted && <Badge tone="warn">interrupted</Badge>}
            {t.latency?.voice_to_voice_ms != null && (
              <Badge tone={latencyTone(t.latency.voice_to_voice_ms)}>
                <span className="sr-only">response latency </span>
                {fmtMs(t.latency.voice_to_voice_ms)}
              </Badge>
            )}
          </div>
          <p className="turn-text">{t.text}</p>
          {t.knowledge && (t.knowledge.sources?.length || t.knowledge.error) ? (
            <p className="muted turn-knowledge">
              {t.knowledge.error ? <Badge tone="warn">knowledge unavailable</Badge> : <>answered from: {[...new Set(t.knowledge.sources)].join("; ")}</>}
            </p>
          ) : null}
          {t.latency && Object.values(t.latency).some((v) => v != null) && (
            <details className="turn-latency">
              <summary>Latency breakdown</summary>
              <LatencyBreakdown latency={t.latency} />
            </details>
          )}
        </li>
      ))}
    </ol>
  );
}
