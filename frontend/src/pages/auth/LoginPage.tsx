import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { authApi } from "../../api/endpoints";
import { ApiError } from "../../api/http";
import { useAuth } from "../../auth/AuthContext";
import { Button, InlineError, TextField } from "../../components/ui";
import { AuthCard } from "./AuthCard";

export function LoginPage() {
  const { signIn } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(await authApi.login(email.trim(), password));
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? new Error("Email or password is wrong.")
          : err instanceof ApiError && err.status === 429
            ? new Error("Too many attempts. Wait a minute and try again.")
            : err,
      );
      setBusy(false);
    }
  }

  return (
    <AuthCard title="Sign in" footer={<>New here? <Link to="/register">Create an organisation</Link></>}>
      <form onSubmit={submit} noValidate>
        <TextField label="Email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <TextField label="Password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        <InlineError error={error} />
        <Button type="submit" variant="primary" busy={busy} className="btn-block" disabled={!email || !password}>
          Sign in
        </Button>
      </form>
    </AuthCard>
  );
}
