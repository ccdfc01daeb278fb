import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import { auditContextOf } from '../admin-auth.js';
import type { ScimConnections } from './connections.js';

export interface ScimAdminApiOptions {
  connections: ScimConnections;
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

const ConnectionSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  lastUsedAt: Nullable(Type.String()),
  revokedAt: Nullable(Type.String()),
  passwordWrites: Type.Boolean(),
});

/** Admin API for SCIM provisioning connections (one bearer token each) under /api/v1/scim/tokens. */
export const scimAdminApi: FastifyPluginAsync<ScimAdminApiOptions> = async (app, opts) => {
  const { connections } = opts;
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];

  app.get(
    '/scim/tokens',
    {
      schema: {
        tags: ['scim'],
        summary: 'List SCIM provisioning connections (never their tokens)',
        security,
        response: { 200: Type.Object({ items: Type.Array(ConnectionSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await connections.list() }),
  );

  app.post<{ Body: { name: string; allowPasswords?: boolean } }>(
    '/scim/tokens',
    {
      schema: {
        tags: ['scim'],
        summary: 'Create a SCIM provisioning connection; its bearer token is in this response only',
        security,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64 }),
            allowPasswords: Type.Optional(
              Type.Boolean({ description: 'let this connection set passwords of the users it provisions' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ token: Type.String(), connection: ConnectionSchema }),
          ...problemResponses,
        },
      },
    },
    async (req, reply) =>
      reply.code(201).send(
        await connections.create(auditContextOf(req), {
          name: req.body.name,
          passwordWrites: req.body.allowPasswords === true,
        }),
      ),
  );

  app.post<{ Params: { id: string }; Body: { user?: string; group?: string } }>(
    '/scim/tokens/:id/hand-over',
    {
      schema: {
        tags: ['scim'],
        summary:
          'Hand an existing user or group to a SCIM connection, which may then manage it (never its password)',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        body: Type.Union([
          Type.Object(
            { user: Type.String({ minLength: 1, maxLength: 256 }) },
            { additionalProperties: false },
          ),
          Type.Object(
            { group: Type.String({ minLength: 1, maxLength: 256 }) },
            { additionalProperties: false },
          ),
        ]),
        response: {
          200: Type.Object({
            kind: Type.Union([Type.Literal('user'), Type.Literal('group')]),
            id: Type.String(),
            name: Type.String(),
            connection: ConnectionSchema,
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const { user, group } = req.body;
      return user !== undefined
        ? connections.handOver(auditContextOf(req), req.params.id, 'user', user)
        : connections.handOver(auditContextOf(req), req.params.id, 'group', group!);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/scim/tokens/:id',
    {
      schema: {
        tags: ['scim'],
        summary: 'Revoke a SCIM provisioning connection: its token stops working at once',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: ConnectionSchema, ...problemResponses },
      },
    },
    async (req) => connections.revoke(auditContextOf(req), req.params.id),
  );
};
