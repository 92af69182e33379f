import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { vi } from "vitest";
import { AuthProvider } from "../auth/AuthContext";
import { ToastProvider } from "../components/Toast";
import type { Me } from "../api/types";

export interface Call {
  method: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

type Handler = (call: Call) => Response | Promise<Response> | unknown;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * Replaces fetch with a router over "METHOD /path" keys (query strings ignored for matching, ":id" segments allowed).
 * A handler may return a Response or any value (sent as JSON 200). Unmatched requests get 404 in the backend's shape.
 */
export function mockApi(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const compiled = Object.entries(routes).map(([key, handler]) => {
    const [method, path] = key.split(" ");
    const re = new RegExp(`^${path.replace(/:[^/]+/g, "[^/]+")}$`);
    return { method, re, handler };
  });
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = typeof input === "string" ? input : input.toString();
    const method = (init.method ?? "GET").toUpperCase();
    const path = url.replace(/^https?:\/\/[^/]+/, "").split("?")[0];
    let body: unknown = init.body;
    if (typeof init.body === "string") {
      try {
        body = JSON.parse(init.body);
      } catch {
        body = init.body;
      }
    }
    const call = { method, url, body, headers: (init.headers ?? {}) as Record<string, string> };
    calls.push(call);
    const route = compiled.find((r) => r.method === method && r.re.test(path));
    if (!route) return json({ error: { code: "not_found", message: `no mock for ${method} ${path}`, details: [] } }, 404);
    const out = await route.handler(call);
    return out instanceof Response ? out : json(out);
  });
  vi.stubGlobal("fetch", fetchMock);
  return { calls, fetchMock };
}

export const ME: Me = {
  user: { id: "u1", email: "ada@example.com", name: "Ada" },
  org: { id: "o1", name: "Acme" },
  role: "owner",
};

/** Routes every signed-in test needs: the cookie refresh on load and /auth/me. */
export function sessionRoutes(me: Me = ME): Record<string, Handler> {
  return {
    "POST /api/v1/auth/refresh": () => json({ access_token: "at-1", refresh_token: "rt-1", expires_in: 900 }),
    "GET /api/v1/auth/me": () => me,
  };
}

export function renderApp(ui: ReactElement, { route = "/", path = "/" }: { route?: string; path?: string } = {}) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[route]}>
        <ToastProvider>
          <AuthProvider>
            <Routes>
              <Route path={path} element={ui} />
              <Route path="*" element={<div>elsewhere</div>} />
            </Routes>
          </AuthProvider>
        </ToastProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
