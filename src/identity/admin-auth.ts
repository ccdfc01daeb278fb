import type { FastifyRequest } from 'fastify';
import type { Actor, AuditContext } from '../audit/actor.js';

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
