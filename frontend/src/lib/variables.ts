/** Same pattern as core/agent_config.py: {{ name }} with identifier names. */
const VARIABLE = /{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}/g;

export function findVariables(...texts: (string | undefined | null)[]): string[] {
  const found = new Set<string>();
  for (const t of texts) for (const m of (t ?? "").matchAll(VARIABLE)) found.add(m[1]);
  return [...found].sort();
}

/** Unbalanced or malformed braces that will not be substituted, so the editor can warn. */
export function malformedVariables(text: string | undefined | null): string[] {
  const bad: string[] = [];
  const t = text ?? "";
  for (const m of t.matchAll(/{{([^}]*)}}/g)) {
    if (!/^\s*[A-Za-z_][A-Za-z0-9_]*\s*$/.test(m[1])) bad.push(m[0]);
  }
  const opens = (t.match(/{{/g) ?? []).length;
  const closes = (t.match(/}}/g) ?? []).length;
  if (opens !== closes) bad.push(opens > closes ? "unclosed {{" : "stray }}");
  return bad;
}

/** Fills variables like the backend does (unknown ones become empty), for the preview. */
export function renderTemplate(text: string, values: Record<string, string>): string {
  return text.replace(VARIABLE, (_, name: string) => values[name] ?? "");
}
