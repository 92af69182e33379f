import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { mockApi, renderApp, sessionRoutes } from "../../test/utils";
import LivePage from "./LivePage";

const TICKET = { url: "ws://voice.test/v1/takeover/c1", ticket: "tkt-1", expires_in_s: 60 };

/** A live-call event stream the test writes to, event by event. */
function liveStream() {
  let push: (chunk: string) => void = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const enc = new TextEncoder();
      push = (chunk) => controller.enqueue(enc.encode(chunk));
    },
  });
  const response = new Response(body, { headers: { "content-type": "text/event-stream" } });
  return { response, send: (event: string, data: unknown) => push(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) };
}

class FakeSocket {
  static OPEN = 1;
  static instances: FakeSocket[] = [];
  readyState = 1;
  binaryType = "blob";
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
    setTimeout(() => this.onopen?.(), 0);
  }
  send(data: unknown) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
}

function fakeAudio() {
  const node = () => ({ connect: vi.fn(), disconnect: vi.fn(), port: { onmessage: null } });
  vi.stubGlobal("AudioContext", class {
    sampleRate = 48000;
    currentTime = 0;
    destination = {};
    audioWorklet = { addModule: async () => {} };
    resume = async () => {};
    close = async () => {};
    createMediaStreamSource = node;
  });
  vi.stubGlobal("AudioWorkletNode", class { port = { onmessage: null }; connect() {} disconnect() {} });
  const getUserMedia = vi.fn(async () => ({ getTracks: () => [] }));
  Object.defineProperty(navigator, "mediaDevices", { value: { getUserMedia }, configurable: true });
  vi.stubGlobal("WebSocket", FakeSocket);
  return getUserMedia;
}

afterEach(() => {
  tokens.clear();
  FakeSocket.instances = [];
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("live call view", () => {
  it("shows the caller's interim words greyed, then replaces them with the final turn", async () => {
    const stream = liveStream();
    mockApi({ ...sessionRoutes(), "GET /api/v1/live/calls/:id/stream": () => stream.response });
    renderApp(<LivePage />, { route: "/live/c1", path: "/live/:callId" });
    await screen.findByText("Waiting for the first turn…");
    stream.send("interim", { speaker: "caller", text: "I would like to", at_ms: 900 });
    const interim = await screen.findByText(/I would like to…/);
    expect(interim.closest("li")).toHaveAttribute("data-interim", "true");
    expect(interim.closest("li")).toHaveClass("muted");
    stream.send("turn", { turn_index: 1, speaker: "caller", text: "I would like to book a table.", start_ms: 500,
                         end_ms: 2000, interrupted: false, latency: null });
    await screen.findByText("I would like to book a table.");
    expect(screen.queryByText(/I would like to…/)).not.toBeInTheDocument();
  });

  it("takes the call over with the microphone and hands it back", async () => {
    const getUserMedia = fakeAudio();
    const stream = liveStream();
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/live/calls/:id/stream": () => stream.response,
      "POST /api/v1/live/calls/:id/takeover": () => TICKET,
    });
    renderApp(<LivePage />, { route: "/live/c1", path: "/live/:callId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Take over" }));
    await waitFor(() => expect(FakeSocket.instances).toHaveLength(1));
    expect(calls.some((c) => c.method === "POST" && c.url.endsWith("/live/calls/c1/takeover"))).toBe(true);
    expect(getUserMedia).toHaveBeenCalled();
    const socket = FakeSocket.instances[0];
    expect(socket.url).toBe(TICKET.url);
    await waitFor(() => expect(socket.sent[0]).toBe("tkt-1")); // the ticket first, never in the URL
    await user.click(screen.getByRole("button", { name: "Hand back to the agent" }));
    expect(socket.sent).toContain(JSON.stringify({ type: "hangup" }));
    expect(await screen.findByRole("button", { name: "Take over" })).toBeInTheDocument();
    expect(screen.getByRole("status")).toHaveTextContent("The agent has the call again.");
  });
});
