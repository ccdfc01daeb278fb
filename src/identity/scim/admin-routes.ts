import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
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
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
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

  app.post<{ Body: { name: string } }>(
    '/scim/tokens',
    {
      schema: {
        tags: ['scim'],
        summary: 'Create a SCIM provisioning connection; its bearer token is in this response only',
        security,
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ token: Type.String(), connection: ConnectionSchema }),
          ...problemResponses,
        },
      },
    },
    async (req, reply) => reply.code(201).send(await connections.create(auditContextOf(req), req.body)),
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
