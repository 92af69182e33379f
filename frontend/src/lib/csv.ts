/** RFC 4180 CSV parsing for the upload preview (the backend validates again and is the authority). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else cell += c;
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && src[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c.trim() !== ""));
}

export const E164_RE = /^\+[1-9]\d{6,14}$/;

/** Best-effort E.164: strips formatting; a national number gets the default country's calling code. */
export function normalizePhone(raw: string, defaultCallingCode = "1"): string | null {
  const trimmed = raw.trim();
  if (!trimmed) return null;
  const digits = trimmed.replace(/[^\d+]/g, "");
  let out: string;
  if (digits.startsWith("+")) out = `+${digits.slice(1).replace(/\+/g, "")}`;
  else if (digits.startsWith("00")) out = `+${digits.slice(2)}`;
  else out = `+${defaultCallingCode}${digits.replace(/^0+/, "")}`;
  return E164_RE.test(out) ? out : null;
}

export interface CsvRowIssue {
  /** 1-based line of the record, as the backend counts: the header is row 1, the first contact row 2. */
  row: number;
  column?: string;
  message: string;
}

export interface CsvPreview {
  header: string[];
  rows: string[][];
  phoneColumn: string | null;
  issues: CsvRowIssue[];
  validCount: number;
  duplicateCount: number;
}

/** The backend's PHONE_COLUMNS (backend/campaigns/contacts_import.py). */
const PHONE_NAMES = ["phone", "phone_number", "number", "mobile", "mobile_number", "msisdn", "telephone", "tel", "cell", "to"];

export function previewContacts(text: string, defaultCallingCode = "1", phoneColumn?: string): CsvPreview {
  const all = parseCsv(text);
  const header = (all[0] ?? []).map((h) => h.trim());
  const rows = all.slice(1);
  const col = phoneColumn ?? header.find((h) => PHONE_NAMES.includes(h.toLowerCase())) ?? null;
  const issues: CsvRowIssue[] = [];
  if (!header.length) issues.push({ row: 1, message: "The file is empty" });
  else if (!col) issues.push({ row: 1, message: `No phone column (expected one of: ${PHONE_NAMES.join(", ")})` });
  const dupHeaders = header.filter((h, i) => header.indexOf(h) !== i);
  if (dupHeaders.length) issues.push({ row: 1, message: `Duplicate column names: ${dupHeaders.join(", ")}` });
  const seen = new Set<string>();
  let valid = 0;
  let dups = 0;
  const idx = col ? header.indexOf(col) : -1;
  rows.forEach((r, i) => {
    const row = i + 2;
    if (r.length !== header.length) issues.push({ row, message: `Has ${r.length} cells, the header has ${header.length}` });
    if (idx < 0) return;
    const phone = normalizePhone(r[idx] ?? "", defaultCallingCode);
    if (!phone) issues.push({ row, column: col ?? undefined, message: `"${r[idx] ?? ""}" is not a valid phone number` });
    else if (seen.has(phone)) {
      dups += 1; // duplicates are dropped, not errors
    } else {
      seen.add(phone);
      valid += 1;
    }
  });
  return { header, rows, phoneColumn: col, issues, validCount: valid, duplicateCount: dups };
}

/** Reads a File as UTF-8 text (FileReader: also works where Blob.text is missing). */
export function readText(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result ?? ""));
    r.onerror = () => reject(r.error ?? new Error("Couldn't read the file"));
    r.readAsText(file);
  });
}
