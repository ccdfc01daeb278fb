import type {} from '@fastify/cookie'; // request.cookies types
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { Unauthorized } from '../problem.js';
import type { Database } from '../store/schema.js';
import type { CsrfTokens } from './csrf.js';
import { type DirectoryPrincipal, principalOf } from './principal-of.js';
import type { SessionStore } from './sessions.js';

/**
 * A person (or workload) calling Ferry's user-facing API: `ferry creds`, `ferry ssh`, the proxy.
 * Distinct from the admin API's bearer tokens: a caller acts only for themself.
 */
/** A directory user, or a workload identity in the same shape (no groups, e-mails or names). */
export type CallerPrincipal = Omit<DirectoryPrincipal, 'kind'> & { kind: 'user' | 'workload' };

export interface Caller {
  principal: CallerPrincipal;
  /** how the caller proved who they are */
  via: 'browser-session' | 'access-token';
  /** the Ferry sign-in session behind the call, when there is one (revoked on offboarding) */
  sessionId: string | null;
  /** the OAuth client the access token was issued to, for access-token callers */
  clientId: string | null;
}

/** One way to recognise a caller; null when the request does not carry that kind of proof. */
export type CallerAuthenticator = (req: FastifyRequest) => Promise<Caller | null>;

declare module 'fastify' {
  interface FastifyRequest {
    /** set by requireCaller() on user-facing routes */
    caller: Caller | null;
  }
}

/** The first authenticator that recognises the request wins. */
export function anyCaller(...authenticators: CallerAuthenticator[]): CallerAuthenticator {
  return async (req) => {
    for (const authenticate of authenticators) {
      const caller = await authenticate(req);
      if (caller) return caller;
    }
    return null;
  };
}

/** An onRequest hook (before the body is read) admitting only a signed-in caller; sets req.caller and the audit actor. */
export function requireCaller(authenticate: CallerAuthenticator) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const caller = await authenticate(req);
    if (!caller) {
      const bearer = /^Bearer\s+\S+$/i.test(req.headers.authorization ?? '');
      reply.header('www-authenticate', bearer ? 'Bearer error="invalid_token"' : 'Bearer');
      throw new Unauthorized(
        bearer
          ? 'the access token is invalid, expired or revoked: sign in again with `ferry login`'
          : 'sign in first: run `ferry login`',
      );
    }
    req.caller = caller;
    req.actor =
      caller.principal.kind === 'workload'
        ? { type: 'workload', id: caller.principal.id, name: caller.principal.userName }
        : { type: 'user', id: caller.principal.id, name: caller.principal.userName };
  };
}

/** A browser that signed in on Ferry's own pages (the session cookie). */
export function browserSessionCaller(
  db: Kysely<Database>,
  sessions: SessionStore,
  cookieName: string,
  /** unsafe /api/ calls must carry the session's CSRF token (docs/api.md, "Browser calls") */
  csrf: CsrfTokens | null = null,
): CallerAuthenticator {
  return async (req) => {
    const token = req.cookies?.[cookieName];
    if (!token) return null;
    const session = await sessions.resolve(token);
    if (!session) return null;
    csrf?.check(req, token);
    const principal = await principalOf(db, session.userId, session);
    return { principal, via: 'browser-session', sessionId: session.id, clientId: null };
  };
}
