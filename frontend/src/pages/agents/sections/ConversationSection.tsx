import { useMemo } from "react";
import { Card, TextArea, TextField } from "../../../components/ui";
import { findVariables, malformedVariables, renderTemplate } from "../../../lib/variables";
import type { SectionProps } from "./types";

const LANGS = ["en-US", "en-GB", "en-IN", "es-ES", "es-US", "fr-FR", "de-DE", "hi-IN", "pt-BR", "it-IT"];

export function ConversationSection({ config, set, errors, readOnly }: SectionProps) {
  const vars = useMemo(() => findVariables(config.system_prompt, config.greeting), [config.system_prompt, config.greeting]);
  const malformed = [...malformedVariables(config.system_prompt), ...malformedVariables(config.greeting)];
  const values = config.variables ?? {};
  const unused = Object.keys(values).filter((k) => !vars.includes(k));

  const insert = (name: string) => set("system_prompt", `${config.system_prompt ?? ""}{{${name}}}`);

  return (
    <>
      <Card title="Prompt">
        <TextArea
          label="System prompt"
          rows={10}
          value={config.system_prompt ?? ""}
          onChange={(e) => set("system_prompt", e.target.value)}
          readOnly={readOnly}
          error={errors.system_prompt}
          hint={
            <>
              Write <code>{"{{name}}"}</code> to insert a value per call: campaign CSV columns fill these, and the
              defaults below are used when a column is missing. {(config.system_prompt ?? "").length.toLocaleString()} / 20,000 characters.
            </>
          }
        />
        {malformed.length > 0 && (
          <p className="warn-text" role="status">
            These will be read out literally, not filled in: {malformed.map((m) => <code key={m}>{m} </code>)}
          </p>
        )}
        <div className="var-hints" aria-label="Common variables">
          <span className="muted small">Insert:</span>
          {["first_name", "last_name", "company", "appointment_time"].map((v) => (
            <button key={v} type="button" className="chip" onClick={() => insert(v)} disabled={readOnly}>
              {`{{${v}}}`}
            </button>
          ))}
        </div>
      </Card>

      <Card title="What the agent says">
        <TextArea
          label="Greeting"
          rows={2}
          value={config.greeting ?? ""}
          onChange={(e) => set("greeting", e.target.value)}
          readOnly={readOnly}
          error={errors.greeting}
          hint="Spoken first when the call connects. Leave empty to wait for the caller. Variables work here too."
        />
        <TextArea label="Goodbye" rows={2} value={config.goodbye ?? ""} onChange={(e) => set("goodbye", e.target.value)} readOnly={readOnly} error={errors.goodbye} />
        <TextField
          label="Language"
          list="agent-langs"
          value={config.language ?? ""}
          onChange={(e) => set("language", e.target.value)}
          readOnly={readOnly}
          hint="BCP-47 tag, e.g. en-US."
        />
        <datalist id="agent-langs">{LANGS.map((l) => <option key={l} value={l} />)}</datalist>
      </Card>

      <Card title="Variables">
        {vars.length === 0 ? (
          <p className="muted">No <code>{"{{variables}}"}</code> in the prompt or greeting.</p>
        ) : (
          <div className="grid-2">
            {vars.map((v) => (
              <TextField
                key={v}
                label={<>Default for <code>{v}</code></>}
                value={values[v] ?? ""}
                readOnly={readOnly}
                placeholder="(empty)"
                onChange={(e) => set("variables", { ...values, [v]: e.target.value })}
              />
            ))}
          </div>
        )}
        {unused.length > 0 && (
          <p className="muted small">
            Defaults for variables no longer used: {unused.join(", ")}.{" "}
            {!readOnly && (
              <button
                type="button"
                className="link-btn"
                onClick={() => set("variables", Object.fromEntries(Object.entries(values).filter(([k]) => vars.includes(k))))}
              >
                Remove them
              </button>
            )}
          </p>
        )}
        {vars.length > 0 && (
          <details className="preview">
            <summary>Preview the greeting with these defaults</summary>
            <p>{renderTemplate(config.greeting ?? "", values) || <span className="muted">(silent)</span>}</p>
          </details>
        )}
      </Card>
    </>
  );
}
