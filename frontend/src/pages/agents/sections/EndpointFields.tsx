import type { EndpointOptions } from "../../../api/types";
import { Button, NumberField, TextField } from "../../../components/ui";
import { SecretPicker } from "./SecretPicker";

export function EndpointFields({ value, onChange, errors, base, readOnly, modelHint }: {
  value: EndpointOptions | undefined;
  onChange: (v: EndpointOptions) => void;
  errors: Record<string, string>;
  base: string;
  readOnly: boolean;
  modelHint?: string;
}) {
  const v = value ?? {};
  const up = (k: keyof EndpointOptions, x: unknown) => onChange({ ...v, [k]: x === "" ? null : x });
  return (
    <div className="grid-2">
      <TextField
        label="Base URL"
        value={v.base_url ?? ""}
        placeholder="Platform default"
        onChange={(e) => up("base_url", e.target.value)}
        readOnly={readOnly}
        error={errors[`${base}.base_url`]}
        hint="Leave empty to use the platform's configured server."
      />
      <TextField label="Model" value={v.model ?? ""} placeholder="Default" onChange={(e) => up("model", e.target.value)} readOnly={readOnly} hint={modelHint} />
      <SecretPicker
        label="API key (secret)"
        value={v.api_key_ref}
        onChange={(name) => up("api_key_ref", name ?? "")}
        readOnly={readOnly}
        error={errors[`${base}.api_key_ref`]}
      />
      <NumberField
        label="Timeout (s)"
        value={v.timeout_s ?? 10}
        onValue={(x) => up("timeout_s", x)}
        min={0.1}
        max={120}
        readOnly={readOnly}
        error={errors[`${base}.timeout_s`]}
      />
    </div>
  );
}

export function FallbackList({ value, onChange, errors, base, readOnly }: {
  value: EndpointOptions[] | undefined;
  onChange: (v: EndpointOptions[]) => void;
  errors: Record<string, string>;
  base: string;
  readOnly: boolean;
}) {
  const list = value ?? [];
  return (
    <fieldset className="subsection">
      <legend>Fallbacks <span className="muted small">(tried in order when the primary fails; up to 3)</span></legend>
      {list.length === 0 && <p className="muted small">None.</p>}
      {list.map((ep, i) => (
        <div key={i} className="repeat-item">
          <div className="repeat-head">
            <strong>Fallback {i + 1}</strong>
            {!readOnly && (
              <Button variant="ghost" onClick={() => onChange(list.filter((_, j) => j !== i))} aria-label={`Remove fallback ${i + 1}`}>
                Remove
              </Button>
            )}
          </div>
          <EndpointFields
            value={ep}
            onChange={(x) => onChange(list.map((y, j) => (j === i ? x : y)))}
            errors={errors}
            base={`${base}.${i}`}
            readOnly={readOnly}
          />
        </div>
      ))}
      {!readOnly && list.length < 3 && (
        <Button onClick={() => onChange([...list, { timeout_s: 10 }])}>Add fallback</Button>
      )}
    </fieldset>
  );
}
