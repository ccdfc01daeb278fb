import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { MasterKey } from '../keys/master-key.js';
import { Problem } from '../problem.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF for API calls a browser authenticates with its session cookie (docs/api.md, "Browser calls"):
 * the token is an HMAC of the session cookie under a key derived from the master key, so it is bound
 * to that session, costs no storage, and reveals nothing of the cookie. Calls with an Authorization
 * header need none: a browser does not add one to a cross-site request by itself.
 */
export class CsrfTokens {
  readonly #key: Buffer;
  constructor(masterKey: MasterKey) {
    this.#key = masterKey.derive('csrf/v1');
  }

  tokenFor(sessionCookie: string): string {
    return createHmac('sha256', this.#key).update(sessionCookie, 'utf8').digest('base64url');
  }

  matches(sessionCookie: string, given: string | undefined): boolean {
    if (!given) return false;
    const want = Buffer.from(this.tokenFor(sessionCookie));
    const got = Buffer.from(given);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  /**
   * Throws a 403 problem when an unsafe /api/ request that the cookie authenticated lacks the right
   * `x-csrf-token`. Called once the cookie is known to name a live session, so a stale cookie still
   * gets its 401.
   */
  check(req: FastifyRequest, sessionCookie: string): void {
    // The matched route, not the raw URL: the router decodes %-escapes, so `/%61pi/…` reaches /api/ routes.
    const path = req.routeOptions.url ?? req.url;
    if (SAFE.has(req.method) || !path.startsWith('/api/')) return;
    const given = req.headers['x-csrf-token'];
    if (!this.matches(sessionCookie, typeof given === 'string' ? given : undefined))
      throw new Problem(
        403,
        'csrf-token-invalid',
        'CSRF token missing or wrong',
        'a call authenticated by the session cookie must send the x-csrf-token header from GET /api/v1/session',
      );
  }
}
