import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { authApi } from "../../api/endpoints";
import { ApiError } from "../../api/http";
import { useAuth } from "../../auth/AuthContext";
import { Button, InlineError, TextField } from "../../components/ui";
import { AuthCard } from "./AuthCard";

export const MIN_PASSWORD = 10;

export function RegisterPage() {
  const { signIn } = useAuth();
  const [form, setForm] = useState({ name: "", email: "", password: "", org_name: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [touched, setTouched] = useState(false);
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value }));

  const local: Record<string, string> = {};
  if (!form.name.trim()) local.name = "Enter your name";
  if (!/^\S+@\S+\.\S+$/.test(form.email.trim())) local.email = "Enter a valid email address";
  if (form.password.length < MIN_PASSWORD) local.password = `Use at least ${MIN_PASSWORD} characters`;
  if (!form.org_name.trim()) local.org_name = "Name your organisation";
  const shown = touched ? { ...local, ...fields } : fields;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (Object.keys(local).length) return;
    setBusy(true);
    setError(null);
    setFields({});
    try {
      await signIn(await authApi.register({ ...form, email: form.email.trim(), name: form.name.trim(), org_name: form.org_name.trim() }));
    } catch (err) {
      if (err instanceof ApiError) setFields(err.fieldMap());
      setError(err instanceof ApiError && err.status === 409 ? new Error("An account with this email already exists.") : err);
      setBusy(false);
    }
  }

  return (
    <AuthCard title="Create your organisation" footer={<>Already have an account? <Link to="/login">Sign in</Link></>}>
      <form onSubmit={submit} noValidate>
        <TextField label="Your name" autoComplete="name" required value={form.name} onChange={set("name")} error={shown.name} />
        <TextField label="Email" type="email" autoComplete="email" required value={form.email} onChange={set("email")} error={shown.email} />
        <TextField
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          value={form.password}
          onChange={set("password")}
          hint={`At least ${MIN_PASSWORD} characters.`}
          error={shown.password}
        />
        <TextField label="Organisation name" autoComplete="organization" required value={form.org_name} onChange={set("org_name")} error={shown.org_name} />
        <InlineError error={error} />
        <Button type="submit" variant="primary" busy={busy} className="btn-block">Create account</Button>
      </form>
    </AuthCard>
  );
}
