import { describe, expect, it } from "vitest";
import { normalizePhone, parseCsv, previewContacts } from "./csv";
import { hasErrors, validateToolSchema } from "./jsonSchema";
import { findVariables, malformedVariables, renderTemplate } from "./variables";
import { flatDiff, getIn, setIn } from "./objectPath";
import { fmtDuration, fmtMs, fmtPct } from "./format";

describe("csv", () => {
  it("parses quotes, escaped quotes, CRLF and a BOM", () => {
    expect(parseCsv('\uFEFFphone,name\r\n"+1 415 555 0123","Doe, ""Jo"""\r\n\r\n')).toEqual([
      ["phone", "name"],
      ["+1 415 555 0123", 'Doe, "Jo"'],
    ]);
  });

  it("normalises phone numbers to E.164 with a default country", () => {
    expect(normalizePhone("(415) 555-0123")).toBe("+14155550123");
    expect(normalizePhone("+44 20 7946 0958", "1")).toBe("+442079460958");
    expect(normalizePhone("0044 20 7946 0958")).toBe("+442079460958");
    expect(normalizePhone("12")).toBeNull();
    expect(normalizePhone("")).toBeNull();
  });

  it("reports row errors by file line (header = 1) and drops duplicates", () => {
    const p = previewContacts("phone,first_name\n4155550123,Ada\nnot-a-number,Bob\n+14155550123,Ada again\n4155550199\n");
    expect(p.phoneColumn).toBe("phone");
    expect(p.validCount).toBe(2);
    expect(p.duplicateCount).toBe(1);
    expect(p.issues.map((i) => i.row)).toEqual([3, 5]);
    expect(p.issues[0].message).toMatch(/not a valid phone/);
    expect(p.issues[1].message).toMatch(/cells/);
  });

  it("flags a missing phone column in the header", () => {
    const p = previewContacts("name\nAda\n");
    expect(p.issues[0]).toMatchObject({ row: 1 });
    expect(p.validCount).toBe(0);
  });
});

describe("tool JSON schema validation", () => {
  it("accepts a function-calling schema", () => {
    const r = validateToolSchema(JSON.stringify({ type: "object", properties: { id: { type: "string", description: "x" } }, required: ["id"] }));
    expect(hasErrors(r.issues)).toBe(false);
    expect(r.value).toMatchObject({ type: "object" });
  });

  it("rejects invalid JSON with the parser's message", () => {
    const r = validateToolSchema("{ type: object }");
    expect(r.value).toBeNull();
    expect(r.issues[0].message).toMatch(/Invalid JSON/);
  });

  it("rejects required properties that are not declared, bad types and bad regexes", () => {
    const r = validateToolSchema(
      JSON.stringify({ type: "object", properties: { a: { type: "strin" }, b: { type: "string", pattern: "(" } }, required: ["a", "zip"] }),
    );
    const msgs = r.issues.filter((i) => i.severity === "error").map((i) => `${i.path} ${i.message}`);
    expect(msgs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/properties\.a\.type unknown type/),
        expect.stringMatching(/pattern is not a valid regular expression/),
        expect.stringMatching(/"zip" is required but not declared/),
      ]),
    );
  });

  it("rejects a non-object top level and warns on unknown keywords", () => {
    expect(hasErrors(validateToolSchema("[]").issues)).toBe(true);
    expect(hasErrors(validateToolSchema('{"type":"array"}').issues)).toBe(true);
    const r = validateToolSchema('{"type":"object","properties":{"n":{"type":"number","minimun":1}}}');
    expect(hasErrors(r.issues)).toBe(false);
    expect(r.issues.some((i) => i.severity === "warning" && /minimun/.test(i.message))).toBe(true);
  });

  it("checks nested arrays and objects", () => {
    const r = validateToolSchema(
      JSON.stringify({ type: "object", properties: { items: { type: "array", items: { type: "object", properties: {}, required: ["sku"] } } } }),
    );
    expect(r.issues.find((i) => i.severity === "error")?.path).toBe("$.properties.items.items.required");
  });
});

describe("variables", () => {
  it("finds variables like the backend", () => {
    expect(findVariables("Hi {{ first_name }} from {{company}}", "{{company}} {{bad name}}")).toEqual(["company", "first_name"]);
    expect(malformedVariables("{{bad name}} and {{ok}} {{")).toEqual(["{{bad name}}", "unclosed {{"]);
    expect(renderTemplate("Hi {{name}}{{missing}}!", { name: "Ada" })).toBe("Hi Ada!");
  });
});

describe("object paths", () => {
  it("sets immutably and diffs leaves", () => {
    const a = { tts: { voice: "a", speed: 1 }, tools: [{ name: "x" }] };
    const b = setIn(a, "tts.voice", "b");
    expect(a.tts.voice).toBe("a");
    expect(getIn(b, "tts.voice")).toBe("b");
    expect(getIn(setIn(a, "tools.0.name", "y"), "tools.0.name")).toBe("y");
    expect(flatDiff(a, b)).toEqual(["tts.voice"]);
  });
});

describe("format", () => {
  it("formats durations, latencies and ratios", () => {
    expect(fmtDuration(75.4)).toBe("1:15");
    expect(fmtDuration(3725)).toBe("1:02:05");
    expect(fmtDuration(null)).toBe("—");
    expect(fmtMs(412.4)).toBe("412 ms");
    expect(fmtMs(12500)).toBe("12.5 s");
    expect(fmtPct(0.5)).toBe("50.0%");
    expect(fmtPct(1)).toBe("100%");
  });
});
