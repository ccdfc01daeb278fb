import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Actor, AuditContext } from '../audit/actor.js';
import { Unauthorized } from '../problem.js';
import type { ApiTokens } from './api-tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** who is calling, set by authentication hooks; anonymous until then */
    actor: Actor;
  }
}

/** The audit context of a request: its actor, source address and request id. */
export function auditContextOf(req: FastifyRequest): AuditContext {
  return { actor: req.actor ?? { type: 'anonymous' }, ip: req.ip, requestId: req.id };
}

/** An onRequest hook (before the body is read) that admits only requests with a live admin API token (`Authorization: Bearer …`). */
export function requireAdminToken(tokens: ApiTokens) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const token = m ? await tokens.authenticate(m[1]!) : null;
    if (!token) {
      reply.header('www-authenticate', m ? 'Bearer error="invalid_token"' : 'Bearer');
      throw new Unauthorized(m ? 'the bearer token is invalid, expired or revoked' : undefined);
    }
    req.actor = { type: 'api-token', id: token.id, name: token.name };
  };
}
