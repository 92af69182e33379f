import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { authApi } from "../../api/endpoints";
import { ApiError } from "../../api/http";
import { useAuth } from "../../auth/AuthContext";
import { Button, InlineError, TextField } from "../../components/ui";
import { AuthCard } from "./AuthCard";
import { MIN_PASSWORD } from "./RegisterPage";

export function AcceptInvitationPage() {
  const { signIn } = useAuth();
  const [params] = useSearchParams();
  const [token, setToken] = useState(params.get("token") ?? "");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [touched, setTouched] = useState(false);
  const fromLink = !!params.get("token");

  const problems: Record<string, string> = {};
  if (!token.trim()) problems.token = "Paste the invitation code from your email";
  if (!name.trim()) problems.name = "Enter your name";
  if (password.length < MIN_PASSWORD) problems.password = `Use at least ${MIN_PASSWORD} characters`;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (Object.keys(problems).length) return;
    setBusy(true);
    setError(null);
    try {
      await signIn(await authApi.acceptInvitation({ token: token.trim(), name: name.trim(), password }));
    } catch (err) {
      setError(
        err instanceof ApiError && [400, 404, 410].includes(err.status)
          ? new Error("This invitation is invalid, expired or already used. Ask for a new one.")
          : err,
      );
      setBusy(false);
    }
  }

  return (
    <AuthCard title="Join your team" footer={<>Already a member? <Link to="/login">Sign in</Link></>}>
      <form onSubmit={submit} noValidate>
        {!fromLink && (
          <TextField label="Invitation code" value={token} onChange={(e) => setToken(e.target.value)} error={touched ? problems.token : null} autoComplete="off" />
        )}
        <TextField label="Your name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} error={touched ? problems.name : null} />
        <TextField
          label="Choose a password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          hint={`At least ${MIN_PASSWORD} characters. Already have an account with this email? Enter its password.`}
          error={touched ? problems.password : null}
        />
        <InlineError error={error} />
        <Button type="submit" variant="primary" busy={busy} className="btn-block">Accept invitation</Button>
      </form>
    </AuthCard>
  );
}
