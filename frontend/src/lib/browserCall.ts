/**
 * Browser test call client: microphone -> WebSocket -> the same pipeline as a phone call.
 *
 * Protocol (see README "Browser test call protocol"):
 *   up:   one JSON text frame {type:"start", sample_rate:16000, encoding:"pcm_s16le", channels:1}, then binary frames of
 *         PCM16 little-endian mono 16 kHz audio, 20 ms (640 bytes) each; {type:"dtmf", digit:"5"} for a keypad
 *         press (0-9, * or #); {type:"hangup"} text frame to end.
 *   down: binary frames of PCM16 LE mono audio at `sample_rate` (16 kHz unless a "ready" event says otherwise), and JSON
 *         text events: {type:"ready", call_id, sample_rate?}, {type:"transcript", role:"caller"|"agent", text, final},
 *         {type:"clear"} (barge-in: drop all queued agent audio now), {type:"keypad", waiting} (the agent waits for
 *         keys, or no longer), {type:"end", reason}, {type:"error", message}.
 */
import { floatToPcm16, pcm16ToFloat, Resampler } from "./audio";

export const WIRE_RATE = 16000;
export const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

/** The keys of a phone keypad, in its 4 x 3 layout. */
export const KEYPAD_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"] as const;
export type KeypadKey = (typeof KEYPAD_KEYS)[number];

export function isKeypadKey(key: string): key is KeypadKey {
  return (KEYPAD_KEYS as readonly string[]).includes(key);
}

export type CallState = "idle" | "connecting" | "live" | "ending" | "ended" | "failed";

export interface TranscriptEvent {
  role: "caller" | "agent";
  text: string;
  final: boolean;
}

export type ServerEvent =
  | { type: "ready"; call_id?: string; sample_rate?: number }
  | { type: "transcript"; role?: "caller" | "agent"; speaker?: "caller" | "agent"; text: string; final?: boolean }
  | { type: "clear" }
  | { type: "keypad"; waiting?: boolean }
  | { type: "end"; reason?: string }
  | { type: "error"; message?: string };

export interface BrowserCallCallbacks {
  onState?: (s: CallState, detail?: string) => void;
  onTranscript?: (t: TranscriptEvent) => void;
  onReady?: (callId: string | undefined) => void;
  /** Barge-in: the server told us to stop playing the agent. */
  onClear?: () => void;
  onEnd?: (reason: string) => void;
  /** The agent is waiting for keypad presses (its collect_digits tool), or no longer. */
  onKeypad?: (waiting: boolean) => void;
  /** Microphone level 0..1, ~30 times a second. */
  onLevel?: (level: number) => void;
  onAgentSpeaking?: (speaking: boolean) => void;
}

/** Splits a stream of PCM16 samples into fixed 20 ms frames. */
export class Framer {
  private buf = new Int16Array(0);
  constructor(private readonly size = FRAME_SAMPLES) {}
  push(samples: Int16Array): Int16Array[] {
    const merged = new Int16Array(this.buf.length + samples.length);
    merged.set(this.buf);
    merged.set(samples, this.buf.length);
    const frames: Int16Array[] = [];
    let off = 0;
    while (merged.length - off >= this.size) {
      frames.push(merged.slice(off, off + this.size));
      off += this.size;
    }
    this.buf = merged.slice(off);
    return frames;
  }
}

/** Parses a text frame; unknown or malformed events return null and are ignored. */
export function parseServerEvent(text: string): ServerEvent | null {
  try {
    const ev = JSON.parse(text) as { type?: unknown };
    return typeof ev?.type === "string" ? (ev as ServerEvent) : null;
  } catch {
    return null;
  }
}

export function toWsUrl(url: string, loc: Location = window.location): string {
  if (/^wss?:\/\//.test(url)) return url;
  if (/^https?:\/\//.test(url)) return url.replace(/^http/, "ws");
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}${url.startsWith("/") ? "" : "/"}${url}`;
}

/** Served from public/: a static script satisfies the CSP (script-src 'self'), a blob: URL would not. */
const WORKLET_URL = "/capture-worklet.js";

export class BrowserCall {
  private ws: WebSocket | null = null;
  private ctx: AudioContext | null = null;
  private stream: MediaStream | null = null;
  private nodes: AudioNode[] = [];
  private playing = new Set<AudioBufferSourceNode>();
  private playhead = 0;
  private downRate = WIRE_RATE;
  private framer = new Framer();
  private resampler: Resampler | null = null;
  private muted = false;
  private state: CallState = "idle";
  private speakingTimer: ReturnType<typeof setTimeout> | null = null;

  /** `firstMessage`: sent instead of the start frame (a supervisor's take-over ticket: the same protocol after it). */
  constructor(private readonly wsUrl: string, private readonly cb: BrowserCallCallbacks = {},
              private readonly firstMessage?: string) {}

  private setState(s: CallState, detail?: string) {
    this.state = s;
    this.cb.onState?.(s, detail);
  }

  async start(): Promise<void> {
    this.setState("connecting");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (e) {
      this.setState("failed", e instanceof DOMException && e.name === "NotAllowedError" ? "Microphone permission was denied." : `No microphone: ${e}`);
      return;
    }
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    await this.ctx.resume();
    this.resampler = new Resampler(this.ctx.sampleRate, WIRE_RATE);

    const ws = new WebSocket(toWsUrl(this.wsUrl));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      ws.send(this.firstMessage ?? JSON.stringify({ type: "start", sample_rate: WIRE_RATE, encoding: "pcm_s16le", channels: 1 }));
      this.setState("live");
      void this.startCapture();
    };
    ws.onmessage = (m) => {
      if (typeof m.data === "string") this.handleEvent(m.data);
      else this.playPcm(new Int16Array(m.data as ArrayBuffer));
    };
    ws.onerror = () => {
      if (this.state === "connecting") this.setState("failed", "Couldn't connect to the voice server.");
    };
    ws.onclose = (e) => {
      if (this.state === "live" || this.state === "ending" || this.state === "connecting") {
        this.cleanup();
        if (this.state === "connecting") this.setState("failed", e.reason || `Connection closed (${e.code}).`);
        else this.setState("ended", e.reason || undefined);
      }
    };
  }

  private async startCapture() {
    const ctx = this.ctx;
    if (!ctx || !this.stream) return;
    const src = ctx.createMediaStreamSource(this.stream);
    const onChunk = (chunk: Float32Array) => {
      let peak = 0;
      for (let i = 0; i < chunk.length; i++) peak = Math.max(peak, Math.abs(chunk[i]));
      this.cb.onLevel?.(this.muted ? 0 : peak);
      if (this.muted || this.ws?.readyState !== WebSocket.OPEN) return;
      const pcm = floatToPcm16(this.resampler!.process(chunk));
      for (const frame of this.framer.push(pcm)) this.ws.send(frame.buffer);
    };
    try {
      await ctx.audioWorklet.addModule(WORKLET_URL);
      const node = new AudioWorkletNode(ctx, "va-capture");
      node.port.onmessage = (e) => onChunk(e.data as Float32Array);
      src.connect(node);
      this.nodes.push(src, node);
    } catch {
      // Older browsers: ScriptProcessor (deprecated, but works everywhere).
      const node = ctx.createScriptProcessor(2048, 1, 1);
      node.onaudioprocess = (e) => onChunk(e.inputBuffer.getChannelData(0).slice(0));
      const sink = ctx.createGain();
      sink.gain.value = 0;
      src.connect(node);
      node.connect(sink);
      sink.connect(ctx.destination);
      this.nodes.push(src, node, sink);
    }
  }

  private handleEvent(text: string) {
    const ev = parseServerEvent(text);
    if (!ev) return;
    switch (ev.type) {
      case "ready":
        if (ev.sample_rate) this.downRate = ev.sample_rate;
        this.cb.onReady?.(ev.call_id);
        break;
      case "transcript": {
        const role = ev.role ?? ev.speaker ?? "agent";
        this.cb.onTranscript?.({ role, text: ev.text ?? "", final: ev.final ?? true });
        break;
      }
      case "clear":
        this.clearPlayback();
        this.cb.onClear?.();
        break;
      case "keypad":
        this.cb.onKeypad?.(ev.waiting === true);
        break;
      case "end":
        this.cb.onEnd?.(ev.reason ?? "ended");
        this.hangup(false);
        break;
      case "error":
        this.cb.onState?.(this.state, ev.message);
        break;
    }
  }

  /** Queues agent audio back to back; `clear` drops whatever is queued. */
  private playPcm(samples: Int16Array) {
    const ctx = this.ctx;
    if (!ctx || !samples.length) return;
    const buf = ctx.createBuffer(1, samples.length, this.downRate);
    buf.copyToChannel(pcm16ToFloat(samples), 0);
    const node = ctx.createBufferSource();
    node.buffer = buf;
    node.connect(ctx.destination);
    const startAt = Math.max(ctx.currentTime + 0.02, this.playhead);
    node.start(startAt);
    this.playhead = startAt + buf.duration;
    this.playing.add(node);
    this.cb.onAgentSpeaking?.(true);
    node.onended = () => {
      this.playing.delete(node);
      if (!this.playing.size) {
        if (this.speakingTimer) clearTimeout(this.speakingTimer);
        this.speakingTimer = setTimeout(() => !this.playing.size && this.cb.onAgentSpeaking?.(false), 150);
      }
    };
  }

  clearPlayback() {
    for (const n of this.playing) {
      try {
        n.stop();
      } catch {
        /* already stopped */
      }
    }
    this.playing.clear();
    this.playhead = 0;
    this.cb.onAgentSpeaking?.(false);
  }

  /** A keypad press, as a phone would send DTMF; false when it was not sent (not a key, or no live socket). */
  sendDigit(digit: string): boolean {
    if (!isKeypadKey(digit) || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type: "dtmf", digit }));
    return true;
  }

  setMuted(m: boolean) {
    this.muted = m;
  }

  hangup(sendHangup = true) {
    if (this.state === "ended" || this.state === "failed") return;
    this.setState("ending");
    if (sendHangup && this.ws?.readyState === WebSocket.OPEN) {
      try {
        this.ws.send(JSON.stringify({ type: "hangup" }));
      } catch {
        /* closing anyway */
      }
    }
    this.ws?.close(1000, "hangup");
    this.cleanup();
    this.setState("ended");
  }

  private cleanup() {
    this.clearPlayback();
    this.nodes.forEach((n) => n.disconnect());
    this.nodes = [];
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    void this.ctx?.close();
    this.ctx = null;
  }
}
