import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Forbidden } from '../problem.js';
import { auditContextOf } from './admin-auth.js';
import {
  ApiTokenSchema,
  GroupSchema,
  ListQuery,
  NewGroupBody,
  NewUserBody,
  problemResponses,
  Ref,
  SessionSchema,
  UserPatchBody,
  UserSchema,
} from './api-schemas.js';
import { type ApiTokens, checkScopes } from './api-tokens.js';
import type { GroupDirectory } from './groups.js';
import type { TotpFactors } from './mfa.js';
import type { SessionStore } from './sessions.js';
import type { UserDirectory } from './users.js';

export interface DirectoryApiOptions {
  users: UserDirectory;
  groups: GroupDirectory;
  sessions: SessionStore;
  totp: TotpFactors;
  apiTokens: ApiTokens;
  /** the admin guard (app/admin-access.ts): users:read/users:write unless a route declares otherwise */
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** every permission a token may carry (access/admin-roles.ts PERMISSIONS) */
  permissions: readonly string[];
  /** the permissions whoever makes this request holds: a new token may carry no more */
  permissionsOf: (req: FastifyRequest) => Promise<string[]>;
  /**
   * Whom a new token stays bound to and the latest it may end (docs/decisions/0041): no later than the
   * PIM activation (or parent token) its maker holds `wanted` through.
   */
  tokenBounds?: (
    req: FastifyRequest,
    wanted: readonly string[],
  ) => Promise<{ creatorUserId: string | null; expiresAt: string | null }>;
  /** audits a token refused for asking more than its maker holds (rate-limited; never throws) */
  onTokenRefused?: (req: FastifyRequest, beyond: string[], detail: string) => Promise<void>;
  /**
   * Called before a membership changes: when the group carries an admin role, changing who is in it
   * grants or removes that role, so it asks for admin-roles:write (throws a 403 problem otherwise).
   */
  authorizeMembership: (req: FastifyRequest, reply: FastifyReply, groupRef: string) => Promise<void>;
}

const page = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), total: Type.Integer() });

/** The directory admin API under /api/v1: users, groups, memberships, sessions, MFA, API tokens. */
export const directoryApi: FastifyPluginAsync<DirectoryApiOptions> = async (app, opts) => {
  const { users, groups, sessions, totp, apiTokens } = opts;
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];

  app.get<{ Querystring: ListQuery & { active?: boolean } }>(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'List users',
        security,
        querystring: Type.Intersect([ListQuery, Type.Object({ active: Type.Optional(Type.Boolean()) })]),
        response: { 200: page(UserSchema), ...problemResponses },
      },
    },
    async (req) =>
      users.list({
        query: req.query.q,
        active: req.query.active,
        limit: req.query.limit,
        offset: req.query.offset,
      }),
  );

  app.post<{ Body: NewUserBody }>(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user',
        security,
        body: NewUserBody,
        response: { 201: UserSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const user = await users.create(auditContextOf(req), req.body);
      return reply.code(201).header('location', `/api/v1/users/${user.id}`).send(user);
    },
  );

  app.get<{ Params: Ref }>(
    '/users/:ref',
    {
      schema: {
        tags: ['users'],
        summary: 'Get a user by id or userName, with group names',
        security,
        params: Ref,
        response: { 200: UserSchema, ...problemResponses },
      },
    },
    async (req) => {
      const user = await users.get(req.params.ref);
      return { ...user, groups: await groups.namesOf(user.id) };
    },
  );

  app.patch<{ Params: Ref; Body: UserPatchBody }>(
    '/users/:ref',
    {
      schema: {
        tags: ['users'],
        summary: 'Change a user; active=false disables the user and ends their sessions at once',
        security,
        params: Ref,
        body: UserPatchBody,
        response: { 200: UserSchema, ...problemResponses },
      },
    },
    async (req) => {
      const { password, ...changes } = req.body;
      const ctx = auditContextOf(req);
      if (password !== undefined) await users.setPassword(ctx, req.params.ref, password);
      return users.update(ctx, req.params.ref, changes);
    },
  );

  app.delete<{ Params: Ref }>(
    '/users/:ref',
    {
      schema: {
        tags: ['users'],
        summary: 'Delete a user',
        security,
        params: Ref,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await users.delete(auditContextOf(req), req.params.ref);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Ref }>(
    '/users/:ref/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: "A user's live sessions",
        security,
        params: Ref,
        response: { 200: Type.Object({ items: Type.Array(SessionSchema) }), ...problemResponses },
      },
    },
    async (req) => ({ items: await sessions.listForUser((await users.get(req.params.ref)).id) }),
  );

  app.delete<{ Params: Ref }>(
    '/users/:ref/mfa',
    {
      config: { permission: 'mfa:reset' },
      schema: {
        tags: ['users'],
        summary: "Remove a user's authenticators (lost device); they enroll again at next sign-in",
        security,
        params: Ref,
        response: { 200: Type.Object({ removed: Type.Integer() }), ...problemResponses },
      },
    },
    async (req) => {
      const user = await users.get(req.params.ref);
      return { removed: await totp.reset(auditContextOf(req), user) };
    },
  );

  app.put<{ Params: Ref; Body: { required: boolean } }>(
    '/users/:ref/mfa/registration-required',
    {
      config: { permission: 'mfa:reset' },
      schema: {
        tags: ['users'],
        summary: 'Require (or stop requiring) the user to register MFA at their next sign-in',
        security,
        params: Ref,
        body: Type.Object({ required: Type.Boolean() }, { additionalProperties: false }),
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await users.requireMfaRegistration(auditContextOf(req), req.params.ref, req.body.required);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { id: string }; Querystring: { endAwsSessions?: boolean } }>(
    '/sessions/:id',
    {
      schema: {
        tags: ['sessions'],
        summary:
          'Revoke a session, with the OpenID grants and tokens issued under it; every instance refuses them from now on. endAwsSessions=true also ends the person’s live AWS sessions',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        querystring: Type.Object(
          { endAwsSessions: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: SessionSchema, ...problemResponses },
      },
    },
    async (req) =>
      sessions.revoke(auditContextOf(req), req.params.id, 'revoked by an administrator', undefined, {
        endAwsSessions: req.query.endAwsSessions === true,
      }),
  );

  app.get<{ Querystring: ListQuery }>(
    '/groups',
    {
      config: { permission: 'groups:read' },
      schema: {
        tags: ['groups'],
        summary: 'List groups',
        security,
        querystring: ListQuery,
        response: { 200: page(GroupSchema), ...problemResponses },
      },
    },
    async (req) => groups.list({ query: req.query.q, limit: req.query.limit, offset: req.query.offset }),
  );

  app.post<{ Body: NewGroupBody }>(
    '/groups',
    {
      config: { permission: 'groups:write' },
      schema: {
        tags: ['groups'],
        summary: 'Create a group',
        security,
        body: NewGroupBody,
        response: { 201: GroupSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const group = await groups.create(auditContextOf(req), req.body);
      return reply.code(201).header('location', `/api/v1/groups/${group.id}`).send(group);
    },
  );

  app.get<{ Params: Ref }>(
    '/groups/:ref',
    {
      config: { permission: 'groups:read' },
      schema: {
        tags: ['groups'],
        summary: 'Get a group by id or name, with its members',
        security,
        params: Ref,
        response: { 200: GroupSchema, ...problemResponses },
      },
    },
    async (req) => groups.get(req.params.ref),
  );

  app.delete<{ Params: Ref }>(
    '/groups/:ref',
    {
      config: { permission: 'groups:write' },
      schema: {
        tags: ['groups'],
        summary: 'Delete a group',
        security,
        params: Ref,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await groups.delete(auditContextOf(req), req.params.ref);
      return reply.code(204).send();
    },
  );

  const MemberParams = Type.Object({
    ref: Type.String({ maxLength: 256 }),
    user: Type.String({ maxLength: 256 }),
  });
  const membership =
    (member: boolean) =>
    async (req: FastifyRequest<{ Params: { ref: string; user: string } }>, reply: FastifyReply) => {
      await opts.authorizeMembership(req, reply, req.params.ref);
      return {
        changed: await groups.setMembership(auditContextOf(req), req.params.ref, req.params.user, member),
      };
    };
  const membershipResponse = { 200: Type.Object({ changed: Type.Boolean() }), ...problemResponses };

  app.put<{ Params: { ref: string; user: string } }>(
    '/groups/:ref/members/:user',
    {
      config: { permission: 'groups:write' },
      schema: {
        tags: ['groups'],
        summary: 'Add a member (idempotent)',
        security,
        params: MemberParams,
        response: membershipResponse,
      },
    },
    membership(true),
  );

  app.delete<{ Params: { ref: string; user: string } }>(
    '/groups/:ref/members/:user',
    {
      config: { permission: 'groups:write' },
      schema: {
        tags: ['groups'],
        summary: 'Remove a member (idempotent)',
        security,
        params: MemberParams,
        response: membershipResponse,
      },
    },
    membership(false),
  );

  app.get(
    '/tokens',
    {
      config: { permission: 'tokens:read' },
      schema: {
        tags: ['tokens'],
        summary: 'List admin API tokens (never their values)',
        security,
        response: { 200: Type.Object({ items: Type.Array(ApiTokenSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await apiTokens.list() }),
  );

  app.post<{ Body: { name: string; expiresAt?: string; scopes?: string[] } }>(
    '/tokens',
    {
      config: { permission: 'tokens:write' },
      schema: {
        tags: ['tokens'],
        summary: 'Create an admin API token; its value is in this response only',
        security,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64 }),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
            scopes: Type.Optional(
              Type.Array(Type.String({ maxLength: 64 }), {
                minItems: 1,
                maxItems: 64,
                description: 'permissions the token carries (`*` = all, the default); no more than your own',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ token: Type.String(), apiToken: ApiTokenSchema }),
          ...problemResponses,
        },
      },
    },
    async (req, reply) => {
      const expiresAt = req.body.expiresAt ? new Date(req.body.expiresAt).toISOString() : null;
      const scopes = checkScopes(req.body.scopes ?? ['*'], opts.permissions);
      // A token may carry only what its maker holds: a scoped token cannot mint a broader one.
      const held = await opts.permissionsOf(req);
      const all = held.includes('*');
      const wanted = scopes.includes('*') ? [...opts.permissions] : scopes;
      const beyond = all ? [] : wanted.filter((s) => !held.includes(s));
      if (beyond.length > 0) {
        const detail = `a token cannot carry permissions you do not hold: ${beyond.join(', ')}`;
        await opts.onTokenRefused?.(req, beyond, detail);
        throw new Forbidden(detail);
      }
      // ...nor outlive the grant it holds them through (a PIM activation, the token making it).
      const bounds = (await opts.tokenBounds?.(req, wanted)) ?? { creatorUserId: null, expiresAt: null };
      const capped =
        bounds.expiresAt !== null && (expiresAt === null || bounds.expiresAt < expiresAt)
          ? bounds.expiresAt
          : expiresAt;
      return reply.code(201).send(
        await apiTokens.create(auditContextOf(req), {
          name: req.body.name,
          expiresAt: capped,
          scopes,
          creatorUserId: bounds.creatorUserId,
        }),
      );
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      config: { permission: 'tokens:write' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an admin API token',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: ApiTokenSchema, ...problemResponses },
      },
    },
    async (req) => apiTokens.revoke(auditContextOf(req), req.params.id),
  );
};
