/**
 * Checks a tool's parameter schema before it is saved: valid JSON, an object schema, the JSON-Schema subset that
 * LLM function calling understands, and `required` naming declared properties (the backend rejects that too).
 */

export interface SchemaIssue {
  path: string;
  message: string;
  severity: "error" | "warning";
}

const TYPES = new Set(["string", "number", "integer", "boolean", "array", "object", "null"]);
const KNOWN = new Set([
  "type", "description", "enum", "const", "items", "properties", "required", "additionalProperties", "minimum",
  "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "minItems",
  "maxItems", "uniqueItems", "default", "examples", "title", "anyOf", "oneOf", "allOf", "nullable", "$defs", "$ref",
]);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkNode(node: unknown, path: string, out: SchemaIssue[]): void {
  const err = (message: string, p = path): void => void out.push({ path: p, message, severity: "error" });
  const warn = (message: string, p = path): void => void out.push({ path: p, message, severity: "warning" });
  if (!isObj(node)) return err("must be a schema object");
  for (const k of Object.keys(node)) if (!KNOWN.has(k)) warn(`unknown keyword "${k}" (ignored by most models)`, `${path}.${k}`);

  const t = node.type;
  const types = Array.isArray(t) ? t : t === undefined ? [] : [t];
  for (const x of types) if (typeof x !== "string" || !TYPES.has(x)) err(`unknown type ${JSON.stringify(x)}`, `${path}.type`);
  if (t === undefined && !("enum" in node) && !("const" in node) && !("anyOf" in node) && !("oneOf" in node) && !("$ref" in node))
    warn("no type: the model will guess", path);
  if ("description" in node && typeof node.description !== "string") err("must be a string", `${path}.description`);
  if ("enum" in node && (!Array.isArray(node.enum) || node.enum.length === 0)) err("must be a non-empty array", `${path}.enum`);
  if ("pattern" in node) {
    if (typeof node.pattern !== "string") err("must be a string", `${path}.pattern`);
    else {
      try {
        new RegExp(node.pattern, "u");
      } catch {
        err("is not a valid regular expression", `${path}.pattern`);
      }
    }
  }
  for (const k of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]) {
    if (k in node && typeof node[k] !== "number") err("must be a number", `${path}.${k}`);
  }
  for (const k of ["minLength", "maxLength", "minItems", "maxItems"]) {
    if (k in node && (!Number.isInteger(node[k]) || (node[k] as number) < 0)) err("must be a non-negative integer", `${path}.${k}`);
  }
  if (typeof node.minimum === "number" && typeof node.maximum === "number" && node.minimum > node.maximum)
    err("minimum is greater than maximum", path);
  if (types.includes("array")) {
    if (!("items" in node)) warn("array without items", path);
    else checkNode(node.items, `${path}.items`, out);
  }
  if (types.includes("object") || "properties" in node) checkObject(node, path, out);
  for (const k of ["anyOf", "oneOf", "allOf"]) {
    if (k in node) {
      const arr = node[k];
      if (!Array.isArray(arr) || !arr.length) err("must be a non-empty array", `${path}.${k}`);
      else arr.forEach((s, i) => checkNode(s, `${path}.${k}[${i}]`, out));
    }
  }
}

function checkObject(node: Record<string, unknown>, path: string, out: SchemaIssue[]): void {
  const err = (message: string, p: string): void => void out.push({ path: p, message, severity: "error" });
  const props = node.properties ?? {};
  if (!isObj(props)) return err("must be an object of property schemas", `${path}.properties`);
  for (const [name, sub] of Object.entries(props)) checkNode(sub, `${path}.properties.${name}`, out);
  if ("required" in node) {
    const req = node.required;
    if (!Array.isArray(req) || req.some((r) => typeof r !== "string")) err("must be an array of property names", `${path}.required`);
    else {
      for (const r of req) if (!(r in props)) err(`"${r}" is required but not declared in properties`, `${path}.required`);
      const dup = req.filter((r, i) => req.indexOf(r) !== i);
      if (dup.length) err(`duplicates: ${dup.join(", ")}`, `${path}.required`);
    }
  }
}

/** Parses and checks the text of a tool's parameters schema. */
export function validateToolSchema(text: string): { value: Record<string, unknown> | null; issues: SchemaIssue[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : "invalid JSON";
    return { value: null, issues: [{ path: "$", message: `Invalid JSON: ${msg}`, severity: "error" }] };
  }
  const issues: SchemaIssue[] = [];
  if (!isObj(value)) {
    issues.push({ path: "$", message: "The parameters schema must be a JSON object", severity: "error" });
    return { value: null, issues };
  }
  if (value.type !== undefined && value.type !== "object")
    issues.push({ path: "$.type", message: 'The top-level type must be "object"', severity: "error" });
  checkObject(value, "$", issues);
  for (const k of Object.keys(value)) {
    if (!KNOWN.has(k)) issues.push({ path: `$.${k}`, message: `unknown keyword "${k}"`, severity: "warning" });
  }
  return { value: { type: "object", ...value }, issues };
}

export function hasErrors(issues: SchemaIssue[]): boolean {
  return issues.some((i) => i.severity === "error");
}
