import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import { problemResponses } from '../../problem-schema.js';
import { diffOf, stepLabel } from './diff.js';
import type { IdentityCenterPush } from './service.js';

export interface IdentityCenterApiOptions {
  push: IdentityCenterPush;
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const Target = Type.Object({
  endpoint: Type.String(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  updatedBy: Type.String(),
});

const Counts = (keys: string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])));
const Diff = Type.Object({
  summary: Type.Object({
    users: Counts(['create', 'update', 'delete']),
    groups: Counts(['create', 'update', 'delete']),
    members: Counts(['add', 'remove']),
  }),
  changes: Type.Array(
    Type.Object({
      action: Type.String(),
      kind: Type.String(),
      name: Type.String(),
      details: Type.Array(Type.String()),
    }),
  ),
});

/**
 * Admin API for the SCIM push to IAM Identity Center under /api/v1/identity-center/scim: the
 * endpoint and token, the dry-run diff, and an on-demand push that streams its progress as NDJSON.
 */
export const identityCenterApi: FastifyPluginAsync<IdentityCenterApiOptions> = async (app, opts) => {
  const { push } = opts;
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['identity-center'];

  app.get(
    '/identity-center/scim',
    {
      schema: {
        tags,
        summary: 'The IAM Identity Center SCIM endpoint Ferry pushes to (never its token)',
        security,
        response: { 200: Target, ...problemResponses },
      },
    },
    async () => push.targets.view(),
  );

  app.put<{ Body: { endpoint: string; token: string } }>(
    '/identity-center/scim',
    {
      schema: {
        tags,
        summary:
          'Set the SCIM endpoint and access token shown by IAM Identity Center (automatic provisioning)',
        security,
        body: Type.Object(
          {
            endpoint: Type.String({ minLength: 1, maxLength: 2048 }),
            token: Type.String({ minLength: 1, maxLength: 8192 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Target, ...problemResponses },
      },
    },
    async (req) => push.targets.set(opts.auditContext(req), req.body),
  );

  app.delete(
    '/identity-center/scim',
    {
      schema: {
        tags,
        summary: 'Stop pushing to IAM Identity Center',
        security,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await push.targets.remove(opts.auditContext(req));
      return reply.code(204).send();
    },
  );

  app.get(
    '/identity-center/scim/plan',
    {
      schema: {
        tags,
        summary: 'Dry run: what a push would create, update and delete',
        security,
        response: { 200: Diff, ...problemResponses },
      },
    },
    async () => diffOf(await push.plan()),
  );

  app.post(
    '/identity-center/scim/push',
    {
      schema: {
        tags,
        summary:
          'Push every user, group and membership now; the answer streams NDJSON progress lines, then a result line',
        security,
        produces: ['application/x-ndjson'],
      },
    },
    async (req, reply) => {
      await push.targets.view(); // 404 problem before the stream starts when nothing is configured
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      const line = (v: unknown) => out.write(`${JSON.stringify(v)}\n`);
      try {
        const result = await push.push(
          opts.auditContext(req),
          {},
          {
            onPlan: (plan) => line({ type: 'plan', total: plan.steps.length, ...diffOf(plan).summary }),
            onProgress: (p) =>
              line({ type: 'progress', done: p.done, total: p.total, step: stepLabel(p.step) }),
          },
        );
        line({ type: 'result', ...result });
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'identity center push failed');
        line({ type: 'error', detail: (err as Error).message });
      }
      out.end();
    },
  );
};
