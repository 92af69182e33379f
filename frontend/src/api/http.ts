/**
 * The one fetch wrapper every API call goes through.
 *
 * Tokens: the short-lived access token lives only in this module's memory (never localStorage or sessionStorage). The
 * refresh token is the backend's httpOnly cookie: script can't read it, and a reload gets a new access token through
 * POST /auth/refresh with an empty body. The refresh token the backend also returns in the JSON body (for non-browser
 * clients) is deliberately dropped. See README "Tokens".
 */

export const API_BASE = "/api/v1";

export interface FieldError {
  path: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: FieldError[];
  constructor(status: number, message: string, code = "error", fields: FieldError[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
  /** Field errors keyed by their dotted path, for forms. */
  fieldMap(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of this.fields) out[f.path] = out[f.path] ? `${out[f.path]}; ${f.message}` : f.message;
    return out;
  }
}

type Loc = (string | number)[];

const LOCATIONS = new Set(["body", "query", "path", "header", "cookie"]);

function pathOf(loc: Loc | string | undefined): string {
  if (!loc) return "";
  const parts = typeof loc === "string" ? loc.split(".") : loc.map(String);
  // The backend prefixes where the input was ("body.config.llm.temperature"); forms only want the field path.
  return (LOCATIONS.has(parts[0]) ? parts.slice(1) : parts).join(".");
}

/** Reads any of the error shapes a FastAPI backend can produce into one ApiError. */
export async function toApiError(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const fallback = res.statusText || `Request failed (${res.status})`;
  if (!body || typeof body !== "object") return new ApiError(res.status, fallback);
  const b = body as Record<string, unknown>;
  const err = (typeof b.error === "object" && b.error ? b.error : b) as Record<string, unknown>;
  const rawFields = (err.details ?? err.fields ?? err.errors ?? (Array.isArray(err.detail) ? err.detail : [])) as unknown[];
  const fields: FieldError[] = Array.isArray(rawFields)
    ? rawFields.map((f) => {
        const o = (f ?? {}) as Record<string, unknown>;
        return {
          path: pathOf((o.path ?? o.loc ?? o.field) as Loc | string | undefined),
          message: String(o.message ?? o.msg ?? "invalid"),
        };
      })
    : [];
  const message =
    (typeof err.message === "string" && err.message) ||
    (typeof err.detail === "string" && err.detail) ||
    (typeof b.detail === "string" && b.detail) ||
    (fields.length ? fields.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join("; ") : fallback);
  const code = typeof err.code === "string" ? err.code : res.status === 422 ? "validation_error" : "error";
  return new ApiError(res.status, message, code, fields);
}

export interface TokenPair {
  access_token: string;
  refresh_token?: string | null;
}

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
let onSessionLost: (() => void) | null = null;

export const tokens = {
  get access(): string | null {
    return accessToken;
  },
  /** Keeps only the access token, in memory. The refresh token stays in its httpOnly cookie. */
  set(pair: TokenPair): void {
    accessToken = pair.access_token;
  },
  clear(): void {
    accessToken = null;
  },
  onSessionLost(cb: (() => void) | null): void {
    onSessionLost = cb;
  },
};

/** Exchanges the refresh cookie for a new access token; single-flight so parallel 401s refresh once. */
export function refreshSession(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await fetch(`${API_BASE}/auth/refresh`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: "{}",
        });
        if (!res.ok) {
          tokens.clear();
          return false;
        }
        tokens.set((await res.json()) as TokenPair);
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

export type Query = Record<string, string | number | boolean | null | undefined | (string | number)[]>;

export function buildUrl(path: string, query?: Query): string {
  const url = path.startsWith("/api/") ? path : `${API_BASE}${path}`;
  if (!query) return url;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => qs.append(k, String(x)));
    else qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `${url}?${s}` : url;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Skip the Authorization header and the refresh-on-401 retry (login, register, accept-invitation). */
  anonymous?: boolean;
  accept?: string;
}

/** Raw request: returns the Response (for blobs, streams); throws ApiError on non-2xx. */
export async function rawRequest(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const send = () => {
    const headers: Record<string, string> = { Accept: opts.accept ?? "application/json", ...opts.headers };
    let body: BodyInit | undefined;
    if (opts.body instanceof FormData || opts.body instanceof Blob) body = opts.body;
    else if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    if (!opts.anonymous && accessToken) headers.Authorization = `Bearer ${accessToken}`;
    return fetch(buildUrl(path, opts.query), {
      method,
      headers,
      body,
      signal: opts.signal,
      credentials: "same-origin",
    });
  };
  let res = await send();
  if (res.status === 401 && !opts.anonymous) {
    if (await refreshSession()) res = await send();
    else onSessionLost?.();
  }
  if (!res.ok) throw await toApiError(res);
  return res;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await rawRequest(method, path, opts);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get("content-type") ?? "";
  if (!type.includes("json")) return (await res.text()) as unknown as T;
  return (await res.json()) as T;
}

export const http = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>("GET", path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("POST", path, { ...opts, body }),
  put: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("PUT", path, { ...opts, body }),
  patch: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("PATCH", path, { ...opts, body }),
  delete: <T = void>(path: string, opts?: RequestOptions) => request<T>("DELETE", path, opts),
};

/** Fetches an authenticated file and hands it to the browser as a download (no token ever goes into a URL). */
export async function downloadFile(path: string, fallbackName: string, query?: Query): Promise<void> {
  const res = await rawRequest("GET", path, { query, accept: "*/*" });
  const blob = await res.blob();
  const disposition = res.headers.get("content-disposition") ?? "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
