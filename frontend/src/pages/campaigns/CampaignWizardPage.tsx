import { useEffect, useMemo, useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router-dom";
import { agentsApi, numbersApi } from "../../api/endpoints";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, Checkbox, EmptyState, InlineError, NumberField, PageHeader, routeMissing, SelectField, Spinner,
  TextArea, TextField,
} from "../../components/ui";
import { previewContacts, readText, type CsvPreview } from "../../lib/csv";
import { findVariables } from "../../lib/variables";
import {
  campaignsApi, DEFAULT_RETRY, rowErrorsOf, WEEKDAYS, type Campaign, type ImportReport, type RetryOutcome, type RowError,
  type TimeRange, type Weekday, type WizardSettings,
} from "./api";
import { DataTable } from "../../components/DataTable";

export const COUNTRIES: { iso: string; code: string; name: string }[] = [
  { iso: "US", code: "1", name: "United States / Canada (+1)" },
  { iso: "GB", code: "44", name: "United Kingdom (+44)" },
  { iso: "IN", code: "91", name: "India (+91)" },
  { iso: "AU", code: "61", name: "Australia (+61)" },
  { iso: "DE", code: "49", name: "Germany (+49)" },
  { iso: "FR", code: "33", name: "France (+33)" },
  { iso: "ES", code: "34", name: "Spain (+34)" },
  { iso: "BR", code: "55", name: "Brazil (+55)" },
  { iso: "MX", code: "52", name: "Mexico (+52)" },
  { iso: "SG", code: "65", name: "Singapore (+65)" },
  { iso: "AE", code: "971", name: "United Arab Emirates (+971)" },
];
const DAY_NAMES: Record<Weekday, string> = {
  mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday", sat: "Saturday", sun: "Sunday",
};
const OUTCOMES: Record<RetryOutcome, string> = { busy: "Busy", no_answer: "No answer", failed: "Failed", voicemail: "Voicemail" };
const STEPS = ["Agent", "Contacts", "Calling hours", "Limits & retries", "Review"] as const;

function timezones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  } catch {
    return [];
  }
}

interface Upload {
  file: File;
  preview: CsvPreview | null;
  state: "uploading" | "imported" | "rejected" | "failed";
  report?: ImportReport;
  rowErrors?: RowError[];
  rowErrorTotal?: number;
  error?: unknown;
}

/**
 * The wizard saves a draft campaign when it leaves the first step, so the contact upload in step 2 is checked and
 * imported by the server itself (all or nothing: a file with any bad row imports nothing and every bad row is listed).
 * The remaining steps are saved with PATCH; the last one starts the campaign or leaves it as a draft.
 */
export default function CampaignWizardPage() {
  const navigate = useNavigate();
  const notify = useToast();
  const qc = useQueryClient();
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const numbers = useQuery({ queryKey: ["phone-numbers"], queryFn: numbersApi.list });
  const [step, setStep] = useState(0);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const [draft, setDraft] = useState<Campaign | null>(null);
  const [s, setS] = useState<WizardSettings>({
    name: "",
    agent_id: "",
    caller_number_ids: [],
    windows: {
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
      use_contact_timezone: true,
      days: Object.fromEntries(WEEKDAYS.slice(0, 5).map((d) => [d, [{ start: "09:00", end: "18:00" }]])),
    },
    max_concurrent_calls: 5,
    calls_per_second: 1,
    retry: DEFAULT_RETRY,
    voicemail: { detect: true, action: "hang_up", message: null },
    ring_timeout_s: 30,
    default_region: "US",
  });
  const [phoneColumn, setPhoneColumn] = useState<string | null>(null);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [touched, setTouched] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const agent = useQuery({ queryKey: ["agents", s.agent_id], queryFn: () => agentsApi.get(s.agent_id), enabled: !!s.agent_id });
  const agentVars = useMemo(() => findVariables(agent.data?.config.system_prompt, agent.data?.config.greeting), [agent.data]);
  const callingCode = COUNTRIES.find((c) => c.iso === s.default_region)?.code ?? "1";
  const last = uploads[uploads.length - 1];
  const imported = uploads.reduce((n, u) => n + (u.state === "imported" ? u.report?.imported ?? 0 : 0), 0);
  const columns = last?.report ? [last.report.phone_column ?? "", ...(last.report.variables ?? [])] : last?.preview?.header ?? [];
  const missingVars = agentVars.filter((v) => !columns.includes(v) && !agent.data?.config.variables?.[v]);
  const dayList = WEEKDAYS.filter((d) => s.windows.days[d]?.length);

  useEffect(() => {
    headingRef.current?.focus();
  }, [step]);
  useEffect(() => {
    if (!s.agent_id && agents.data?.length) setS((x) => ({ ...x, agent_id: agents.data[0].id }));
  }, [agents.data, s.agent_id]);

  const saveDraft = useMutation({
    mutationFn: async () => {
      const body = { ...s, name: s.name.trim() };
      return draft ? campaignsApi.update(draft.id, body) : campaignsApi.create(body);
    },
    onSuccess: (c) => {
      setDraft(c);
      qc.invalidateQueries({ queryKey: ["campaigns"], exact: true });
    },
  });

  async function upload(file: File) {
    const text = await readText(file).catch(() => "");
    const preview = text ? previewContacts(text, callingCode, phoneColumn ?? undefined) : null;
    setUploads((u) => [...u, { file, preview, state: "uploading" }]);
    const update = (patch: Partial<Upload>) => setUploads((u) => u.map((x, i) => (i === u.length - 1 ? { ...x, ...patch } : x)));
    try {
      const report = await campaignsApi.importContacts(draft!.id, file, { default_region: s.default_region, phone_column: phoneColumn });
      update({ state: "imported", report });
    } catch (e) {
      const rows = rowErrorsOf(e);
      update(rows ? { state: "rejected", rowErrors: rows.errors, rowErrorTotal: rows.total, error: e } : { state: "failed", error: e });
    } finally {
      if (fileRef.current) fileRef.current.value = "";
    }
  }

  const finish = useMutation({
    mutationFn: async (startNow: boolean) => {
      const saved = await campaignsApi.update(draft!.id, {
        ...s,
        name: s.name.trim(),
        voicemail: { ...s.voicemail, message: s.voicemail.action === "leave_message" ? s.voicemail.message : null },
      });
      return startNow ? campaignsApi.action(saved.id, "start") : saved;
    },
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: ["campaigns"] });
      notify(c.status === "running" ? `Campaign “${c.name}” started` : `Campaign “${c.name}” saved as a draft`);
      navigate(`/campaigns/${c.id}`);
    },
  });

  const stepErrors: string[][] = [
    [!s.name.trim() && "Name the campaign", !s.agent_id && "Pick an agent", !s.caller_number_ids.length && "Pick at least one caller-ID number"],
    [
      last?.state === "uploading" && "Wait for the upload to finish",
      imported === 0 && last?.state !== "uploading" && (last?.state === "rejected" ? "Fix the rows with errors and upload the file again" : "Upload a CSV with at least one contact"),
    ],
    [
      !dayList.length && "Allow calls on at least one day",
      ...dayList.flatMap((d) => (s.windows.days[d] ?? []).filter((r) => r.start >= r.end).map(() => `${DAY_NAMES[d]}: the end must be after the start`)),
    ],
    [
      (s.max_concurrent_calls < 1 || s.max_concurrent_calls > 1000) && "Live calls: 1 – 1000",
      (s.calls_per_second <= 0 || s.calls_per_second > 100) && "Calls per second: 0.1 – 100",
      s.voicemail.action === "leave_message" && !s.voicemail.message?.trim() && "Write the voicemail message",
    ],
    [],
  ].map((list) => list.filter((x): x is string => typeof x === "string"));

  async function next() {
    setTouched(true);
    if (stepErrors[step].length) return;
    if (step === 0) {
      try {
        await saveDraft.mutateAsync();
      } catch {
        return;
      }
    }
    setTouched(false);
    setStep((x) => Math.min(STEPS.length - 1, x + 1));
  }

  const setDay = (day: Weekday, range: TimeRange | null) =>
    setS((x) => {
      const days = { ...x.windows.days };
      if (range) days[day] = [range];
      else delete days[day];
      return { ...x, windows: { ...x.windows, days } };
    });
  const setRetry = (o: RetryOutcome, patch: Partial<{ max_attempts: number; delays_s: number[] }>) =>
    setS((x) => ({ ...x, retry: { ...x.retry, [o]: { ...x.retry[o], ...patch } } }));
  const tzs = timezones();

  if (agents.isPending || numbers.isPending) return <Spinner label="Loading agents and numbers…" />;
  if (!agents.data?.length) {
    return (
      <>
        <PageHeader title="New campaign" />
        <EmptyState title="Create an agent first" action={<Link to="/agents/new" className="btn btn-primary">New agent</Link>}>A campaign needs an agent to talk to contacts.</EmptyState>
      </>
    );
  }

  const stepError = saveDraft.error ?? finish.error;
  return (
    <>
      <PageHeader
        title="New campaign"
        subtitle={<><Link to="/campaigns">Campaigns</Link> / new{draft && <> · <Badge>draft saved</Badge></>}</>}
      />
      <ol className="stepper" aria-label="Steps">
        {STEPS.map((label, i) => (
          <li key={label} className={i === step ? "current" : i < step ? "done" : undefined} aria-current={i === step ? "step" : undefined}>
            <button type="button" className="link-btn" disabled={i > step} onClick={() => setStep(i)}>
              <span className="step-num">{i + 1}</span> {label}
            </button>
          </li>
        ))}
      </ol>
      <Card>
        <h2 ref={headingRef} tabIndex={-1} className="step-title">{STEPS[step]}</h2>
        {step === 0 && (
          <>
            <TextField label="Campaign name" value={s.name} onChange={(e) => setS({ ...s, name: e.target.value })} maxLength={200} />
            <SelectField label="Agent" value={s.agent_id} onChange={(e) => setS({ ...s, agent_id: e.target.value })}>
              {agents.data.map((a) => <option key={a.id} value={a.id}>{a.name} (v{a.version})</option>)}
            </SelectField>
            <fieldset className="checks">
              <legend>Caller-ID numbers <span className="muted small">(used in rotation)</span></legend>
              {!numbers.data?.length ? (
                <p className="muted">No numbers yet. <Link to="/numbers">Add one</Link>.</p>
              ) : (
                numbers.data.map((n) => (
                  <Checkbox
                    key={n.id}
                    label={<><span className="mono">{n.number}</span> <Badge>{n.carrier}</Badge> {n.label}</>}
                    checked={s.caller_number_ids.includes(n.id)}
                    onChange={(v) => setS({ ...s, caller_number_ids: v ? [...s.caller_number_ids, n.id] : s.caller_number_ids.filter((x) => x !== n.id) })}
                  />
                ))
              )}
            </fieldset>
          </>
        )}

        {step === 1 && (
          <>
            <div className="grid-2">
              <div className="field">
                <label htmlFor="contacts-file">Contacts CSV</label>
                <input
                  id="contacts-file"
                  ref={fileRef}
                  type="file"
                  accept=".csv,text/csv"
                  aria-describedby="contacts-file-hint"
                  disabled={last?.state === "uploading"}
                  onChange={(e) => e.target.files?.[0] && void upload(e.target.files[0])}
                />
                <div className="field-hint" id="contacts-file-hint">
                  A header row, a phone column, an optional <code>timezone</code> column, and any other columns: they become{" "}
                  <code>{"{{variables}}"}</code> for the agent. Every row is checked; a file with any bad row imports nothing.
                  Duplicates are removed.
                </div>
              </div>
              <div>
                <SelectField label="Default country" value={s.default_region} onChange={(e) => setS({ ...s, default_region: e.target.value })} hint="For numbers written without +country code.">
                  {COUNTRIES.map((c) => <option key={c.iso} value={c.iso}>{c.name}</option>)}
                </SelectField>
                {last?.preview && last.preview.header.length > 0 && (
                  <SelectField
                    label="Phone column"
                    value={phoneColumn ?? last.report?.phone_column ?? last.preview.phoneColumn ?? ""}
                    onChange={(e) => setPhoneColumn(e.target.value || null)}
                    hint="Detected from the header; change it, then upload the file again."
                  >
                    <option value="">Detect</option>
                    {last.preview.header.map((h) => <option key={h} value={h}>{h}</option>)}
                  </SelectField>
                )}
              </div>
            </div>
            {last && (
              <div className="import-summary" role="status" aria-live="polite">
                {last.state === "uploading" ? (
                  <Spinner label={`Checking and importing ${last.file.name}…`} />
                ) : last.state === "imported" ? (
                  <>
                    <Badge tone="good">{last.report?.imported ?? 0} imported</Badge>{" "}
                    {(last.report?.duplicates_in_file ?? 0) > 0 && <Badge tone="warn">{last.report?.duplicates_in_file} duplicates removed</Badge>}{" "}
                    {(last.report?.already_present ?? 0) > 0 && <Badge>{last.report?.already_present} already in the campaign</Badge>}{" "}
                    {(last.report?.on_dnc_list ?? 0) > 0 && <Badge tone="info">{last.report?.on_dnc_list} on the do-not-call list (will be skipped)</Badge>}{" "}
                    <span className="muted small">{last.file.name}: {last.report?.rows ?? 0} rows read. Contacts so far: {imported}.</span>
                  </>
                ) : last.state === "rejected" ? (
                  <>
                    <Badge tone="bad">{last.rowErrorTotal} row error{last.rowErrorTotal === 1 ? "" : "s"}</Badge>{" "}
                    <span>{last.file.name}: nothing was imported. Fix these lines and upload the file again.</span>
                  </>
                ) : (
                  <InlineError error={last.error} />
                )}
              </div>
            )}
            {last?.state === "rejected" && last.rowErrors && last.rowErrors.length > 0 && (
              <div className="table-wrap row-error-table">
                <table className="table table-compact">
                  <caption>Lines with problems (the header is line 1)</caption>
                  <thead>
                    <tr>
                      <th scope="col">Line</th>
                      <th scope="col">Column</th>
                      <th scope="col">Problem</th>
                    </tr>
                  </thead>
                  <tbody>
                    {last.rowErrors.slice(0, 200).map((e, i) => (
                      <tr key={i}>
                        <td>{e.row === 1 ? "1 (header)" : e.row}</td>
                        <td>{e.column ?? "—"}</td>
                        <td>{e.message}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                {(last.rowErrorTotal ?? 0) > Math.min(200, last.rowErrors.length) && (
                  <p className="muted small">…and {(last.rowErrorTotal ?? 0) - Math.min(200, last.rowErrors.length)} more.</p>
                )}
              </div>
            )}
            {last?.preview && last.preview.rows.length > 0 && (
              <DataTable
                caption={<>{last.file.name}: first {Math.min(5, last.preview.rows.length)} of {last.preview.rows.length} rows</>}
                showCaption className="table-compact" columns={last.preview.header}
              >
                {last.preview.rows.slice(0, 5).map((r, i) => (
                  <tr key={i}>{last.preview!.header.map((h, j) => <td key={h}>{r[j] ?? ""}</td>)}</tr>
                ))}
              </DataTable>
            )}
            {last && agentVars.length > 0 && (
              <p className={missingVars.length ? "warn-text" : "good-text"}>
                The agent uses {agentVars.map((v) => <code key={v}>{`{{${v}}}`} </code>)}.{" "}
                {missingVars.length ? <>No column or default for: {missingVars.join(", ")}; they will be empty.</> : "Every one has a column or a default."}
              </p>
            )}
          </>
        )}

        {step === 2 && (
          <>
            <div className="grid-2">
              <TextField
                label="Campaign time zone"
                list="tz-list"
                value={s.windows.timezone}
                onChange={(e) => setS({ ...s, windows: { ...s.windows, timezone: e.target.value } })}
                hint="IANA name, e.g. America/New_York."
              />
              <datalist id="tz-list">{tzs.map((t) => <option key={t} value={t} />)}</datalist>
            </div>
            <Checkbox
              label="Call each contact in their own time zone when the CSV has a timezone column"
              checked={s.windows.use_contact_timezone}
              onChange={(v) => setS({ ...s, windows: { ...s.windows, use_contact_timezone: v } })}
            />
            <fieldset className="windows">
              <legend>Calling windows</legend>
              {WEEKDAYS.map((d) => {
                const r = s.windows.days[d]?.[0];
                return (
                  <div key={d} className="window-row">
                    <Checkbox label={DAY_NAMES[d]} checked={!!r} onChange={(v) => setDay(d, v ? { start: "09:00", end: "18:00" } : null)} />
                    {r && (
                      <>
                        <TextField label={<span className="sr-only">{DAY_NAMES[d]} from</span>} type="time" value={r.start} onChange={(e) => setDay(d, { ...r, start: e.target.value })} className="field-inline" />
                        <span aria-hidden="true">–</span>
                        <TextField label={<span className="sr-only">{DAY_NAMES[d]} until</span>} type="time" value={r.end} onChange={(e) => setDay(d, { ...r, end: e.target.value })} className="field-inline" />
                      </>
                    )}
                  </div>
                );
              })}
            </fieldset>
          </>
        )}

        {step === 3 && (
          <>
            <div className="grid-3">
              <NumberField
                label="Maximum live calls at once"
                value={s.max_concurrent_calls}
                onValue={(v) => setS({ ...s, max_concurrent_calls: v ?? 0 })}
                min={1}
                max={1000}
                step={1}
                hint="Counted from dial until the call has really ended. The organisation-wide cap also applies."
              />
              <NumberField
                label="Maximum new calls per second"
                value={s.calls_per_second}
                onValue={(v) => setS({ ...s, calls_per_second: v ?? 0 })}
                min={0.1}
                max={100}
                step={0.1}
              />
              <NumberField
                label="Ring for (s)"
                value={s.ring_timeout_s}
                onValue={(v) => setS({ ...s, ring_timeout_s: v ?? 30 })}
                min={5}
                max={120}
                step={1}
                hint="Then the attempt counts as no answer."
              />
            </div>
            <fieldset className="subsection">
              <legend>Retries</legend>
              <DataTable caption="Retry policy per outcome" className="table-compact"
                columns={["Outcome", "Dials in total", "Wait before a retry (minutes)"]}>
                {(Object.keys(OUTCOMES) as RetryOutcome[]).map((o) => (
                  <tr key={o}>
                    <th scope="row">{OUTCOMES[o]}</th>
                    <td>
                      <NumberField
                        label={<span className="sr-only">{OUTCOMES[o]}: dials in total</span>}
                        className="field-inline"
                        value={s.retry[o].max_attempts}
                        min={1}
                        max={20}
                        step={1}
                        onValue={(v) => setRetry(o, { max_attempts: v ?? 1 })}
                      />
                    </td>
                    <td>
                      <NumberField
                        label={<span className="sr-only">{OUTCOMES[o]}: minutes before a retry</span>}
                        className="field-inline"
                        value={Math.round((s.retry[o].delays_s[0] ?? 0) / 60)}
                        min={0}
                        max={43200}
                        step={1}
                        onValue={(v) => setRetry(o, { delays_s: [(v ?? 0) * 60] })}
                      />
                    </td>
                  </tr>
                ))}
              </DataTable>
              <p className="muted small">Dials in total counts the first call: 1 means no retry.</p>
            </fieldset>
            <fieldset className="subsection">
              <legend>Voicemail</legend>
              <Checkbox label="Detect answering machines" checked={s.voicemail.detect} onChange={(v) => setS({ ...s, voicemail: { ...s.voicemail, detect: v } })} />
              <div className="radio-row" role="radiogroup" aria-label="When a voicemail answers">
                <label><input type="radio" name="vm" checked={s.voicemail.action === "hang_up"} onChange={() => setS({ ...s, voicemail: { ...s.voicemail, action: "hang_up" } })} /> Hang up</label>
                <label><input type="radio" name="vm" checked={s.voicemail.action === "leave_message"} onChange={() => setS({ ...s, voicemail: { ...s.voicemail, action: "leave_message" } })} /> Leave a message</label>
              </div>
              {s.voicemail.action === "leave_message" && (
                <TextArea label="Voicemail message" rows={3} maxLength={1000} value={s.voicemail.message ?? ""} onChange={(e) => setS({ ...s, voicemail: { ...s.voicemail, message: e.target.value } })} hint="Spoken after the beep." />
              )}
            </fieldset>
            <p className="muted">
              Numbers on the organisation's <Link to="/settings?tab=dnc">do-not-call list</Link> are checked right before each call and never dialled.
            </p>
          </>
        )}

        {step === 4 && (
          <dl className="kv review">
            <dt>Name</dt><dd>{s.name}</dd>
            <dt>Agent</dt><dd>{agents.data.find((a) => a.id === s.agent_id)?.name}</dd>
            <dt>Caller IDs</dt><dd>{s.caller_number_ids.map((id) => numbers.data?.find((n) => n.id === id)?.number).join(", ")}</dd>
            <dt>Contacts</dt><dd>{imported} imported</dd>
            <dt>Calling hours</dt>
            <dd>
              {dayList.map((d) => `${DAY_NAMES[d].slice(0, 3)} ${(s.windows.days[d] ?? []).map((r) => `${r.start}–${r.end}`).join(", ")}`).join("; ")} ({s.windows.timezone}
              {s.windows.use_contact_timezone ? ", or the contact's own" : ""})
            </dd>
            <dt>Limits</dt><dd>{s.max_concurrent_calls} live calls, {s.calls_per_second} new calls/s, ring {s.ring_timeout_s} s</dd>
            <dt>Retries</dt>
            <dd>{(Object.keys(OUTCOMES) as RetryOutcome[]).map((o) => `${OUTCOMES[o]}: ${s.retry[o].max_attempts} dial${s.retry[o].max_attempts > 1 ? `s, ${Math.round(s.retry[o].delays_s[0] / 60)} min apart` : ""}`).join("; ")}</dd>
            <dt>Voicemail</dt><dd>{s.voicemail.detect ? "Detected; " : "Not detected; "}{s.voicemail.action === "hang_up" ? "hang up" : `leave “${s.voicemail.message}”`}</dd>
          </dl>
        )}

        {touched && stepErrors[step].length > 0 && (
          <ul className="step-errors" role="alert">
            {stepErrors[step].map((e) => <li key={e}>{e}</li>)}
          </ul>
        )}
        <InlineError error={routeMissing(stepError) ? new Error("Campaigns aren't available on this server yet.") : stepError} />
        <div className="wizard-nav">
          <Button onClick={() => setStep((x) => Math.max(0, x - 1))} disabled={step === 0}>Back</Button>
          <span className="grow" />
          {step < STEPS.length - 1 ? (
            <Button variant="primary" onClick={() => void next()} busy={saveDraft.isPending}>Next</Button>
          ) : (
            <>
              <Button onClick={() => finish.mutate(false)} busy={finish.isPending && finish.variables === false}>Keep as draft</Button>
              <Button variant="primary" onClick={() => finish.mutate(true)} busy={finish.isPending && finish.variables === true}>Start campaign</Button>
            </>
          )}
        </div>
      </Card>
    </>
  );
}
