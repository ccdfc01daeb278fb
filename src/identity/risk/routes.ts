import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import type { IdentityProtection } from './protection.js';

export interface RiskApiOptions {
  protection: IdentityProtection;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** a user name or id → the user's id (throws NotFound) */
  userId: (ref: string) => Promise<string>;
}

const Detection = Type.Object(
  {
    id: Type.String(),
    userId: Nullable(Type.String()),
    subject: Type.String(),
    kind: Type.String(),
    level: Type.String(),
    ip: Nullable(Type.String()),
    detail: Type.Object({}, { additionalProperties: true }),
    state: Type.String(),
    createdAt: Type.String(),
    resolvedAt: Nullable(Type.String()),
    resolvedBy: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

/** Identity protection's detections under /api/v1: list them, confirm or dismiss one (audited). */
export const riskApi: FastifyPluginAsync<RiskApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const tags = ['identity protection'];
  const security = [{ bearer: [] }];

  app.get<{ Querystring: { user?: string; state?: 'open' | 'confirmed' | 'dismissed' } }>(
    '/risk/detections',
    {
      schema: {
        tags,
        summary: 'Risk detections, newest first (optionally of one user, or in one state)',
        security,
        querystring: Type.Object(
          {
            user: Type.Optional(Type.String({ maxLength: 256 })),
            state: Type.Optional(
              Type.Union([Type.Literal('open'), Type.Literal('confirmed'), Type.Literal('dismissed')]),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Detection) }), ...problemResponses },
      },
    },
    async (req) => ({
      items: await opts.protection.list({
        ...(req.query.user ? { userId: await opts.userId(req.query.user) } : {}),
        ...(req.query.state ? { state: req.query.state } : {}),
      }),
    }),
  );

  for (const verdict of ['confirm', 'dismiss'] as const) {
    app.post<{ Params: { id: string } }>(
      `/risk/detections/:id/${verdict}`,
      {
        schema: {
          tags,
          summary:
            verdict === 'confirm'
              ? 'Confirm a detection: the account is compromised (user risk high until dismissed)'
              : 'Dismiss a detection: it no longer counts towards the user risk',
          security,
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
          response: { 200: Detection, ...problemResponses },
        },
      },
      async (req) =>
        opts.protection.resolve(
          opts.auditContext(req),
          req.params.id,
          verdict === 'confirm' ? 'confirmed' : 'dismissed',
        ),
    );
  }
};
