/** PCM helpers for the waveform player and the browser test call. */

export interface PcmWav {
  sampleRate: number;
  channels: Float32Array[];
  durationS: number;
}

/** Parses a PCM16 / float32 WAV (any channel count) without decoding through Web Audio, so it also runs in tests. */
export function parseWav(buf: ArrayBuffer): PcmWav {
  const v = new DataView(buf);
  const tag = (o: number) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (buf.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("Not a WAV file");
  let off = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  while (off + 8 <= buf.byteLength) {
    const id = tag(off);
    let size = v.getUint32(off + 4, true);
    const body = off + 8;
    if (id === "fmt ") {
      fmt = { format: v.getUint16(body, true), channels: v.getUint16(body + 2, true), rate: v.getUint32(body + 4, true), bits: v.getUint16(body + 14, true) };
      if (fmt.format === 0xfffe && size >= 26) fmt.format = v.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE
    } else if (id === "data") {
      if (!fmt) throw new Error("WAV data before fmt chunk");
      // Streaming writers leave the size at 0 or 0xFFFFFFFF: read to the end.
      if (size === 0 || body + size > buf.byteLength) size = buf.byteLength - body;
      const bytesPer = fmt.bits / 8;
      const frames = Math.floor(size / (bytesPer * fmt.channels));
      const channels = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
      for (let f = 0; f < frames; f++) {
        for (let c = 0; c < fmt.channels; c++) {
          const p = body + (f * fmt.channels + c) * bytesPer;
          let s: number;
          if (fmt.format === 3 && fmt.bits === 32) s = v.getFloat32(p, true);
          else if (fmt.bits === 16) s = v.getInt16(p, true) / 32768;
          else if (fmt.bits === 8) s = (v.getUint8(p) - 128) / 128;
          else if (fmt.bits === 32) s = v.getInt32(p, true) / 2147483648;
          else throw new Error(`Unsupported WAV: ${fmt.bits}-bit`);
          channels[c][f] = s;
        }
      }
      return { sampleRate: fmt.rate, channels, durationS: frames / fmt.rate };
    }
    off = body + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}

/** Peak amplitude per bucket (0..1), `buckets` of them, for drawing. */
export function peaks(samples: Float32Array, buckets: number): Float32Array {
  const out = new Float32Array(buckets);
  if (!samples.length || buckets <= 0) return out;
  const per = samples.length / buckets;
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * per);
    const end = Math.min(samples.length, Math.max(start + 1, Math.floor((b + 1) * per)));
    let m = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(samples[i]);
      if (a > m) m = a;
    }
    out[b] = Math.min(1, m);
  }
  return out;
}

export function floatToPcm16(input: Float32Array): Int16Array {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const s = Math.max(-1, Math.min(1, input[i]));
    out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  return out;
}

export function pcm16ToFloat(input: Int16Array): Float32Array<ArrayBuffer> {
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] / 32768;
  return out;
}

/** Linear-interpolating resampler that keeps state across chunks (mic rate -> 16 kHz and back). */
export class Resampler {
  private pos = 0;
  private last = 0;
  constructor(private readonly from: number, private readonly to: number) {}

  process(input: Float32Array): Float32Array {
    if (this.from === this.to) return input;
    const step = this.from / this.to;
    const out: number[] = [];
    // pos is measured in input samples relative to the start of `input`; index -1 is the previous chunk's last sample.
    while (this.pos < input.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i - 1 < 0 ? this.last : input[i - 1];
      const b = input[i];
      out.push(a + (b - a) * frac);
      this.pos += step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1] ?? this.last;
    return Float32Array.from(out);
  }
}

/** Encodes mono Float32 samples as a PCM16 WAV (used by tests and the e2e seed). */
export function encodeWav(channels: Float32Array[], sampleRate: number): ArrayBuffer {
  const frames = channels[0]?.length ?? 0;
  const n = channels.length;
  const buf = new ArrayBuffer(44 + frames * n * 2);
  const v = new DataView(buf);
  const w = (o: number, s: string) => [...s].forEach((ch, i) => v.setUint8(o + i, ch.charCodeAt(0)));
  w(0, "RIFF");
  v.setUint32(4, 36 + frames * n * 2, true);
  w(8, "WAVE");
  w(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, n, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * n * 2, true);
  v.setUint16(32, n * 2, true);
  v.setUint16(34, 16, true);
  w(36, "data");
  v.setUint32(40, frames * n * 2, true);
  for (let f = 0; f < frames; f++)
    for (let c = 0; c < n; c++) {
      const s = Math.max(-1, Math.min(1, channels[c][f]));
      v.setInt16(44 + (f * n + c) * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  return buf;
}

export interface WavPeaks {
  sampleRate: number;
  durationS: number;
  /** One array per channel, `buckets` long, peak |amplitude| 0..1. */
  peaks: Float32Array[];
}

/** Peaks straight from PCM16 WAV bytes without materialising every sample (long calls stay cheap). */
export function wavPeaks(buf: ArrayBuffer, buckets: number): WavPeaks {
  const v = new DataView(buf);
  const tag = (o: number) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (buf.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("Not a WAV file");
  let off = 12;
  let channels = 0;
  let rate = 0;
  let bits = 0;
  let format = 0;
  while (off + 8 <= buf.byteLength) {
    const id = tag(off);
    let size = v.getUint32(off + 4, true);
    const body = off + 8;
    if (id === "fmt ") {
      format = v.getUint16(body, true);
      channels = v.getUint16(body + 2, true);
      rate = v.getUint32(body + 4, true);
      bits = v.getUint16(body + 14, true);
      if (format === 0xfffe && size >= 26) format = v.getUint16(body + 24, true);
    } else if (id === "data") {
      if (format !== 1 || bits !== 16) return fromParsed(parseWav(buf), buckets);
      if (size === 0 || body + size > buf.byteLength) size = buf.byteLength - body;
      const frames = Math.floor(size / (2 * channels));
      const peaksOut = Array.from({ length: channels }, () => new Float32Array(buckets));
      const per = frames / buckets;
      for (let b = 0; b < buckets; b++) {
        const start = Math.floor(b * per);
        const end = Math.min(frames, Math.max(start + 1, Math.floor((b + 1) * per)));
        for (let c = 0; c < channels; c++) {
          let m = 0;
          for (let f = start; f < end; f++) {
            const s = Math.abs(v.getInt16(body + (f * channels + c) * 2, true));
            if (s > m) m = s;
          }
          peaksOut[c][b] = Math.min(1, m / 32768);
        }
      }
      return { sampleRate: rate, durationS: frames / rate, peaks: peaksOut };
    }
    off = body + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}

function fromParsed(w: PcmWav, buckets: number): WavPeaks {
  return { sampleRate: w.sampleRate, durationS: w.durationS, peaks: w.channels.map((c) => peaks(c, buckets)) };
}

/** Other formats: Web Audio decodes them (at a low rate: we only need the envelope). */
export async function decodePeaks(buf: ArrayBuffer, buckets: number): Promise<WavPeaks> {
  try {
    return wavPeaks(buf, buckets);
  } catch (e) {
    const Offline = (globalThis as { OfflineAudioContext?: typeof OfflineAudioContext }).OfflineAudioContext;
    if (!Offline) throw e;
    const ctx = new Offline(2, 1, 8000);
    const audio = await ctx.decodeAudioData(buf.slice(0));
    const chans = Array.from({ length: audio.numberOfChannels }, (_, i) => peaks(audio.getChannelData(i), buckets));
    return { sampleRate: audio.sampleRate, durationS: audio.duration, peaks: chans };
  }
}
