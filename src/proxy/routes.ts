import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { PrincipalRef } from '../access/assignments.js';
import type { AuditContext } from '../audit/actor.js';
import { problemResponses } from '../problem-schema.js';
import type { ProxyApps } from './apps.js';

export interface ProxyAppsApiOptions {
  apps: ProxyApps;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** resolves a group name (or id) to the directory's id; throws NotFound */
  resolveGroup: (ref: string) => Promise<PrincipalRef>;
}

export const ProxyAppSchema = Type.Object({
  name: Type.String(),
  upstream: Type.String({ description: 'where requests go, e.g. http://10.0.3.7:3000' }),
  url: Type.String({ description: 'the origin people open; the proxy routes by its host' }),
  groups: Type.Array(Type.String(), {
    description: 'groups that may use it; empty = nobody, unless openToAll',
  }),
  openToAll: Type.Boolean({
    description: 'while no group is assigned: every active user may use it (true) or nobody (false)',
  }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  createdBy: Type.String(),
});
const ProxyAppBody = Type.Object(
  {
    upstream: Type.String({ minLength: 1, maxLength: 2048 }),
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    groups: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 100 })),
    openToAll: Type.Optional(
      Type.Boolean({
        description:
          'open to every active user while no group is assigned; omitted: false for a new app, unchanged otherwise',
      }),
    ),
  },
  { additionalProperties: false },
);
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });

/** Applications behind the identity-aware proxy, under /api/v1/proxy/apps (admin). */
export const proxyAppsApi: FastifyPluginAsync<ProxyAppsApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['proxy'];

  app.get(
    '/proxy/apps',
    {
      schema: {
        tags,
        summary: 'List the applications the identity-aware proxy serves',
        security,
        response: { 200: Type.Object({ items: Type.Array(ProxyAppSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await opts.apps.list() }),
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/proxy/apps/:name',
    {
      schema: {
        tags,
        summary: 'Show one proxied application',
        security,
        params: NameParams,
        response: { 200: ProxyAppSchema, ...problemResponses },
      },
    },
    async (req) => opts.apps.get(req.params.name),
  );

  app.put<{ Params: Static<typeof NameParams>; Body: Static<typeof ProxyAppBody> }>(
    '/proxy/apps/:name',
    {
      schema: {
        tags,
        summary: 'Register an application (or replace its upstream, URL and groups)',
        security,
        params: NameParams,
        body: ProxyAppBody,
        response: { 200: ProxyAppSchema, 201: ProxyAppSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const groups = await Promise.all((req.body.groups ?? []).map((g) => opts.resolveGroup(g)));
      const { app: saved, created } = await opts.apps.set(opts.auditContext(req), req.params.name, {
        upstream: req.body.upstream,
        url: req.body.url,
        groups,
        ...(req.body.openToAll !== undefined ? { openToAll: req.body.openToAll } : {}),
      });
      return reply.code(created ? 201 : 200).send(saved);
    },
  );

  app.delete<{ Params: Static<typeof NameParams> }>(
    '/proxy/apps/:name',
    {
      schema: {
        tags,
        summary: 'Stop serving an application',
        security,
        params: NameParams,
        response: { 200: ProxyAppSchema, ...problemResponses },
      },
    },
    async (req) => opts.apps.remove(opts.auditContext(req), req.params.name),
  );
};
