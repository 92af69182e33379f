export function fmtDateTime(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function fmtDate(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** 75.4 -> "1:15"; 3725 -> "1:02:05". */
export function fmtDuration(seconds?: number | null): string {
  if (seconds == null || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(sec).padStart(2, "0")}`;
}

export function fmtMs(ms?: number | null): string {
  if (ms == null || Number.isNaN(ms)) return "—";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function fmtPct(ratio?: number | null): string {
  if (ratio == null || Number.isNaN(ratio)) return "—";
  return `${(ratio * 100).toFixed(ratio >= 0.995 || ratio === 0 ? 0 : 1)}%`;
}

export function fmtInt(n?: number | null): string {
  if (n == null || Number.isNaN(n)) return "—";
  return Math.round(n).toLocaleString();
}

export function humanize(s?: string | null): string {
  if (!s) return "—";
  return s.replace(/[_.]/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

/** A date-input day as an ISO instant at local midnight (start) or the end of that day (end). */
export function dayToIso(day: string, edge: "start" | "end"): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (edge === "end") d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** Costs: cents are too coarse for one call (0.0042 USD), so small amounts keep four decimals. */
export function fmtMoney(amount?: number | null, currency = "USD"): string {
  if (amount == null || Number.isNaN(amount)) return "—";
  const digits = Math.abs(amount) < 1 && amount !== 0 ? 4 : 2;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: digits }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${currency}`; // not an ISO 4217 code
  }
}
