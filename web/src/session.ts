import { createContext, useContext } from 'react';
import { setCsrfToken } from './api/client.js';

/** Who is signed in, what the console may offer them, and the CSRF token for their unsafe calls. */
export interface ConsoleSession {
  user: { id: string; userName: string; displayName: string | null } | null;
  /** admin permissions the server grants this session (the server still checks every call) */
  permissions: string[];
  adminRoles: string[];
  csrfToken: string | null;
}

export const SessionContext = createContext<ConsoleSession>({
  user: null,
  permissions: [],
  adminRoles: [],
  csrfToken: null,
});

export const useSession = (): ConsoleSession => useContext(SessionContext);

/** True when the session holds `permission` (`users:write`), or `area:*`, or `*`. */
export function can(session: ConsoleSession, permission: string): boolean {
  const [area] = permission.split(':');
  return session.permissions.some((p) => p === permission || p === '*' || p === `${area}:*`);
}

export async function loadSession(): Promise<ConsoleSession> {
  const res = await fetch('/api/v1/session', { credentials: 'same-origin' });
  if (res.status === 401) {
    window.location.assign(`/signin?return_to=${encodeURIComponent(window.location.pathname)}`);
    return new Promise(() => {});
  }
  const body = res.ok ? ((await res.json()) as Partial<ConsoleSession>) : {};
  const session: ConsoleSession = {
    user: body.user ?? null,
    permissions: body.permissions ?? [],
    adminRoles: body.adminRoles ?? [],
    csrfToken: body.csrfToken ?? null,
  };
  setCsrfToken(session.csrfToken);
  return session;
}
