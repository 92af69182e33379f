import type { ContactStatus, Progress } from "./api";

const PARTS: { key: ContactStatus; label: string; tone: string }[] = [
  { key: "completed", label: "Completed", tone: "good" },
  { key: "voicemail", label: "Voicemail", tone: "info" },
  { key: "busy", label: "Busy", tone: "warn" },
  { key: "no_answer", label: "No answer", tone: "warn" },
  { key: "failed", label: "Failed", tone: "bad" },
  { key: "dnc", label: "Do-not-call", tone: "muted" },
  { key: "canceled", label: "Canceled", tone: "muted" },
  { key: "dialing", label: "Dialing / on a call", tone: "live" },
];

/** Stacked bar of contact outcomes; the legend doubles as the accessible text. */
export function CampaignProgress({ progress, compact }: { progress: Progress; compact?: boolean }) {
  const total = Math.max(1, progress.total);
  const n = (k: ContactStatus) => progress.by_status[k] ?? 0;
  const pct = Math.round((Math.min(progress.done, progress.total) / total) * 100);
  return (
    <div className={`cprogress${compact ? " compact" : ""}`}>
      <div
        className="cprogress-bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={progress.total}
        aria-valuenow={Math.min(progress.done, progress.total)}
        aria-valuetext={`${progress.done} of ${progress.total} contacts done (${pct}%)`}
        aria-label="Campaign progress"
      >
        {PARTS.map((p) => (n(p.key) ? <span key={p.key} className={`seg seg-${p.tone}`} style={{ width: `${(n(p.key) / total) * 100}%` }} /> : null))}
      </div>
      {compact ? (
        <span className="small muted">{pct}% · {progress.total} contacts</span>
      ) : (
        <dl className="cprogress-legend">
          <div><dt>Contacts</dt><dd>{progress.total}</dd></div>
          <div><dt>Done</dt><dd>{progress.done}</dd></div>
          <div><dt>Waiting</dt><dd>{n("pending") + n("importing")}</dd></div>
          <div><dt>Live calls</dt><dd>{progress.live_calls}</dd></div>
          <div><dt>Dials placed</dt><dd>{progress.dials}</dd></div>
          {PARTS.map((p) => (
            <div key={p.key} className={`leg-${p.tone}`}>
              <dt><span className="legend-swatch" aria-hidden="true" />{p.label}</dt>
              <dd>{n(p.key)}</dd>
            </div>
          ))}
        </dl>
      )}
    </div>
  );
}
