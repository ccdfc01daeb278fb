import type {} from '@fastify/cookie'; // request.cookies / reply.setCookie types
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomToken, secretsEqual } from '../secrets.js';

export const CSRF_COOKIE = 'ferry_csrf';

/**
 * Double-submit token: a random cookie echoed in a hidden field. A cross-site form can't read the
 * cookie, so it can't fill the field; together with SameSite=Lax this stops login CSRF too.
 */
export function csrfToken(req: FastifyRequest, reply: FastifyReply, secure: boolean): string {
  const existing = req.cookies[CSRF_COOKIE];
  if (existing && /^[\w-]{43}$/.test(existing)) return existing;
  const token = randomToken();
  reply.setCookie(CSRF_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'lax', secure });
  return token;
}

export function csrfValid(req: FastifyRequest, submitted: unknown): boolean {
  const cookie = req.cookies[CSRF_COOKIE];
  return (
    typeof submitted === 'string' &&
    typeof cookie === 'string' &&
    cookie.length > 0 &&
    secretsEqual(cookie, submitted)
  );
}
