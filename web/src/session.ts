import { createContext, useContext } from 'react';
import { api, setCsrfToken } from './api/client.js';
import type { paths } from './api/schema.js';

/** Who is signed in, what the console may offer them, and the CSRF token for their unsafe calls (GET /api/v1/session). */
export type ConsoleSession =
  paths['/api/v1/session']['get']['responses']['200']['content']['application/json'];

export const SessionContext = createContext<ConsoleSession | null>(null);

export const useSession = (): ConsoleSession => {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
};

/** True when the session's admin roles give `permission` (the server checks every call regardless). */
export const can = (session: ConsoleSession, permission: string): boolean =>
  session.permissions.includes(permission);

export async function loadSession(): Promise<ConsoleSession> {
  const { data, response } = await api.GET('/api/v1/session');
  if (!data) {
    // The session ended: the client's 401 handler is already on its way to /signin.
    if (response.status === 401) return new Promise(() => {});
    throw new Error(`GET /api/v1/session answered ${response.status}`);
  }
  setCsrfToken(data.csrfToken);
  return data;
}
