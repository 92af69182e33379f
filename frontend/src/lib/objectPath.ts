/** Immutable get/set by dotted path ("tts.voice", "tools.0.name"), for the big agent form. */
type Obj = Record<string, unknown>;

export function getIn(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (cur == null || typeof cur !== "object") return undefined;
    cur = (cur as Obj)[key];
  }
  return cur;
}

export function setIn<T>(obj: T, path: string, value: unknown): T {
  const [head, ...rest] = path.split(".");
  const base: Obj | unknown[] = Array.isArray(obj) ? [...obj] : { ...((obj ?? {}) as Obj) };
  const current = (base as Obj)[head];
  (base as Obj)[head] = rest.length ? setIn(current ?? (/^\d+$/.test(rest[0]) ? [] : {}), rest.join("."), value) : value;
  return base as T;
}

/** Leaf paths whose values differ between a and b (arrays compared as whole values). */
export function flatDiff(a: unknown, b: unknown, prefix = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isPlain = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isPlain(a) || !isPlain(b)) return [prefix || "(root)"];
  const keys = new Set([...Object.keys(a as Obj), ...Object.keys(b as Obj)]);
  const out: string[] = [];
  for (const k of [...keys].sort()) out.push(...flatDiff((a as Obj)[k], (b as Obj)[k], prefix ? `${prefix}.${k}` : k));
  return out;
}
