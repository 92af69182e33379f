import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { authApi } from "../api/endpoints";
import { refreshSession, tokens } from "../api/http";
import type { Me, Role, TokenResponse } from "../api/types";

type Status = "loading" | "signed_in" | "signed_out";

interface AuthState {
  status: Status;
  me: Me | null;
  /** Called with a login/register/accept response: keeps the tokens and loads who we are. */
  signIn: (pair: TokenResponse) => Promise<void>;
  signOut: () => Promise<void>;
  can: (min: Role) => boolean;
}

const AuthContext = createContext<AuthState | null>(null);
const RANK: Record<Role, number> = { member: 1, admin: 2, owner: 3 };

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Status>("loading");
  const [me, setMe] = useState<Me | null>(null);
  const qc = useQueryClient();

  const loadMe = useCallback(async () => {
    const who = await authApi.me();
    setMe(who);
    setStatus("signed_in");
  }, []);

  useEffect(() => {
    tokens.onSessionLost(() => {
      tokens.clear();
      setMe(null);
      setStatus("signed_out");
    });
    // A page reload loses the in-memory access token: the httpOnly refresh cookie gets a new one.
    let cancelled = false;
    (async () => {
      const ok = await refreshSession();
      if (cancelled) return;
      if (!ok) return setStatus("signed_out");
      try {
        await loadMe();
      } catch {
        if (!cancelled) setStatus("signed_out");
      }
    })();
    return () => {
      cancelled = true;
      tokens.onSessionLost(null);
    };
  }, [loadMe]);

  const signIn = useCallback(
    async (pair: TokenResponse) => {
      tokens.set(pair);
      await loadMe();
    },
    [loadMe],
  );

  const signOut = useCallback(async () => {
    try {
      await authApi.logout();
    } catch {
      /* the session is dropped locally either way */
    }
    tokens.clear();
    qc.clear();
    setMe(null);
    setStatus("signed_out");
  }, [qc]);

  const value = useMemo<AuthState>(
    () => ({ status, me, signIn, signOut, can: (min) => !!me && RANK[me.role] >= RANK[min] }),
    [status, me, signIn, signOut],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
