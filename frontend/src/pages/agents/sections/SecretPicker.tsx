import { useQuery } from "@tanstack/react-query";
import { orgApi } from "../../../api/endpoints";
import { SelectField } from "../../../components/ui";

/** Picks an organisation secret by name (Settings → Secrets); the agent stores the name, never the value. A name
 * the organisation no longer has stays visible as "missing" so the save's 422 is explained. */
export function SecretPicker({ label, value, onChange, readOnly, error, hint }: {
  label: string;
  value: string | null | undefined;
  onChange: (name: string | null) => void;
  readOnly: boolean;
  error?: string;
  hint?: string;
}) {
  const secrets = useQuery({ queryKey: ["secrets"], queryFn: orgApi.secrets, retry: false });
  const names = (secrets.data ?? []).map((s) => s.name);
  const missing = value && secrets.isSuccess && !names.includes(value);
  return (
    <SelectField
      label={label}
      value={value ?? ""}
      onChange={(e) => onChange(e.target.value || null)}
      disabled={readOnly}
      error={error ?? (missing ? `No secret named “${value}”: add it in Settings → Secrets` : undefined)}
      hint={hint ?? "From Settings → Secrets. Values are never stored in the agent or shown here."}
    >
      <option value="">None</option>
      {value && !names.includes(value) && <option value={value}>{value} (missing)</option>}
      {names.map((n) => <option key={n} value={n}>{n}</option>)}
    </SelectField>
  );
}
