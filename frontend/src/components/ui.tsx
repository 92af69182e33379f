/** Small accessible building blocks: every control has a label, errors are announced, focus is always visible. */
import {
  useEffect, useId, useRef, useState, type ButtonHTMLAttributes, type InputHTMLAttributes, type ReactNode,
  type SelectHTMLAttributes, type TextareaHTMLAttributes,
} from "react";
import { ApiError } from "../api/http";

type Variant = "primary" | "secondary" | "danger" | "ghost";

export function Button({
  variant = "secondary", busy, children, className, disabled, ...rest
}: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant; busy?: boolean }) {
  return (
    <button
      type="button"
      {...rest}
      className={`btn btn-${variant}${className ? ` ${className}` : ""}`}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
    >
      {busy && <span className="spinner spinner-sm" aria-hidden="true" />}
      {children}
    </button>
  );
}

interface FieldProps {
  label: ReactNode;
  hint?: ReactNode;
  error?: string | null;
  className?: string;
}

function describedBy(hintId: string, errId: string, hint?: ReactNode, error?: string | null) {
  return [hint ? hintId : null, error ? errId : null].filter(Boolean).join(" ") || undefined;
}

function FieldShell({
  id, label, hint, error, className, children,
}: FieldProps & { id: string; children: ReactNode }) {
  return (
    <div className={`field${error ? " field-invalid" : ""}${className ? ` ${className}` : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <div className="field-hint" id={`${id}-hint`}>{hint}</div>}
      {error && <div className="field-error" id={`${id}-err`} role="alert">{error}</div>}
    </div>
  );
}

export function TextField({
  label, hint, error, className, id, ...rest
}: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  const auto = useId();
  const fid = id ?? auto;
  return (
    <FieldShell id={fid} label={label} hint={hint} error={error} className={className}>
      <input
        id={fid}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(`${fid}-hint`, `${fid}-err`, hint, error)}
        {...rest}
      />
    </FieldShell>
  );
}

export function TextArea({
  label, hint, error, className, id, ...rest
}: FieldProps & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const auto = useId();
  const fid = id ?? auto;
  return (
    <FieldShell id={fid} label={label} hint={hint} error={error} className={className}>
      <textarea
        id={fid}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(`${fid}-hint`, `${fid}-err`, hint, error)}
        {...rest}
      />
    </FieldShell>
  );
}

export function SelectField({
  label, hint, error, className, id, children, ...rest
}: FieldProps & SelectHTMLAttributes<HTMLSelectElement>) {
  const auto = useId();
  const fid = id ?? auto;
  return (
    <FieldShell id={fid} label={label} hint={hint} error={error} className={className}>
      <select
        id={fid}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(`${fid}-hint`, `${fid}-err`, hint, error)}
        {...rest}
      >
        {children}
      </select>
    </FieldShell>
  );
}

/** Number input that reports numbers (or null while empty), with the model's bounds as min/max. */
export function NumberField({
  label, hint, error, className, value, onValue, min, max, step, id, ...rest
}: FieldProps &
  Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange" | "type"> & {
    value: number | null | undefined;
    onValue: (v: number | null) => void;
  }) {
  const auto = useId();
  const fid = id ?? auto;
  const [text, setText] = useState(value == null ? "" : String(value));
  useEffect(() => {
    if (value == null ? text !== "" : Number(text) !== value) setText(value == null ? "" : String(value));
    // Only follow outside changes of `value`; the text the user is typing stays as typed.
  }, [value]);
  const n = text === "" ? null : Number(text);
  const lo = min === undefined ? undefined : Number(min);
  const hi = max === undefined ? undefined : Number(max);
  const localError =
    n !== null && Number.isNaN(n)
      ? "Enter a number"
      : n !== null && lo !== undefined && n < lo
        ? `At least ${lo}`
        : n !== null && hi !== undefined && n > hi
          ? `At most ${hi}`
          : null;
  const err = error ?? localError;
  return (
    <FieldShell id={fid} label={label} hint={hint} error={err} className={className}>
      <input
        id={fid}
        type="number"
        inputMode="decimal"
        value={text}
        min={min}
        max={max}
        step={step ?? "any"}
        aria-invalid={err ? true : undefined}
        aria-describedby={describedBy(`${fid}-hint`, `${fid}-err`, hint, err)}
        onChange={(e) => {
          setText(e.target.value);
          const v = e.target.value === "" ? null : Number(e.target.value);
          if (v === null || !Number.isNaN(v)) onValue(v);
        }}
        {...rest}
      />
    </FieldShell>
  );
}

export function Checkbox({
  label, hint, id, checked, onChange, disabled,
}: {
  label: ReactNode;
  hint?: ReactNode;
  id?: string;
  checked: boolean;
  onChange: (v: boolean) => void;
  disabled?: boolean;
}) {
  const auto = useId();
  const fid = id ?? auto;
  return (
    <div className="check">
      <input
        id={fid}
        type="checkbox"
        checked={checked}
        disabled={disabled}
        onChange={(e) => onChange(e.target.checked)}
        aria-describedby={hint ? `${fid}-hint` : undefined}
      />
      <label htmlFor={fid}>{label}</label>
      {hint && <div className="field-hint" id={`${fid}-hint`}>{hint}</div>}
    </div>
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/**
 * True when the server has no such route at all (an older backend, or a feature not deployed yet), as opposed to a
 * missing record: Starlette answers unknown paths with the bare "Not Found" message, records say what is missing.
 */
export function routeMissing(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 405 || (error.status === 404 && error.message === "Not Found"));
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return "You don't have permission to do this.";
    if (error.status === 404) return "Not found. It may have been deleted.";
    return error.message;
  }
  if (error instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

export function ErrorState({ error, onRetry, title = "Couldn't load this" }: {
  error: unknown;
  onRetry?: () => void;
  title?: string;
}) {
  return (
    <div className="state state-error" role="alert">
      <strong>{title}</strong>
      <p>{errorMessage(error)}</p>
      {onRetry && <Button onClick={onRetry}>Try again</Button>}
    </div>
  );
}

export function InlineError({ error }: { error: unknown }) {
  if (!error) return null;
  return <div className="inline-error" role="alert">{errorMessage(error)}</div>;
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="state state-empty">
      <strong>{title}</strong>
      {children && <p>{children}</p>}
      {action}
    </div>
  );
}

export function PageHeader({ title, subtitle, actions }: { title: ReactNode; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p className="muted">{subtitle}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}

export function Card({ title, children, actions, className }: {
  title?: ReactNode;
  children: ReactNode;
  actions?: ReactNode;
  className?: string;
}) {
  const id = useId();
  return (
    <section className={`card${className ? ` ${className}` : ""}`} aria-labelledby={title ? id : undefined}>
      {(title || actions) && (
        <div className="card-head">
          {title && <h2 id={id}>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </div>
      )}
      {children}
    </section>
  );
}

export function Badge({ tone = "neutral", children }: { tone?: "neutral" | "good" | "warn" | "bad" | "info"; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** Modal dialog: focus moves in, Tab is trapped, Escape closes, focus returns to the opener. */
export function Dialog({ title, open, onClose, children, footer }: {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  useEffect(() => {
    if (!open) return;
    const opener = document.activeElement as HTMLElement | null;
    const node = ref.current;
    const first = node?.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? node)?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        onClose();
      } else if (e.key === "Tab" && node) {
        const items = Array.from(node.querySelectorAll<HTMLElement>(FOCUSABLE));
        if (!items.length) return;
        const [a, z] = [items[0], items[items.length - 1]];
        if (e.shiftKey && document.activeElement === a) {
          e.preventDefault();
          z.focus();
        } else if (!e.shiftKey && document.activeElement === z) {
          e.preventDefault();
          a.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      opener?.focus?.();
    };
  }, [open, onClose]);
  if (!open) return null;
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby={titleId} ref={ref} tabIndex={-1}>
        <div className="modal-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="icon-btn" onClick={onClose} aria-label="Close dialog">×</button>
        </div>
        <div className="modal-body">{children}</div>
        {footer && <div className="modal-foot">{footer}</div>}
      </div>
    </div>
  );
}

/** A secret shown exactly once (API key, webhook signing secret, invitation link), with a copy button. */
export function OneTimeSecret({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  const id = useId();
  return (
    <div className="secret" role="group" aria-labelledby={id}>
      <div id={id} className="secret-label">{label}</div>
      <p className="muted small">Copy it now: it will not be shown again.</p>
      <div className="secret-row">
        <code className="secret-value" data-testid="one-time-secret">{value}</code>
        <Button
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(value);
              setCopied(true);
            } catch {
              setCopied(false);
            }
          }}
        >
          {copied ? "Copied" : "Copy"}
        </Button>
      </div>
    </div>
  );
}

/** Two-step destructive action without window.confirm: first click arms, second confirms. */
export function ConfirmButton({ onConfirm, children, confirmLabel = "Confirm", busy, label }: {
  onConfirm: () => void;
  children: ReactNode;
  confirmLabel?: string;
  busy?: boolean;
  label?: string;
}) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return;
    const t = setTimeout(() => setArmed(false), 4000);
    return () => clearTimeout(t);
  }, [armed]);
  return armed ? (
    <Button variant="danger" busy={busy} onClick={() => { setArmed(false); onConfirm(); }} aria-label={label ? `${confirmLabel}: ${label}` : undefined}>
      {confirmLabel}
    </Button>
  ) : (
    <Button variant="ghost" onClick={() => setArmed(true)} aria-label={label}>
      {children}
    </Button>
  );
}

export function Tabs<T extends string>({ tabs, current, onChange, label }: {
  tabs: { id: T; label: string }[];
  current: T;
  onChange: (id: T) => void;
  label: string;
}) {
  const refs = useRef<Record<string, HTMLButtonElement | null>>({});
  return (
    <div className="tabs" role="tablist" aria-label={label}>
      {tabs.map((t, i) => (
        <button
          key={t.id}
          ref={(el) => (refs.current[t.id] = el)}
          role="tab"
          type="button"
          id={`tab-${t.id}`}
          aria-selected={current === t.id}
          aria-controls={`panel-${t.id}`}
          tabIndex={current === t.id ? 0 : -1}
          className="tab"
          onClick={() => onChange(t.id)}
          onKeyDown={(e) => {
            const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
            if (!d) return;
            e.preventDefault();
            const next = tabs[(i + d + tabs.length) % tabs.length];
            onChange(next.id);
            refs.current[next.id]?.focus();
          }}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

export function TabPanel({ id, children }: { id: string; children: ReactNode }) {
  return (
    <div role="tabpanel" id={`panel-${id}`} aria-labelledby={`tab-${id}`} tabIndex={0} className="tab-panel">
      {children}
    </div>
  );
}
