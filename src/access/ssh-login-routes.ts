import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import { Nullable } from '../nullable-schema.js';
import { problemResponses } from '../problem-schema.js';
import type { PrincipalRef } from './assignments.js';
import type { SshLogins } from './ssh-logins.js';

export interface SshLoginsApiOptions {
  sshLogins: SshLogins;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** resolves a group name (or id) to the directory's id; throws NotFound */
  resolveGroup: (ref: string) => Promise<PrincipalRef>;
}

const SshLoginSchema = Type.Object({
  id: Type.String(),
  groupId: Type.String(),
  groupName: Type.Optional(Type.String()),
  hosts: Type.String(),
  logins: Type.Array(Type.String()),
  portForwarding: Type.Boolean(),
  agentForwarding: Type.Boolean(),
  maxDuration: Nullable(Type.Integer()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  createdBy: Type.String(),
});
const SshLoginBody = Type.Object(
  {
    group: Type.String({ minLength: 1, maxLength: 256, description: 'group name or id' }),
    hosts: Type.String({ minLength: 1, maxLength: 253, description: 'host glob: *.dev.internal, * for all' }),
    logins: Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 32 }),
    portForwarding: Type.Optional(Type.Boolean()),
    agentForwarding: Type.Optional(Type.Boolean()),
    maxDuration: Type.Optional(Nullable(Type.Integer({ description: 'seconds' }))),
  },
  { additionalProperties: false },
);

/** Group → Linux login mappings for SSH under /api/v1/ssh/logins (admin). */
export const sshLoginsApi: FastifyPluginAsync<SshLoginsApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['ssh'];

  app.get<{ Querystring: { group?: string } }>(
    '/ssh/logins',
    {
      schema: {
        tags,
        summary: 'List SSH login mappings, optionally of one group',
        security,
        querystring: Type.Object(
          { group: Type.Optional(Type.String({ maxLength: 256 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(SshLoginSchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const groupId = req.query.group ? (await opts.resolveGroup(req.query.group)).id : undefined;
      return { items: await opts.sshLogins.list({ groupId }) };
    },
  );

  app.post<{ Body: Static<typeof SshLoginBody> }>(
    '/ssh/logins',
    {
      schema: {
        tags,
        summary: 'Let a group log in as these Linux logins on matching hosts (replaces the same group+hosts)',
        security,
        body: SshLoginBody,
        response: { 200: SshLoginSchema, 201: SshLoginSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const { group, ...input } = req.body;
      const { login, created } = await opts.sshLogins.set(
        opts.auditContext(req),
        await opts.resolveGroup(group),
        input,
      );
      return reply.code(created ? 201 : 200).send(login);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/ssh/logins/:id',
    {
      schema: {
        tags,
        summary: 'Remove an SSH login mapping',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: SshLoginSchema, ...problemResponses },
      },
    },
    async (req) => opts.sshLogins.remove(opts.auditContext(req), req.params.id),
  );
};
