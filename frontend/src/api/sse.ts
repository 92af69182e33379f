/**
 * Server-sent events over fetch, so the request carries the Authorization header (EventSource cannot, and a token in
 * the URL would end up in logs). Reconnects with backoff and resumes with Last-Event-ID.
 */
import { buildUrl, rawRequest, type Query } from "./http";

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser for the text/event-stream format; feed it chunks, it calls back per complete event. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined;
  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  feed(chunk: string): void {
    this.buffer += chunk;
    let idx: number;
    while ((idx = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, idx);
      const nl = this.buffer.slice(idx, idx + 2) === "\r\n" ? 2 : 1;
      this.buffer = this.buffer.slice(idx + nl);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length) this.onMessage({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }
}

export interface SseHandle {
  close(): void;
}

export interface SseOptions {
  query?: Query;
  onMessage: (m: SseMessage) => void;
  onStatus?: (s: "connecting" | "open" | "retrying" | "closed", error?: unknown) => void;
  /** Return true to stop reconnecting (e.g. the campaign reached a terminal state). */
  shouldStop?: () => boolean;
}

export function openEventStream(path: string, opts: SseOptions): SseHandle {
  const ctrl = new AbortController();
  let closed = false;
  let lastId: string | undefined;
  let attempt = 0;

  const run = async () => {
    while (!closed) {
      opts.onStatus?.(attempt ? "retrying" : "connecting");
      try {
        const res = await rawRequest("GET", buildUrl(path, opts.query), {
          signal: ctrl.signal,
          accept: "text/event-stream",
          headers: lastId ? { "Last-Event-ID": lastId } : {},
        });
        if (!res.body) throw new Error("no stream body");
        opts.onStatus?.("open");
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser((m) => {
          if (m.id) lastId = m.id;
          opts.onMessage(m);
        });
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch (e) {
        if (closed || ctrl.signal.aborted) break;
        opts.onStatus?.("retrying", e);
      }
      if (closed || opts.shouldStop?.()) break;
      attempt += 1;
      await new Promise((r) => setTimeout(r, Math.min(15000, 500 * 2 ** Math.min(attempt, 5))));
    }
    opts.onStatus?.("closed");
  };
  void run();
  return {
    close() {
      closed = true;
      ctrl.abort();
    },
  };
}
