import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, http, refreshSession, tokens, toApiError } from "./http";
import { SseParser } from "./sse";
import { json, mockApi } from "../test/utils";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

describe("errors", () => {
  it("reads the backend's one error shape, with field paths minus the location", async () => {
    const err = await toApiError(
      json(
        {
          error: {
            code: "validation_error",
            message: "body.config.llm.temperature: Input should be less than or equal to 2",
            details: [{ path: "body.config.llm.temperature", message: "Input should be less than or equal to 2", type: "less_than_equal" }],
          },
        },
        422,
      ),
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(422);
    expect(err.code).toBe("validation_error");
    expect(err.fieldMap()).toEqual({ "config.llm.temperature": "Input should be less than or equal to 2" });
  });

  it("reads FastAPI's default shapes and non-JSON bodies", async () => {
    expect((await toApiError(json({ detail: "Nope" }, 403))).message).toBe("Nope");
    const e = await toApiError(json({ detail: [{ loc: ["body", "email"], msg: "bad email" }] }, 422));
    expect(e.fieldMap()).toEqual({ email: "bad email" });
    expect((await toApiError(new Response("<html>", { status: 502, statusText: "Bad Gateway" }))).message).toBe("Bad Gateway");
  });
});

describe("tokens and refresh", () => {
  it("sends the in-memory access token and never stores the body refresh token", async () => {
    const { calls } = mockApi({ "GET /api/v1/agents": () => [] });
    tokens.set({ access_token: "abc", refresh_token: "secret-refresh" });
    await http.get("/agents");
    expect(calls[0].headers.Authorization).toBe("Bearer abc");
    expect(JSON.stringify(sessionStorage)).not.toContain("secret-refresh");
    expect(JSON.stringify(localStorage)).not.toContain("secret-refresh");
  });

  it("on 401 refreshes once through the cookie and retries", async () => {
    let n = 0;
    const { calls } = mockApi({
      "GET /api/v1/agents": (c) => (c.headers.Authorization === "Bearer fresh" ? [{ id: "a" }] : json({ error: { code: "unauthorized", message: "expired" } }, 401)),
      "POST /api/v1/auth/refresh": () => {
        n += 1;
        return { access_token: "fresh", refresh_token: "r2", expires_in: 900 };
      },
    });
    tokens.set({ access_token: "stale" });
    const [a, b] = await Promise.all([http.get("/agents"), http.get("/agents")]);
    expect(a).toEqual([{ id: "a" }]);
    expect(b).toEqual([{ id: "a" }]);
    expect(n).toBe(1); // single-flight
    const refresh = calls.find((c) => c.url.endsWith("/auth/refresh"))!;
    expect(refresh.body).toEqual({}); // the cookie carries the refresh token
  });

  it("reports a lost session when refresh fails", async () => {
    mockApi({
      "GET /api/v1/agents": () => json({ error: { code: "unauthorized", message: "expired" } }, 401),
      "POST /api/v1/auth/refresh": () => json({ error: { code: "unauthorized", message: "reused" } }, 401),
    });
    const lost = vi.fn();
    tokens.onSessionLost(lost);
    tokens.set({ access_token: "stale" });
    await expect(http.get("/agents")).rejects.toMatchObject({ status: 401 });
    expect(lost).toHaveBeenCalled();
    expect(tokens.access).toBeNull();
    expect(await refreshSession()).toBe(false);
    tokens.onSessionLost(null);
  });
});

describe("SSE parser", () => {
  it("assembles events split across chunks, with ids and comments", () => {
    const got: unknown[] = [];
    const p = new SseParser((m) => got.push(m));
    p.feed(": keep-alive\n\nevent: progress\nid: 7\ndata: {\"a\":");
    p.feed("1}\n\ndata: line1\ndata: line2\r\n\r\n");
    expect(got).toEqual([
      { event: "progress", data: '{"a":1}', id: "7" },
      { event: "message", data: "line1\nline2", id: "7" },
    ]);
  });
});
