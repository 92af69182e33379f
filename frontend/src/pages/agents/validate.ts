import type { AgentConfig } from "../../api/types";
import { E164_RE } from "../../lib/csv";
import { hasErrors, validateToolSchema } from "../../lib/jsonSchema";

const TOOL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;

/**
 * The checks the backend's AgentConfig model makes, run before saving so mistakes show next to their field.
 * Keys are the same dotted paths the backend's 422 uses (without the leading "config.").
 */
export function validateAgent(name: string, c: AgentConfig, toolSchemaText: Record<number, string>): Record<string, string> {
  const e: Record<string, string> = {};
  if (!name.trim()) e.name = "Give the agent a name";
  if (!c.system_prompt?.trim()) e.system_prompt = "The prompt can't be empty";
  else if (c.system_prompt.length > 20000) e.system_prompt = "At most 20,000 characters";
  if ((c.greeting ?? "").length > 1000) e.greeting = "At most 1,000 characters";
  const range = (path: string, v: number | undefined | null, lo: number, hi: number, int = false) => {
    if (v == null || Number.isNaN(v)) e[path] = "Required";
    else if (v < lo || v > hi) e[path] = `Between ${lo} and ${hi}`;
    else if (int && !Number.isInteger(v)) e[path] = "Whole number";
  };
  range("tts.speed", c.tts?.speed, 0.5, 2);
  range("llm.temperature", c.llm?.temperature, 0, 2);
  range("llm.max_tokens", c.llm?.max_tokens, 1, 4096, true);
  range("stt.boost_score", c.stt?.boost_score, 0, 100);
  range("interruption.min_words", c.interruption?.min_words, 0, 10, true);
  range("interruption.false_interruption_timeout_s", c.interruption?.false_interruption_timeout_s, 0.2, 5);
  range("silence.reminder_after_s", c.silence?.reminder_after_s, 1, 120);
  range("silence.max_reminders", c.silence?.max_reminders, 0, 10, true);
  range("max_duration_s", c.max_duration_s, 30, 4 * 3600, true);
  for (const key of ["stt", "llm", "tts"] as const) {
    const ep = c[key]?.endpoint;
    if (ep?.timeout_s != null && (ep.timeout_s <= 0 || ep.timeout_s > 120)) e[`${key}.endpoint.timeout_s`] = "Between 0 and 120";
    if (ep?.base_url && !/^https?:\/\/\S+$/.test(ep.base_url)) e[`${key}.endpoint.base_url`] = "Must start with http:// or https://";
  }
  if ((c.stt?.boosted_words?.length ?? 0) > 100) e["stt.boosted_words"] = "At most 100 words";

  const names = new Map<string, number>();
  (c.tools ?? []).forEach((t, i) => {
    const p = `tools.${i}`;
    if (!TOOL_NAME.test(t.name ?? "")) e[`${p}.name`] = "Letters, digits and _; starts with a letter or _; up to 64";
    else if (names.has(t.name)) e[`${p}.name`] = `Duplicate of tool ${names.get(t.name)! + 1}`;
    else names.set(t.name, i);
    if (!t.description?.trim()) e[`${p}.description`] = "Describe when the model should call it";
    try {
      const u = new URL(t.url);
      if (!/^https?:$/.test(u.protocol)) throw new Error();
    } catch {
      e[`${p}.url`] = "Enter a full http(s) URL";
    }
    if (t.timeout_s != null && (t.timeout_s <= 0 || t.timeout_s > 30)) e[`${p}.timeout_s`] = "Between 0 and 30 seconds";
    const text = toolSchemaText[i];
    if (text !== undefined) {
      const { issues } = validateToolSchema(text);
      if (hasErrors(issues)) e[`${p}.parameters`] = issues.filter((x) => x.severity === "error").map((x) => `${x.path}: ${x.message}`).join("; ");
    }
  });
  (c.transfer_targets ?? []).forEach((t, i) => {
    const p = `transfer_targets.${i}`;
    if (!t.name?.trim()) e[`${p}.name`] = "Required";
    if (!E164_RE.test(t.phone_number ?? "")) e[`${p}.phone_number`] = "E.164, like +14155550123";
  });
  return e;
}
