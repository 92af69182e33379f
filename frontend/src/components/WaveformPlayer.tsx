/**
 * Two-channel recording player. The waveform is drawn from the stereo WAV's samples (one lane per channel: caller and
 * agent); playback runs through a Web Audio graph (element → channel splitter → per-channel gain → merger) so either
 * side can be muted. Keyboard: the timeline is a slider (←/→ 5 s, Home/End), Space toggles play on the play button.
 */
import { forwardRef, useCallback, useEffect, useImperativeHandle, useMemo, useRef, useState } from "react";
import type { Turn } from "../api/types";
import { decodePeaks, type WavPeaks } from "../lib/audio";
import { fmtDuration } from "../lib/format";
import { Button, InlineError, Spinner } from "./ui";

export interface PlayerHandle {
  seek: (seconds: number, play?: boolean) => void;
}

const RESOLUTION = 3000;
const SPEEDS = [0.75, 1, 1.25, 1.5, 2];

export const WaveformPlayer = forwardRef<PlayerHandle, {
  wav: ArrayBuffer;
  channelLabels?: [string, string];
  turns?: Turn[];
  onTime?: (seconds: number) => void;
}>(function WaveformPlayer({ wav, channelLabels = ["Caller", "Agent"], turns = [], onTime }, ref) {
  const audioRef = useRef<HTMLAudioElement>(null);
  const ctxRef = useRef<AudioContext | null>(null);
  const gainsRef = useRef<GainNode[]>([]);
  const [peaks, setPeaks] = useState<WavPeaks | null>(null);
  const [decodeError, setDecodeError] = useState<unknown>(null);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [muted, setMuted] = useState<[boolean, boolean]>([false, false]);
  const [speed, setSpeed] = useState(1);
  const [playError, setPlayError] = useState<unknown>(null);
  const url = useMemo(() => URL.createObjectURL(new Blob([wav], { type: "audio/wav" })), [wav]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);

  useEffect(() => {
    let cancelled = false;
    setPeaks(null);
    setDecodeError(null);
    decodePeaks(wav, RESOLUTION)
      .then((p) => {
        if (cancelled) return;
        setPeaks(p);
        setDuration((d) => d || p.durationS);
      })
      .catch((e) => !cancelled && setDecodeError(e));
    return () => {
      cancelled = true;
    };
  }, [wav]);

  useEffect(() => () => void ctxRef.current?.close(), []);

  // Built on first play: browsers only start an AudioContext after a user gesture.
  const ensureGraph = useCallback(() => {
    const el = audioRef.current;
    const Ctx = (window as { AudioContext?: typeof AudioContext }).AudioContext;
    if (!el || ctxRef.current || !Ctx) return;
    try {
      const ctx = new Ctx();
      const src = ctx.createMediaElementSource(el);
      const split = ctx.createChannelSplitter(2);
      const merge = ctx.createChannelMerger(2);
      src.connect(split);
      const gains = [0, 1].map((ch) => {
        const g = ctx.createGain();
        split.connect(g, ch);
        // Each side is heard in both ears: a phone call is not a stereo mix.
        g.connect(merge, 0, 0);
        g.connect(merge, 0, 1);
        return g;
      });
      merge.connect(ctx.destination);
      ctxRef.current = ctx;
      gainsRef.current = gains;
    } catch {
      ctxRef.current = null; // plain element playback still works
    }
  }, []);

  useEffect(() => {
    gainsRef.current.forEach((g, i) => (g.gain.value = muted[i] ? 0 : 1));
  }, [muted]);

  const play = useCallback(async () => {
    const el = audioRef.current;
    if (!el) return;
    ensureGraph();
    setPlayError(null);
    try {
      await ctxRef.current?.resume();
      await el.play();
    } catch (e) {
      setPlayError(e);
    }
  }, [ensureGraph]);

  const seek = useCallback((t: number, andPlay = false) => {
    const el = audioRef.current;
    if (!el) return;
    const max = el.duration && Number.isFinite(el.duration) ? el.duration : duration;
    el.currentTime = Math.max(0, Math.min(max || 0, t));
    setTime(el.currentTime);
    onTime?.(el.currentTime);
    if (andPlay) void play();
  }, [duration, onTime, play]);

  useImperativeHandle(ref, () => ({ seek }), [seek]);

  // Smooth playhead while playing (timeupdate fires only ~4 times a second).
  useEffect(() => {
    if (!playing) return;
    let raf = 0;
    const tick = () => {
      const el = audioRef.current;
      if (el) {
        setTime(el.currentTime);
        onTime?.(el.currentTime);
      }
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(raf);
  }, [playing, onTime]);

  const total = duration || peaks?.durationS || 0;
  const progress = total ? time / total : 0;
  const lanes = peaks ? peaks.peaks.slice(0, 2) : [];

  return (
    <div className="player">
      <audio
        ref={audioRef}
        src={url}
        preload="auto"
        onLoadedMetadata={(e) => Number.isFinite(e.currentTarget.duration) && setDuration(e.currentTarget.duration)}
        onPlay={() => setPlaying(true)}
        onPause={() => setPlaying(false)}
        onEnded={() => setPlaying(false)}
        onTimeUpdate={(e) => {
          if (!playing) {
            setTime(e.currentTarget.currentTime);
            onTime?.(e.currentTarget.currentTime);
          }
        }}
        data-testid="recording-audio"
      />
      <div className="player-controls">
        <Button
          variant="primary"
          onClick={() => (playing ? audioRef.current?.pause() : void play())}
          aria-label={playing ? "Pause recording" : "Play recording"}
          className="play-btn"
        >
          <span aria-hidden="true">{playing ? "❚❚" : "▶"}</span>
        </Button>
        <span className="player-time mono" aria-live="off">
          {fmtDuration(time)} / {fmtDuration(total)}
        </span>
        <span className="grow" />
        {[0, 1].map((ch) => (
          <label key={ch} className={`chan-toggle chan-${ch}`}>
            <input
              type="checkbox"
              checked={!muted[ch]}
              onChange={(e) => setMuted((m) => (ch === 0 ? [!e.target.checked, m[1]] : [m[0], !e.target.checked]))}
            />
            {channelLabels[ch]}
          </label>
        ))}
        <label className="speed">
          <span className="sr-only">Playback speed</span>
          <select
            value={speed}
            onChange={(e) => {
              const s = Number(e.target.value);
              setSpeed(s);
              if (audioRef.current) audioRef.current.playbackRate = s;
            }}
          >
            {SPEEDS.map((s) => <option key={s} value={s}>{s}×</option>)}
          </select>
        </label>
        <a className="btn btn-ghost" href={url} download="recording.wav">Download</a>
      </div>
      {decodeError ? (
        <InlineError error={decodeError} />
      ) : !peaks ? (
        <Spinner label="Drawing waveform…" />
      ) : (
        <div
          className="wave"
          role="slider"
          tabIndex={0}
          aria-label="Recording position"
          aria-valuemin={0}
          aria-valuemax={Math.round(total)}
          aria-valuenow={Math.round(time)}
          aria-valuetext={`${fmtDuration(time)} of ${fmtDuration(total)}`}
          onKeyDown={(e) => {
            const step = e.shiftKey ? 15 : 5;
            const keys: Record<string, number> = { ArrowRight: time + step, ArrowLeft: time - step, Home: 0, End: total, PageUp: time + 30, PageDown: time - 30 };
            if (e.key in keys) {
              e.preventDefault();
              seek(keys[e.key]);
            } else if (e.key === " " || e.key === "Enter") {
              e.preventDefault();
              if (playing) audioRef.current?.pause();
              else void play();
            }
          }}
          onPointerDown={(e) => {
            const rect = e.currentTarget.getBoundingClientRect();
            seek(((e.clientX - rect.left) / rect.width) * total);
          }}
        >
          {lanes.map((p, i) => (
            <div key={i} className={`lane lane-${i}`}>
              <span className="lane-label">{channelLabels[i] ?? `Channel ${i + 1}`}</span>
              <WaveCanvas peaks={p} progress={progress} channel={i} />
            </div>
          ))}
          {lanes.length === 1 && <p className="muted small">Mono recording: both sides are in one channel.</p>}
          {total > 0 && turns.length > 0 && (
            <div className="turn-track" aria-hidden="true">
              {turns.map((t) => (
                <span
                  key={t.turn_index}
                  className={`turn-mark turn-${t.speaker}`}
                  style={{ left: `${(t.start_ms / 1000 / total) * 100}%`, width: `${Math.max(0.3, ((t.end_ms - t.start_ms) / 1000 / total) * 100)}%` }}
                />
              ))}
            </div>
          )}
          <div className="playhead" style={{ left: `${progress * 100}%` }} aria-hidden="true" />
        </div>
      )}
      <InlineError error={playError} />
    </div>
  );
});

function WaveCanvas({ peaks, progress, channel }: { peaks: Float32Array; progress: number; channel: number }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(800);

  useEffect(() => {
    const el = canvasRef.current?.parentElement;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver((entries) => setWidth(Math.max(100, Math.floor(entries[0].contentRect.width))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext?.("2d");
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const h = 56;
    canvas.width = width * dpr;
    canvas.height = h * dpr;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${h}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, h);
    const styles = getComputedStyle(canvas);
    const played = styles.getPropertyValue(channel === 0 ? "--wave-caller" : "--wave-agent").trim() || (channel === 0 ? "#2563eb" : "#059669");
    const rest = styles.getPropertyValue("--wave-rest").trim() || "#cbd5e1";
    const bar = 2;
    const gap = 1;
    const n = Math.floor(width / (bar + gap));
    const per = peaks.length / n;
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let j = Math.floor(i * per); j < Math.floor((i + 1) * per); j++) m = Math.max(m, peaks[j] ?? 0);
      const amp = Math.max(1, Math.sqrt(m) * (h / 2 - 2)); // sqrt: quiet speech stays visible
      ctx.fillStyle = i / n <= progress ? played : rest;
      ctx.fillRect(i * (bar + gap), h / 2 - amp, bar, amp * 2);
    }
  }, [peaks, progress, width, channel]);

  return <canvas ref={canvasRef} className="wave-canvas" />;
}
