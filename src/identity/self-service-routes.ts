import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import { problemResponses } from '../problem-schema.js';
import type { Caller } from './caller.js';
import type { SessionStore } from './sessions.js';

export interface SelfServiceApiOptions {
  sessions: SessionStore;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const MySession = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  amr: Type.Array(Type.String()),
  current: Type.Boolean({ description: 'the session this request came with' }),
});

/**
 * A person's own account under /api/v1/me (the web console's Account page): their sign-in sessions,
 * and signing one out, which also ends what was issued under it (as the account page's form does).
 */
export const selfServiceApi: FastifyPluginAsync<SelfServiceApiOptions> = async (app, opts) => {
  const tags = ['account'];
  const security = [{ bearer: [] }];
  const me = (req: FastifyRequest) => req.caller as Caller;

  app.get(
    '/me/sessions',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Your active sign-in sessions',
        security,
        response: { 200: Type.Object({ items: Type.Array(MySession) }), ...problemResponses },
      },
    },
    async (req) => {
      const caller = me(req);
      const list = await opts.sessions.listForUser(caller.principal.id);
      return {
        items: list.map((s) => ({
          id: s.id,
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          ip: s.ip,
          userAgent: s.userAgent,
          amr: s.amr,
          current: s.id === caller.sessionId,
        })),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/me/sessions/:id/revoke',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Sign out one of your sessions (what was issued under it ends too)',
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      // onlyUserId: another person's session id is "not found", never revoked.
      await opts.sessions.revoke(
        opts.auditContext(req),
        req.params.id,
        'signed out by the user',
        me(req).principal.id,
      );
      return reply.code(204).send();
    },
  );
};
