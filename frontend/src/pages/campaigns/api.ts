/**
 * Campaign and do-not-call API (backend/api/routes/campaigns.py, dnc.py). Types are the generated OpenAPI schemas;
 * this file only adds the wizard's complete settings shape and the 422 row-error reader.
 */
import { ApiError, downloadFile, http } from "../../api/http";
import { openEventStream, type SseHandle } from "../../api/sse";
import type { components } from "../../api/schema";
import type { Page } from "../../api/types";

type S = components["schemas"];

export type Campaign = S["CampaignOut"];
export type CampaignCreate = S["CampaignCreate"];
export type CampaignUpdate = S["CampaignUpdate"];
export type CampaignStatus = Campaign["status"];
export type Progress = S["Progress"];
export type CampaignContact = S["ContactOut"];
export type ContactStatus = CampaignContact["status"];
export type ImportReport = S["ImportReport"];
export type RowError = S["RowError"];
export type TimeRange = S["TimeRange"];
export type DncEntry = S["DncEntryOut"];
export type OrgCampaignSettings = S["OrgCampaignSettings"];

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";
export const WEEKDAYS: Weekday[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export type RetryOutcome = "busy" | "no_answer" | "failed" | "voicemail";

export interface RetryRule {
  max_attempts: number;
  delays_s: number[];
}

/** Everything the wizard sets, all present (CampaignCreate with its defaults filled in). */
export interface WizardSettings {
  name: string;
  agent_id: string;
  caller_number_ids: string[];
  windows: { timezone: string; use_contact_timezone: boolean; days: Partial<Record<Weekday, TimeRange[]>> };
  max_concurrent_calls: number;
  calls_per_second: number;
  retry: Record<RetryOutcome, RetryRule>;
  voicemail: { detect: boolean; action: "hang_up" | "leave_message"; message: string | null };
  ring_timeout_s: number;
  default_region: string;
}

export type CampaignEvent = ({ type: "progress" } & Progress) | { type: "end" };

export interface UploadOptions {
  default_region: string;
  phone_column?: string | null;
}

function uploadForm(file: File, opts: UploadOptions): FormData {
  const fd = new FormData();
  fd.append("file", file);
  fd.append("default_region", opts.default_region);
  if (opts.phone_column) fd.append("phone_column", opts.phone_column);
  return fd;
}

/**
 * A rejected upload (422 `invalid_csv`) lists every bad row as `details[].path = file.rows[<row>].<column>`;
 * nothing was imported. Returns those rows, or null when the error is something else.
 */
export function rowErrorsOf(error: unknown): { errors: RowError[]; total: number } | null {
  if (!(error instanceof ApiError) || error.status !== 422) return null;
  const errors: RowError[] = [];
  for (const f of error.fields) {
    const m = /(?:^|\.)rows\[(\d+)\](?:\.(.+))?$/.exec(f.path);
    if (m) errors.push({ row: Number(m[1]), column: m[2] ?? null, message: f.message });
  }
  if (!errors.length && error.code !== "invalid_csv") return null;
  const counted = /^(\d+) invalid row/.exec(error.message);
  return { errors, total: counted ? Number(counted[1]) : errors.length };
}

export const campaignsApi = {
  list: () => http.get<Campaign[]>("/campaigns"),
  get: (id: string) => http.get<Campaign>(`/campaigns/${id}`),
  /** A draft: upload contacts, then start it. */
  create: (body: CampaignCreate) => http.post<Campaign>("/campaigns", body),
  update: (id: string, body: CampaignUpdate) => http.patch<Campaign>(`/campaigns/${id}`, body),
  remove: (id: string) => http.delete(`/campaigns/${id}`),
  /** All or nothing: any bad row and nothing is imported (see rowErrorsOf). Already-present numbers are skipped. */
  importContacts: (id: string, file: File, opts: UploadOptions) =>
    http.post<ImportReport>(`/campaigns/${id}/contacts`, uploadForm(file, opts)),
  contacts: (id: string, status?: string, cursor?: string | null) =>
    http.get<Page<CampaignContact>>(`/campaigns/${id}/contacts`, { query: { status, cursor, limit: 100 } }),
  progress: (id: string) => http.get<Progress>(`/campaigns/${id}/progress`),
  action: (id: string, action: "start" | "pause" | "resume" | "cancel") => http.post<Campaign>(`/campaigns/${id}/${action}`),
  report: (id: string, name: string) => downloadFile(`/campaigns/${id}/report.csv`, `${name || "campaign"}-outcomes.csv`),
  orgSettings: () => http.get<OrgCampaignSettings>("/campaign-settings"),
  setOrgSettings: (body: OrgCampaignSettings) => http.put<OrgCampaignSettings>("/campaign-settings", body),
  /** SSE: `progress` (a Progress) on every change, `end` once the campaign is over. */
  events: (id: string, onEvent: (e: CampaignEvent) => void, onStatus?: (s: string) => void, shouldStop?: () => boolean): SseHandle =>
    openEventStream(`/campaigns/${id}/events`, {
      onMessage: (m) => {
        if (m.event === "end") return onEvent({ type: "end" });
        try {
          const data = JSON.parse(m.data) as Progress;
          if (m.event === "progress" || m.event === "message") onEvent({ ...data, type: "progress" });
        } catch {
          /* ignore malformed events */
        }
      },
      onStatus,
      shouldStop,
    }),
};

export const dncApi = {
  list: (cursor?: string | null) => http.get<Page<DncEntry>>("/dnc", { query: { cursor, limit: 100 } }),
  /** 404 when the number is not listed. */
  get: (phone: string, region = "US") => http.get<DncEntry>(`/dnc/${encodeURIComponent(phone)}`, { query: { region } }),
  add: (phone: string, reason?: string, default_region = "US") =>
    http.post<DncEntry>("/dnc", { phone, reason: reason || null, default_region }),
  remove: (phone: string, region = "US") => http.delete(`/dnc/${encodeURIComponent(phone)}`, { query: { region } }),
  importCsv: (file: File, default_region = "US") => http.post<ImportReport>("/dnc/import", uploadForm(file, { default_region })),
};

export const TERMINAL: CampaignStatus[] = ["completed", "canceled"];

export const DEFAULT_RETRY: Record<RetryOutcome, RetryRule> = {
  busy: { max_attempts: 3, delays_s: [600] },
  no_answer: { max_attempts: 3, delays_s: [1800] },
  failed: { max_attempts: 2, delays_s: [300] },
  voicemail: { max_attempts: 1, delays_s: [3600] },
};
