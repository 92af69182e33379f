import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import type { CallDetail, Turn } from "../../api/types";
import { activeTurnIndex, Transcript } from "../../components/Transcript";
import { WaveformPlayer } from "../../components/WaveformPlayer";
import { encodeWav } from "../../lib/audio";
import { json, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import CallDetailPage from "./CallDetailPage";
import CallLogPage from "./CallLogPage";

const TURNS: Turn[] = [
  { turn_index: 0, speaker: "agent", text: "Hello, Acme dental.", start_ms: 0, end_ms: 1500 },
  { turn_index: 1, speaker: "caller", text: "I need to move my appointment.", start_ms: 2000, end_ms: 4000 },
  { turn_index: 2, speaker: "agent", text: "Sure, which day works?", start_ms: 4600, end_ms: 6000, interrupted: true, latency: { stt_final_ms: 180, llm_first_token_ms: 240, tts_first_audio_ms: 120, voice_to_voice_ms: 600 } },
];

function stereoWav(seconds = 6, rate = 8000): ArrayBuffer {
  const n = seconds * rate;
  const caller = new Float32Array(n);
  const agent = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    if (t >= 2 && t < 4) caller[i] = 0.5 * Math.sin(i / 3);
    if (t < 1.5 || (t >= 4.6 && t < 6)) agent[i] = 0.4 * Math.sin(i / 4);
  }
  return encodeWav([caller, agent], rate);
}

beforeEach(() => {
  globalThis.URL.createObjectURL = vi.fn(() => "blob:rec");
  globalThis.URL.revokeObjectURL = vi.fn();
  vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
  vi.spyOn(HTMLMediaElement.prototype, "pause").mockImplementation(() => {});
});
afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("transcript sync", () => {
  it("says which documents an answer came from, or that retrieval failed", () => {
    render(<Transcript turns={[
      { turn_index: 0, speaker: "agent", text: "A cleaning is 95 dollars.", start_ms: 0, end_ms: 1500,
        knowledge: { chunk_ids: ["s1-1-0", "s1-1-1"], sources: ["pricing.pdf, p. 2", "pricing.pdf, p. 2"], error: null, duration_ms: 14 } },
      { turn_index: 1, speaker: "agent", text: "Sorry, I don't know.", start_ms: 2000, end_ms: 3000,
        knowledge: { chunk_ids: [], sources: [], error: "embeddings endpoint down", duration_ms: 2000 } },
    ]} currentTime={0} />);
    const items = screen.getAllByTestId("transcript-turn");
    expect(within(items[0]).getByText("answered from: pricing.pdf, p. 2")).toBeInTheDocument();
    expect(within(items[1]).getByText("knowledge unavailable")).toBeInTheDocument();
  });

  it("finds the turn playing at a time", () => {
    expect(activeTurnIndex(TURNS, 0.5)).toBe(0);
    expect(activeTurnIndex(TURNS, 1.8)).toBe(0); // gap: the last started turn stays current
    expect(activeTurnIndex(TURNS, 2.1)).toBe(1);
    expect(activeTurnIndex(TURNS, 99)).toBe(2);
  });

  it("highlights the current turn, shows latency and seeks on click", async () => {
    const onSeek = vi.fn();
    render(<Transcript turns={TURNS} currentTime={2.5} onSeek={onSeek} />);
    const items = screen.getAllByTestId("transcript-turn");
    expect(items[1]).toHaveAttribute("aria-current", "true");
    expect(items[0]).not.toHaveAttribute("aria-current");
    expect(within(items[2]).getByText("interrupted")).toBeInTheDocument();
    expect(within(items[2]).getAllByText("600 ms")[0]).toBeInTheDocument();
    await userEvent.click(within(items[2]).getByRole("button", { name: /Play from 0:05/ }));
    expect(onSeek).toHaveBeenCalledWith(4.6);
  });
});

describe("waveform player", () => {
  it("draws one lane per channel and seeks from the keyboard", async () => {
    const onTime = vi.fn();
    render(<WaveformPlayer wav={stereoWav()} turns={TURNS} onTime={onTime} />);
    const slider = await screen.findByRole("slider", { name: "Recording position" });
    expect(screen.getByText("Caller", { selector: ".lane-label" })).toBeInTheDocument();
    expect(screen.getByText("Agent", { selector: ".lane-label" })).toBeInTheDocument();
    expect(slider).toHaveAttribute("aria-valuemax", "6");
    slider.focus();
    fireEvent.keyDown(slider, { key: "End" });
    await waitFor(() => expect(onTime).toHaveBeenCalled());
    expect(screen.getByRole("checkbox", { name: "Caller" })).toBeChecked();
    await userEvent.click(screen.getByRole("button", { name: "Play recording" }));
    expect(HTMLMediaElement.prototype.play).toHaveBeenCalled();
  });

  it("reports a recording it can't read", async () => {
    render(<WaveformPlayer wav={new TextEncoder().encode("garbage").buffer as ArrayBuffer} />);
    expect(await screen.findByRole("alert")).toHaveTextContent(/Not a WAV/);
  });
});

const CALL: CallDetail = {
  id: "c1",
  direction: "inbound",
  carrier: "twilio",
  from_number: "+14155550100",
  to_number: "+14155550123",
  agent_id: "ag1",
  agent_name: "Receptionist",
  agent_version: 3,
  status: "completed",
  end_reason: "caller_hangup",
  created_at: "2024-05-01T10:00:00Z",
  started_at: "2024-05-01T10:00:00Z",
  duration_s: 6,
  turns: TURNS,
  usage: { caller_audio_s: 2, agent_audio_s: 3, stt_audio_s: 6, llm_prompt_tokens: 1200, llm_completion_tokens: 40, tts_characters: 70 },
  has_recording: true,
  recording: { duration_s: 6, sample_rate: 8000, channels: 2, size_bytes: 96044 },
};

describe("call detail", () => {
  it("loads the recording through the backend and shows transcript, end reason and usage", async () => {
    const wav = stereoWav();
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/calls/c1": () => CALL,
      "GET /api/v1/calls/c1/recording/audio": () => new Response(wav, { headers: { "content-type": "audio/wav" } }),
    });
    renderApp(<CallDetailPage />, { route: "/calls/c1", path: "/calls/:callId" });
    expect((await screen.findAllByText("Caller hangup")).length).toBeGreaterThan(0);
    expect(screen.getByText("1,200 / 40")).toBeInTheDocument();
    expect(screen.getAllByTestId("transcript-turn")).toHaveLength(3);
    expect(await screen.findByRole("slider", { name: "Recording position" })).toBeInTheDocument();
    const audio = calls.find((c) => c.url.endsWith("/recording/audio"))!;
    expect(audio.headers.Authorization).toBe("Bearer at-1"); // header, never a token in the URL
  });

  it("lists the service fallbacks a degraded call went through", async () => {
    const degradations = [
      { service: "tts", from_endpoint: "http://tts-a:8200", to: "http://tts-b:8200", reason: "connect refused" },
      { service: "llm", from_endpoint: "", to: "end_call", reason: "every endpoint failed" },
    ];
    mockApi({ ...sessionRoutes(), "GET /api/v1/calls/c1": () => ({ ...CALL, has_recording: false, recording: null, degradations }) });
    renderApp(<CallDetailPage />, { route: "/calls/c1", path: "/calls/:callId" });
    const list = await screen.findByRole("list", { name: "Service fallbacks" });
    expect(list.querySelectorAll("li")).toHaveLength(2);
    expect(list).toHaveTextContent("TTS");
    expect(list).toHaveTextContent("every endpoint failed");
  });

  it("shows the call's cost, its analysis and the tool arguments", async () => {
    const extra = {
      cost: { currency: "USD", telephony: 0.5, stt: 0, llm: 0.01, tts: 0, compute: 0.002, total: 0.512 },
      analysis: { status: "done", attempts: 1, summary: "Booked for Tuesday.", success: true,
                  data: { appointment_day: "Tuesday" } },
      tools: [{ name: "book_appointment", ok: true, duration_ms: 120, detail: "HTTP 200", arguments: '{"day": "Tuesday"}' }],
    };
    mockApi({ ...sessionRoutes(), "GET /api/v1/calls/c1": () => ({ ...CALL, has_recording: false, recording: null, ...extra }) });
    renderApp(<CallDetailPage />, { route: "/calls/c1", path: "/calls/:callId" });
    expect(await screen.findByLabelText("Cost breakdown")).toHaveTextContent("0.5120 USD");
    expect(screen.getByLabelText("Analysis result")).toHaveTextContent("Booked for Tuesday.");
    expect(screen.getByLabelText("Analysis result")).toHaveTextContent("appointment_day");
    expect(screen.getByText('{"day": "Tuesday"}')).toBeInTheDocument();
  });

  it("says when there is no recording", async () => {
    mockApi({ ...sessionRoutes(), "GET /api/v1/calls/c1": () => ({ ...CALL, has_recording: false, recording: null }) });
    renderApp(<CallDetailPage />, { route: "/calls/c1", path: "/calls/:callId" });
    expect(await screen.findByText("No recording")).toBeInTheDocument();
  });
});

describe("call log", () => {
  it("lists calls, filters by search and pages with the cursor", async () => {
    const row = (id: string) => ({ ...CALL, id, turns: undefined });
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents": () => [{ id: "ag1", name: "Receptionist", version: 3 }],
      "GET /api/v1/calls": (c) => {
        const u = new URL(c.url, "http://x");
        if (u.searchParams.get("cursor") === "p2") return { items: [row("c3")], next_cursor: null };
        if (u.searchParams.get("q") === "refund") return { items: [], next_cursor: null };
        return { items: [row("c1"), row("c2")], next_cursor: "p2" };
      },
    });
    renderApp(<CallLogPage />, { route: "/calls", path: "/calls" });
    expect(await screen.findAllByRole("link", { name: /Call at/ })).toHaveLength(2);
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(screen.getAllByRole("link", { name: /Call at/ })).toHaveLength(3));
    await user.type(screen.getByLabelText("Search transcripts and numbers"), "refund");
    expect(await screen.findByText("No calls match these filters")).toBeInTheDocument();
    expect(calls.some((c) => c.url.includes("q=refund"))).toBe(true);
    await user.selectOptions(screen.getByLabelText("Analysis"), "Not successful");
    await waitFor(() => expect(calls.some((c) => c.url.includes("success=false"))).toBe(true));
  });

  it("shows an error with a retry", async () => {
    mockApi({ ...sessionRoutes(), "GET /api/v1/agents": () => [], "GET /api/v1/calls": () => json({ error: { code: "internal_error", message: "boom" } }, 500) });
    renderApp(<CallLogPage />, { route: "/calls", path: "/calls" });
    expect(await screen.findByRole("alert")).toHaveTextContent("boom");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });
});
