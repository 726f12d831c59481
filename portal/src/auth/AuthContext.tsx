/**
 * Who is logged in and what they may do. `can("power_vm")` asks the permissions whoami
 * returns (operationIds, as in the API's policy table), so the UI never offers what the
 * caller's role would be refused.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";

import { api, getToken, onUnauthorized, path, setToken } from "../api/client";
import type { LoginResult, Locale, Principal } from "../api/types";
import { currentLocale, isLocale, setLocale } from "../i18n";

export interface LoginForm {
  user: string;
  password: string;
  domain?: string;
  project?: string;
}

interface AuthState {
  principal: Principal | null;
  /** True until the stored session has been checked on first load. */
  loading: boolean;
  login: (form: LoginForm, localeChosen: boolean) => Promise<Principal>;
  logout: () => Promise<void>;
  can: (operationId: string) => boolean;
  /** Switch the UI language and remember it for this user. */
  changeLocale: (lng: Locale) => Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

async function whoami(): Promise<Principal> {
  return api.get<Principal>("/v1/auth/whoami");
}

async function savePreference(lng: Locale): Promise<void> {
  await api.put("/v1/auth/preferences", { locale: lng });
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [principal, setPrincipal] = useState<Principal | null>(null);
  const [loading, setLoading] = useState(() => getToken() !== null);

  useEffect(() => {
    onUnauthorized(() => setPrincipal(null));
    if (!getToken()) return;
    whoami()
      .then(async (who) => {
        if (isLocale(who.locale) && who.locale !== currentLocale()) await setLocale(who.locale);
        setPrincipal(who);
      })
      .catch(() => setPrincipal(null))
      .finally(() => setLoading(false));
  }, []);

  const login = useCallback(async (form: LoginForm, localeChosen: boolean) => {
    const result = await api.post<LoginResult>("/v1/auth/login", {
      user: form.user,
      password: form.password,
      domain: form.domain || "default",
      project: form.project || undefined,
    });
    setToken(result.token);
    const who = await whoami();
    if (localeChosen) {
      // A language picked on the login page is this user's choice from now on.
      await savePreference(currentLocale());
      who.locale = currentLocale();
    } else if (isLocale(who.locale) && who.locale !== currentLocale()) {
      await setLocale(who.locale);
    }
    setPrincipal(who);
    return who;
  }, []);

  const logout = useCallback(async () => {
    const tokenId = principal?.token_id;
    try {
      if (tokenId) await api.delete(path`/v1/auth/tokens/${tokenId}`);
    } finally {
      setToken(null);
      setPrincipal(null);
    }
  }, [principal]);

  const can = useCallback(
    (operationId: string) => principal?.permissions.includes(operationId) ?? false,
    [principal],
  );

  const changeLocale = useCallback(
    async (lng: Locale) => {
      await setLocale(lng);
      if (principal) {
        await savePreference(lng);
        setPrincipal({ ...principal, locale: lng });
      }
    },
    [principal],
  );

  const value = useMemo(
    () => ({ principal, loading, login, logout, can, changeLocale }),
    [principal, loading, login, logout, can, changeLocale],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}

/** Renders its children only when the caller may call `op` (an operationId). */
export function Can({ op, children }: { op: string; children: ReactNode }) {
  const { can } = useAuth();
  return can(op) ? <>{children}</> : null;
}
