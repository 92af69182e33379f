import type { TransferTarget } from "../../../api/types";
import { Button, Card, Checkbox, EmptyState, SelectField, TextField } from "../../../components/ui";
import type { SectionProps } from "./types";

export function TransfersSection({ config, set, errors, readOnly }: SectionProps) {
  const list = config.transfer_targets ?? [];
  const update = (i: number, patch: Partial<TransferTarget>) =>
    set("transfer_targets", list.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  return (
    <Card
      title="Transfer targets"
      actions={
        !readOnly && list.length < 16 ? (
          <Button onClick={() => set("transfer_targets", [...list, { name: "", phone_number: "+", description: "", mode: "blind", whisper_brief: true }])}>
            Add target
          </Button>
        ) : null
      }
    >
      <p className="muted">People or queues the agent may hand the call to. The description tells the model when.</p>
      {list.length === 0 && <EmptyState title="No transfer targets">The agent will not offer to transfer calls.</EmptyState>}
      {list.map((t, i) => {
        const p = `transfer_targets.${i}`;
        return (
          <fieldset key={i} className="repeat-item">
            <legend>Target {i + 1}{t.name ? `: ${t.name}` : ""}</legend>
            <div className="grid-3">
              <TextField label="Name" value={t.name} onChange={(e) => update(i, { name: e.target.value })} readOnly={readOnly} error={errors[`${p}.name`]} maxLength={64} />
              <TextField
                label="Phone number"
                type="tel"
                value={t.phone_number}
                onChange={(e) => update(i, { phone_number: e.target.value.replace(/[\s()-]/g, "") })}
                readOnly={readOnly}
                error={errors[`${p}.phone_number`]}
                hint="E.164, e.g. +14155550123"
              />
              <SelectField label="Mode" value={t.mode ?? "blind"} onChange={(e) => update(i, { mode: e.target.value as "blind" | "warm" })} disabled={readOnly}>
                <option value="blind">Blind (connect straight away)</option>
                <option value="warm">Warm (brief the human first)</option>
              </SelectField>
            </div>
            <TextField label="When to transfer" value={t.description ?? ""} onChange={(e) => update(i, { description: e.target.value })} readOnly={readOnly} placeholder="e.g. billing disputes over $100" />
            {t.mode === "warm" && (
              <Checkbox label="Read a summary of the call to the human before connecting" checked={t.whisper_brief ?? true} onChange={(v) => update(i, { whisper_brief: v })} disabled={readOnly} />
            )}
            {!readOnly && (
              <div className="repeat-actions">
                <Button variant="ghost" onClick={() => set("transfer_targets", list.filter((_, j) => j !== i))} aria-label={`Remove target ${t.name || i + 1}`}>
                  Remove target
                </Button>
              </div>
            )}
          </fieldset>
        );
      })}
    </Card>
  );
}
