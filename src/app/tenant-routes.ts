import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import { auditContextOf } from '../identity/admin-auth.js';
import { problemResponses } from '../problem-schema.js';
import type { Services } from './services.js';
import { applyTenant } from './tenant.js';

/** POST /api/v1/tenant/apply: the declarative tenant file, applied or compared (dry run). */
export const tenantApi: FastifyPluginAsync<{
  services: Services;
  authenticate: preHandlerAsyncHookHandler;
}> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  app.post<{ Body: { document: unknown; dryRun?: boolean; prune?: boolean } }>(
    '/tenant/apply',
    {
      schema: {
        tags: ['tenant'],
        summary: 'Apply a tenant document (groups, AWS accounts and roles, assignments); idempotent',
        security: [{ bearer: [] }],
        body: Type.Object(
          {
            document: Type.Object({}, { additionalProperties: true }),
            dryRun: Type.Optional(Type.Boolean({ default: false })),
            prune: Type.Optional(
              Type.Boolean({ default: false, description: 'remove assignments the document does not list' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            dryRun: Type.Boolean(),
            identityCenter: Type.Optional(
              Type.Object({
                syncNeeded: Type.Boolean({
                  description: 'apply: POST /identity-center/permission-sets/apply next',
                }),
                problems: Type.Array(Type.Object({ name: Type.String(), error: Type.String() })),
                unmanaged: Type.Array(Type.String()),
              }),
            ),
            changes: Type.Array(
              Type.Object({
                action: Type.String(),
                kind: Type.String(),
                name: Type.String(),
                detail: Type.Optional(Type.String()),
              }),
            ),
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const dryRun = req.body.dryRun ?? false;
      let identityCenter:
        | { syncNeeded: boolean; problems: Array<{ name: string; error: string }>; unmanaged: string[] }
        | undefined;
      const changes = await applyTenant(opts.services, auditContextOf(req), req.body.document, {
        dryRun,
        prune: req.body.prune ?? false,
        onIdentityCenter: ({ plan, syncNeeded }) => {
          if (plan || syncNeeded)
            identityCenter = { syncNeeded, problems: plan?.problems ?? [], unmanaged: plan?.unmanaged ?? [] };
        },
      });
      return { dryRun, changes, ...(identityCenter ? { identityCenter } : {}) };
    },
  );
};
