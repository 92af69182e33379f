import { Card, Checkbox, NumberField, TextArea } from "../../../components/ui";
import type { SectionProps } from "./types";

export function BehaviourSection({ config, set, errors, readOnly }: SectionProps) {
  const it = config.interruption ?? {};
  const si = config.silence ?? {};
  return (
    <>
      <Card title="Interruptions (barge-in)">
        <Checkbox label="Let the caller interrupt the agent" checked={it.enabled ?? true} onChange={(v) => set("interruption.enabled", v)} disabled={readOnly} />
        <div className="grid-2">
          <NumberField
            label="Words needed to interrupt"
            value={it.min_words ?? 1}
            onValue={(v) => set("interruption.min_words", v)}
            min={0}
            max={10}
            step={1}
            readOnly={readOnly || it.enabled === false}
            error={errors["interruption.min_words"]}
            hint="0 interrupts on any speech; higher values ignore coughs and “mm-hm”."
          />
          <NumberField
            label="False-interruption timeout (s)"
            value={it.false_interruption_timeout_s ?? 1}
            onValue={(v) => set("interruption.false_interruption_timeout_s", v)}
            min={0.2}
            max={5}
            step={0.1}
            readOnly={readOnly || it.enabled === false}
            error={errors["interruption.false_interruption_timeout_s"]}
          />
        </div>
        <Checkbox label="Don't interrupt the greeting" checked={it.protect_greeting ?? true} onChange={(v) => set("interruption.protect_greeting", v)} disabled={readOnly || it.enabled === false} />
        <Checkbox
          label="Resume speaking after a false interruption"
          hint="When the caller made a noise but said nothing, the agent picks up where it stopped."
          checked={it.resume_on_false_interruption ?? true}
          onChange={(v) => set("interruption.resume_on_false_interruption", v)}
          disabled={readOnly || it.enabled === false}
        />
      </Card>

      <Card title="Silence">
        <div className="grid-2">
          <NumberField
            label="Remind after (s of silence)"
            value={si.reminder_after_s ?? 8}
            onValue={(v) => set("silence.reminder_after_s", v)}
            min={1}
            max={120}
            readOnly={readOnly}
            error={errors["silence.reminder_after_s"]}
          />
          <NumberField
            label="Reminders before hanging up"
            value={si.max_reminders ?? 2}
            onValue={(v) => set("silence.max_reminders", v)}
            min={0}
            max={10}
            step={1}
            readOnly={readOnly}
            error={errors["silence.max_reminders"]}
          />
        </div>
        <TextArea label="Reminder" rows={2} value={si.reminder_text ?? ""} onChange={(e) => set("silence.reminder_text", e.target.value)} readOnly={readOnly} />
        <TextArea label="Said before hanging up on silence" rows={2} value={si.hangup_text ?? ""} onChange={(e) => set("silence.hangup_text", e.target.value)} readOnly={readOnly} />
      </Card>

      <Card title="Call">
        <div className="grid-2">
          <NumberField
            label="Maximum call length (s)"
            value={config.max_duration_s ?? 900}
            onValue={(v) => set("max_duration_s", v)}
            min={30}
            max={14400}
            step={1}
            readOnly={readOnly}
            error={errors.max_duration_s}
            hint="30 s – 4 h. The agent says goodbye and hangs up."
          />
        </div>
        <Checkbox label="Record calls (two-channel WAV)" checked={config.record ?? true} onChange={(v) => set("record", v)} disabled={readOnly} />
        <Checkbox label="Let the agent end the call" checked={config.enable_end_call ?? true} onChange={(v) => set("enable_end_call", v)} disabled={readOnly} />
        <TextArea
          label="Said when speech recognition is failing"
          rows={2}
          value={config.degradation_message_stt ?? ""}
          onChange={(e) => set("degradation_message_stt", e.target.value)}
          readOnly={readOnly}
        />
      </Card>
    </>
  );
}
