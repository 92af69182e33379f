import { describe, expect, it } from "vitest";
import { encodeWav, floatToPcm16, parseWav, pcm16ToFloat, Resampler, wavPeaks } from "./audio";
import { Framer, parseServerEvent, toWsUrl } from "./browserCall";

function tone(n: number, amp: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin(i / 5));
}

describe("WAV", () => {
  it("reads a stereo PCM16 WAV back per channel", () => {
    const left = tone(8000, 0.5);
    const right = new Float32Array(8000);
    const wav = parseWav(encodeWav([left, right], 8000));
    expect(wav.sampleRate).toBe(8000);
    expect(wav.channels).toHaveLength(2);
    expect(wav.durationS).toBe(1);
    expect(Math.max(...wav.channels[0])).toBeCloseTo(0.5, 2);
    expect(Math.max(...wav.channels[1].map(Math.abs))).toBe(0);
  });

  it("computes per-channel peaks without decoding everything", () => {
    const left = new Float32Array(16000);
    left.fill(0.8, 0, 8000); // loud first half on the caller side
    const right = new Float32Array(16000);
    right.fill(-0.4, 8000); // agent speaks in the second half
    const p = wavPeaks(encodeWav([left, right], 16000), 10);
    expect(p.durationS).toBe(1);
    expect(p.peaks[0][0]).toBeCloseTo(0.8, 2);
    expect(p.peaks[0][9]).toBe(0);
    expect(p.peaks[1][0]).toBe(0);
    expect(p.peaks[1][9]).toBeCloseTo(0.4, 2);
  });

  it("rejects non-WAV bytes", () => {
    expect(() => wavPeaks(new TextEncoder().encode("hello world, not audio").buffer as ArrayBuffer, 10)).toThrow(/Not a WAV/);
  });

  it("streams with an unknown data size (0xFFFFFFFF) up to the end of the buffer", () => {
    const buf = encodeWav([tone(1600, 0.3)], 16000);
    new DataView(buf).setUint32(40, 0xffffffff, true);
    expect(parseWav(buf).durationS).toBeCloseTo(0.1, 3);
  });
});

describe("PCM", () => {
  it("round-trips float <-> PCM16 and clips", () => {
    const pcm = floatToPcm16(Float32Array.from([0, 0.5, -0.5, 1.5, -1.5]));
    expect(Array.from(pcm)).toEqual([0, 16383, -16384, 32767, -32768]);
    expect(pcm16ToFloat(pcm)[1]).toBeCloseTo(0.5, 3);
  });

  it("resamples 48 kHz to 16 kHz across chunk boundaries", () => {
    const r = new Resampler(48000, 16000);
    let total = 0;
    for (let i = 0; i < 10; i++) total += r.process(tone(480, 0.2)).length;
    expect(total).toBe(1600); // 100 ms at 16 kHz
  });
});

describe("browser call protocol", () => {
  it("frames audio into 20 ms PCM16 frames, carrying the remainder", () => {
    const f = new Framer();
    expect(f.push(new Int16Array(500))).toHaveLength(1);
    const frames = f.push(new Int16Array(500));
    expect(frames).toHaveLength(2);
    expect(frames[0].byteLength).toBe(640);
  });

  it("parses server events and ignores junk", () => {
    expect(parseServerEvent('{"type":"clear"}')).toEqual({ type: "clear" });
    expect(parseServerEvent('{"type":"transcript","role":"agent","text":"hi","final":true}')).toMatchObject({ text: "hi" });
    expect(parseServerEvent("nope")).toBeNull();
    expect(parseServerEvent('{"no":"type"}')).toBeNull();
  });

  it("turns relative and http URLs into WebSocket URLs", () => {
    const loc = { protocol: "https:", host: "app.example.com" } as Location;
    expect(toWsUrl("/api/v1/test-calls/ws?token=x", loc)).toBe("wss://app.example.com/api/v1/test-calls/ws?token=x");
    expect(toWsUrl("http://127.0.0.1:8100/browser", loc)).toBe("ws://127.0.0.1:8100/browser");
    expect(toWsUrl("wss://voice.example.com/b", loc)).toBe("wss://voice.example.com/b");
  });
});
