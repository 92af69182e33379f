/** Before and after the call: the pre-call lookup (context webhook) and the post-call analysis (summary, extracted
 * fields, success rubric). Extracted fields are edited as rows (name, type, description), so the schema saved is
 * always the flat object of typed fields the backend accepts. */
import { Button, Card, Checkbox, NumberField, SelectField, TextArea, TextField } from "../../../components/ui";
import { SecretPicker } from "./SecretPicker";
import type { SectionProps } from "./types";

type FieldType = "string" | "number" | "integer" | "boolean";
interface FieldRow {
  name: string;
  type: FieldType;
  description: string;
}

export function fieldsOf(schema: unknown): FieldRow[] {
  const props = (schema as { properties?: Record<string, { type?: FieldType; description?: string }> } | null)?.properties ?? {};
  return Object.entries(props).map(([name, spec]) => ({ name, type: spec.type ?? "string", description: spec.description ?? "" }));
}

export function schemaOf(rows: FieldRow[]) {
  if (!rows.length) return null;
  return {
    type: "object" as const,
    properties: Object.fromEntries(rows.map((r) => [r.name, r.description ? { type: r.type, description: r.description } : { type: r.type }])),
  };
}

export function BusinessSection({ config, set, errors, readOnly }: SectionProps) {
  const hook = config.context_webhook;
  const analysis = config.analysis;
  const rows = fieldsOf(analysis?.extraction_schema);
  const setRows = (next: FieldRow[]) => set("analysis.extraction_schema", schemaOf(next));
  const update = (i: number, patch: Partial<FieldRow>) => setRows(rows.map((r, k) => (k === i ? { ...r, ...patch } : r)));
  return (
    <>
      <Card title="Pre-call lookup">
        <p className="muted">
          Before the greeting the platform POSTs the caller's number to this URL; the JSON object it answers fills
          {" {{variables}} "}in the prompt and greeting. If it is slower than the timeout the call goes on without it.
        </p>
        <TextField
          label="Lookup URL"
          type="url"
          value={hook?.url ?? ""}
          onChange={(e) => set("context_webhook", e.target.value ? { ...hook, url: e.target.value } : null)}
          placeholder="https://crm.example.com/voice/context"
          readOnly={readOnly}
          error={errors["context_webhook.url"] ?? errors.context_webhook}
        />
        {hook && (
          <div className="grid-2">
            <NumberField label="Timeout (ms)" value={hook.timeout_ms ?? 800} onValue={(v) => set("context_webhook.timeout_ms", v)}
              min={50} max={3000} step={50} readOnly={readOnly} error={errors["context_webhook.timeout_ms"]} />
            <SecretPicker label="Headers (secret)" value={hook.headers_secret_ref} onChange={(name) => set("context_webhook.headers_secret_ref", name)}
              readOnly={readOnly} error={errors["context_webhook.headers_secret_ref"]} hint="A secret holding a JSON object of headers, e.g. Authorization." />
          </div>
        )}
      </Card>

      <Card title="Post-call analysis">
        <Checkbox
          label="Analyse each call after it ends"
          hint="The LLM reads the transcript: a summary, the fields below, and whether the call was a success. Shown on the call, sent as call.analyzed, exported to CSV."
          checked={!!analysis}
          onChange={(on) => set("analysis", on ? { summary_prompt: "Summarise the call in two sentences." } : null)}
          disabled={readOnly}
        />
        {analysis && (
          <>
            <TextArea label="Summary prompt" rows={2} value={analysis.summary_prompt ?? ""} onChange={(e) => set("analysis.summary_prompt", e.target.value)}
              readOnly={readOnly} error={errors["analysis.summary_prompt"]} />
            <TextArea label="Success rubric" rows={2} value={analysis.success_rubric ?? ""} onChange={(e) => set("analysis.success_rubric", e.target.value || null)}
              readOnly={readOnly} error={errors["analysis.success_rubric"]} hint="When the call counts as a success, e.g. “an appointment was booked”." />
            <fieldset className="subsection">
              <legend>Extracted fields</legend>
              {errors["analysis.extraction_schema"] && <p className="field-error" role="alert">{errors["analysis.extraction_schema"]}</p>}
              {rows.map((row, i) => (
                <div key={i} className="grid-3">
                  <TextField label="Field name" value={row.name} onChange={(e) => update(i, { name: e.target.value })} readOnly={readOnly}
                    pattern="[A-Za-z_][A-Za-z0-9_]*" hint="Letters, digits and _ (one CSV column: data_<name>)." />
                  <SelectField label="Type" value={row.type} onChange={(e) => update(i, { type: e.target.value as FieldType })} disabled={readOnly}>
                    <option value="string">Text</option>
                    <option value="number">Number</option>
                    <option value="integer">Whole number</option>
                    <option value="boolean">Yes / no</option>
                  </SelectField>
                  <TextField label="Description" value={row.description} onChange={(e) => update(i, { description: e.target.value })} readOnly={readOnly} />
                  {!readOnly && <Button variant="ghost" onClick={() => setRows(rows.filter((_, k) => k !== i))}>Remove field {row.name}</Button>}
                </div>
              ))}
              {!readOnly && (
                <Button onClick={() => setRows([...rows, { name: `field_${rows.length + 1}`, type: "string", description: "" }])}>Add field</Button>
              )}
            </fieldset>
          </>
        )}
      </Card>
    </>
  );
}
