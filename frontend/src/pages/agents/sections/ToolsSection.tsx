import type { ToolParameterSchema, WebhookTool } from "../../../api/types";
import { Button, Card, EmptyState, NumberField, SelectField, TextArea, TextField } from "../../../components/ui";
import { validateToolSchema } from "../../../lib/jsonSchema";
import { SecretPicker } from "./SecretPicker";
import type { SectionProps } from "./types";

export const EXAMPLE_SCHEMA: ToolParameterSchema = {
  type: "object",
  properties: { order_id: { type: "string", description: "The order number the caller reads out" } },
  required: ["order_id"],
};

export function schemaText(tool: WebhookTool): string {
  return JSON.stringify(tool.parameters ?? { type: "object", properties: {}, required: [] }, null, 2);
}

interface ToolsProps extends SectionProps {
  /** The raw JSON text of each tool's parameter schema (it may be invalid while the user types). */
  schemaTexts: string[];
  setSchemaTexts: (t: string[]) => void;
}

export function ToolsSection({ config, set, errors, readOnly, schemaTexts, setSchemaTexts }: ToolsProps) {
  const tools = config.tools ?? [];
  const update = (i: number, patch: Partial<WebhookTool>) => set("tools", tools.map((t, j) => (j === i ? { ...t, ...patch } : t)));

  const add = () => {
    const tool: WebhookTool = {
      kind: "webhook",
      name: `tool_${tools.length + 1}`,
      description: "",
      url: "https://",
      method: "POST",
      parameters: EXAMPLE_SCHEMA,
      timeout_s: 5,
      filler_phrase: "One moment while I check that.",
    };
    set("tools", [...tools, tool]);
    setSchemaTexts([...schemaTexts, schemaText(tool)]);
  };
  const remove = (i: number) => {
    set("tools", tools.filter((_, j) => j !== i));
    setSchemaTexts(schemaTexts.filter((_, j) => j !== i));
  };

  return (
    <Card
      title="Tools"
      actions={!readOnly && tools.length < 32 ? <Button onClick={add}>Add tool</Button> : null}
    >
      <p className="muted">
        HTTP webhooks the model can call during a call. The arguments are described by a JSON schema; the filler phrase is
        spoken while the webhook runs.
      </p>
      {tools.length === 0 && <EmptyState title="No tools">The agent can only talk, end the call and transfer.</EmptyState>}
      {tools.map((tool, i) => {
        const p = `tools.${i}`;
        const text = schemaTexts[i] ?? schemaText(tool);
        const { issues } = validateToolSchema(text);
        const schemaErrId = `tool-${i}-schema-issues`;
        return (
          <fieldset key={i} className="repeat-item">
            <legend>
              Tool {i + 1}: <code>{tool.name || "unnamed"}</code>
            </legend>
            <div className="grid-2">
              <TextField label="Name" value={tool.name} onChange={(e) => update(i, { name: e.target.value })} readOnly={readOnly} error={errors[`${p}.name`]} hint="The function name the model sees, e.g. lookup_order." />
              <TextField label="URL" type="url" value={tool.url} onChange={(e) => update(i, { url: e.target.value })} readOnly={readOnly} error={errors[`${p}.url`]} />
            </div>
            <TextArea
              label="Description"
              rows={2}
              value={tool.description}
              onChange={(e) => update(i, { description: e.target.value })}
              readOnly={readOnly}
              error={errors[`${p}.description`]}
              hint="Tell the model when to use it."
            />
            <div className="grid-3">
              <SelectField label="Method" value={tool.method ?? "POST"} onChange={(e) => update(i, { method: e.target.value as "GET" | "POST" })} disabled={readOnly}>
                <option>POST</option>
                <option>GET</option>
              </SelectField>
              <NumberField label="Timeout (s)" value={tool.timeout_s ?? 5} onValue={(v) => update(i, { timeout_s: v ?? undefined })} min={0.1} max={30} readOnly={readOnly} error={errors[`${p}.timeout_s`]} />
              <SecretPicker
                label="Headers (secret)"
                value={tool.headers_secret_ref}
                onChange={(name) => update(i, { headers_secret_ref: name })}
                readOnly={readOnly}
                error={errors[`${p}.headers_secret_ref`]}
                hint="A secret holding a JSON object of headers, e.g. Authorization."
              />
            </div>
            <TextField
              label="Filler phrase"
              value={tool.filler_phrase ?? ""}
              onChange={(e) => update(i, { filler_phrase: e.target.value || null })}
              readOnly={readOnly}
              maxLength={200}
            />
            <TextArea
              label="Parameters (JSON schema)"
              className="code-field"
              rows={Math.min(16, Math.max(6, text.split("\n").length + 1))}
              spellCheck={false}
              value={text}
              readOnly={readOnly}
              error={errors[`${p}.parameters`] ? "The schema has errors (listed below)" : null}
              aria-describedby={issues.length ? schemaErrId : undefined}
              onChange={(e) => {
                const next = [...schemaTexts];
                while (next.length < tools.length) next.push(schemaText(tools[next.length]));
                next[i] = e.target.value;
                setSchemaTexts(next);
                const { value, issues: fresh } = validateToolSchema(e.target.value);
                if (value && !fresh.some((x) => x.severity === "error")) update(i, { parameters: value });
              }}
            />
            {issues.length > 0 ? (
              <ul className="schema-issues" id={schemaErrId} aria-live="polite">
                {issues.map((x, k) => (
                  <li key={k} className={x.severity === "error" ? "bad-text" : "warn-text"}>
                    <span className="sr-only">{x.severity}: </span>
                    <code>{x.path}</code> {x.message}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="good-text small" aria-live="polite">Schema is valid.</p>
            )}
            {!readOnly && (
              <div className="repeat-actions">
                <Button variant="ghost" onClick={() => remove(i)} aria-label={`Remove tool ${tool.name || i + 1}`}>Remove tool</Button>
              </div>
            )}
          </fieldset>
        );
      })}
    </Card>
  );
}
