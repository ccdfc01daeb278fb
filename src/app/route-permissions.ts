import type { FastifyInstance } from 'fastify';

/** A route as registered: what the admin-route walk (route-permissions.test.ts) checks. */
export interface RegisteredRoute {
  method: string;
  url: string;
  /** `config.permission`, when the route declares one (otherwise its group's read/write default) */
  permission?: string;
}

const tables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Records every route registered after this call (call it on the root instance, before any route). */
export function recordRoutes(app: FastifyInstance): void {
  const table: RegisteredRoute[] = [];
  tables.set(app, table);
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const permission = (r.config as { permission?: string } | undefined)?.permission;
    for (const method of methods)
      table.push({ method, url: r.url, ...(permission !== undefined ? { permission } : {}) });
  });
}

/** The routes recorded on this instance. */
export const registeredRoutes = (app: FastifyInstance): readonly RegisteredRoute[] => tables.get(app) ?? [];

/**
 * The /api/v1 routes that are not admin routes, and why. Every other /api/v1 route must refuse a caller
 * without credentials (401) and an admin API token without its permission (403 insufficient-scope
 * naming it): the test walks them all, so a new admin route that forgets its guard or permission fails.
 * - `public`: anyone (what SSH servers fetch; the device sign-in, which checks a password itself);
 * - `self`: a person or workload acting for themself (their access, credentials, sessions, requests);
 * - `named`: a person named on the object (approver of the request, reviewer of the campaign); PIM
 *   approve/deny also declare `approvals:decide`: anyone else is refused (and audited) unless they hold
 *   it, and the domain still answers only a named approver (docs/decisions/0041).
 */
export const NON_ADMIN_ROUTES: Record<string, { kind: 'public' | 'self' | 'named'; why: string }> = {
  'GET /api/v1/ssh/ca.pub': { kind: 'public', why: 'the TrustedUserCAKeys file servers fetch' },
  'GET /api/v1/ssh/krl': { kind: 'public', why: 'the key revocation list servers fetch' },
  'GET /api/v1/ssh/known_hosts': { kind: 'public', why: 'the @cert-authority line clients fetch' },
  'POST /api/v1/signin/device': {
    kind: 'public',
    why: 'approves a device authorization with the person’s own password (and code)',
  },
  'GET /api/v1/session': { kind: 'self', why: 'the signed-in browser: who it is, CSRF token, admin roles' },
  'POST /api/v1/aws/credentials': { kind: 'self', why: 'AWS credentials for the caller, as decide() allows' },
  'GET /api/v1/aws/entitlements': { kind: 'self', why: 'the AWS roles the caller may use' },
  'GET /api/v1/aws/permission-set-entitlements': {
    kind: 'self',
    why: 'the Identity Center permission sets the caller may use',
  },
  'GET /api/v1/access/mine': { kind: 'self', why: 'the apps and SSH logins the caller may use' },
  'GET /api/v1/me/sessions': { kind: 'self', why: 'the caller’s own sessions' },
  'POST /api/v1/me/sessions/:id/revoke': { kind: 'self', why: 'signs out one of the caller’s sessions' },
  'GET /api/v1/me/security': { kind: 'self', why: 'how the caller signs in (their own methods)' },
  'POST /api/v1/me/totp': { kind: 'self', why: 'starts the caller’s own authenticator app enrollment' },
  'POST /api/v1/me/totp/confirm': { kind: 'self', why: 'confirms the caller’s own authenticator app' },
  'DELETE /api/v1/me/totp': { kind: 'self', why: 'removes the caller’s own authenticator app' },
  'POST /api/v1/me/passkeys/options': {
    kind: 'self',
    why: 'registration options for the caller’s own passkey',
  },
  'POST /api/v1/me/passkeys': { kind: 'self', why: 'registers the caller’s own passkey' },
  'DELETE /api/v1/me/passkeys/:id': { kind: 'self', why: 'removes one of the caller’s own passkeys' },
  'POST /api/v1/me/recovery-codes': { kind: 'self', why: 'new recovery codes for the caller' },
  'POST /api/v1/me/password': {
    kind: 'self',
    why: 'changes the caller’s own password (the current one is checked)',
  },
  'POST /api/v1/ssh/certificates': { kind: 'self', why: 'an SSH certificate for the caller' },
  'GET /api/v1/pim/eligible': { kind: 'self', why: 'the roles the caller may activate' },
  'POST /api/v1/pim/activations': { kind: 'self', why: 'the caller requests an activation' },
  'POST /api/v1/pim/activations/:id/cancel': { kind: 'self', why: 'the requester withdraws their request' },
  'POST /api/v1/pim/activations/:id/approve': {
    kind: 'named',
    why: 'an approver named on the request; others need approvals:decide',
  },
  'POST /api/v1/pim/activations/:id/deny': {
    kind: 'named',
    why: 'an approver named on the request; others need approvals:decide',
  },
  'POST /api/v1/reviews/:id/items/:item/decision': {
    kind: 'named',
    why: 'a reviewer named on the campaign (others need approvals:decide); it keeps or removes access, never grants it',
  },
};
