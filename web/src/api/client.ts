import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema.js';

/** The console's one way to the server: the documented /api/v1 routes, typed from the OpenAPI document. */
export const api = createClient<paths>({ baseUrl: '/', credentials: 'same-origin' });

let csrfToken: string | null = null;
/** The session's CSRF token (from GET /api/v1/session), sent on every unsafe call as `x-csrf-token`. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const session: Middleware = {
  onRequest({ request }) {
    if (csrfToken && UNSAFE.has(request.method)) request.headers.set('x-csrf-token', csrfToken);
    return request;
  },
  onResponse({ response }) {
    // The session ended (signed out elsewhere, revoked): sign in again and come back here.
    if (response.status === 401) {
      window.location.assign(`/signin?return_to=${encodeURIComponent(window.location.pathname)}`);
    }
    return response;
  },
};
api.use(session);

/** A problem's words for a person (RFC 7807 detail, else its title). */
export function problemText(error: unknown): string {
  if (!error || typeof error !== 'object') return 'The request failed.';
  const p = error as { detail?: string; title?: string; code?: string };
  return p.detail ?? p.title ?? 'The request failed.';
}

/** Data or a thrown Error with the problem's words: for useLoad() and action handlers. */
export async function need<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw new Error(problemText(error));
  return data as T;
}
