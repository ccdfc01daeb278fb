import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import { InvalidInput } from '../errors.js';
import { Nullable } from '../nullable-schema.js';
import { problemResponses } from '../problem-schema.js';
import {
  ADMIN_ACCOUNT,
  type AdminRoleAssignment,
  type AdminRoleAssignments,
  type Permission,
} from './admin-roles.js';
import type { AssigneeType, Assignment, Assignments, PrincipalRef } from './assignments.js';
import type { AwsAccounts } from './aws-accounts.js';

export interface AccessApiOptions {
  accounts: AwsAccounts;
  assignments: Assignments;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** resolves a group or user name (or id) to the directory's id; throws NotFound */
  resolvePrincipal: (type: AssigneeType, ref: string) => Promise<PrincipalRef>;
  /** standing admin roles: assignments on account `ferry` (role: helpdesk, ferry-administrator, …) */
  adminRoles: AdminRoleAssignments;
  /** a user's groups, for the assignments they have through them */
  groupsOf: (userId: string) => Promise<Array<{ id: string; name: string }>>;
  /** a second permission some inputs need (admin-roles:write to grant an admin role) */
  requirePermission: (req: FastifyRequest, reply: FastifyReply, permission: Permission) => Promise<void>;
}

/** An admin role assignment in the shape of any other (account `ferry`, the role's name). */
const asAssignment = (a: AdminRoleAssignment): Assignment => ({
  id: a.id,
  principalType: a.principalType,
  principalId: a.principalId,
  accountId: ADMIN_ACCOUNT,
  roleName: a.role,
  target: a.target,
  createdAt: a.createdAt,
  createdBy: a.createdBy,
});

const Account = Type.Object({
  id: Type.String(),
  alias: Type.String(),
  partition: Type.String(),
  samlProviderName: Type.String(),
  samlProviderArn: Type.String(),
  signinEndpoint: Type.String(),
  endpointUrl: Nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const Role = Type.Object({
  accountId: Type.String(),
  name: Type.String(),
  path: Type.String(),
  arn: Type.String(),
  maxSessionDuration: Type.Integer(),
  description: Nullable(Type.String()),
});
const AssignmentSchema = Type.Object({
  id: Type.String(),
  principalType: Type.String(),
  principalId: Type.String(),
  principalName: Type.Optional(Type.String()),
  accountId: Type.String(),
  roleName: Type.String(),
  target: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  via: Type.Optional(
    Type.Union([Type.Literal('direct'), Type.Literal('group')], {
      description: 'with ?user=: the person holds it directly or through viaGroup',
    }),
  ),
  viaGroup: Type.Optional(Type.String()),
});
const AccountBody = Type.Object(
  {
    alias: Type.String({ minLength: 1, maxLength: 63 }),
    partition: Type.Optional(
      Type.Union([Type.Literal('aws'), Type.Literal('aws-us-gov'), Type.Literal('aws-cn')]),
    ),
    samlProviderName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    endpointUrl: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
  },
  { additionalProperties: false },
);
const RoleBody = Type.Object(
  {
    path: Type.Optional(Type.String({ maxLength: 512 })),
    maxSessionDuration: Type.Optional(
      Type.Integer({ minimum: 3600, maximum: 43200, description: 'seconds' }),
    ),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
  },
  { additionalProperties: false },
);
const AssignmentBody = Type.Object(
  {
    group: Type.Optional(Type.String({ maxLength: 256 })),
    user: Type.Optional(Type.String({ maxLength: 256 })),
    workload: Type.Optional(Type.String({ maxLength: 256, description: 'a workload client id or name' })),
    account: Type.String({
      maxLength: 63,
      description: 'account id or alias; `ferry` for an admin role (role: helpdesk, ferry-administrator, …)',
    }),
    role: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);
const AccountParams = Type.Object({ account: Type.String({ maxLength: 63 }) });
const RoleParams = Type.Object({
  account: Type.String({ maxLength: 63 }),
  role: Type.String({ maxLength: 64 }),
});

/** AWS accounts, their roles, and assignments under /api/v1. */
export const accessApi: FastifyPluginAsync<AccessApiOptions> = async (app, opts) => {
  const { accounts, assignments } = opts;
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['aws'];

  app.get(
    '/aws/accounts',
    {
      schema: {
        tags,
        summary: 'List AWS accounts',
        security,
        response: { 200: Type.Object({ items: Type.Array(Account) }) },
      },
    },
    async () => ({ items: await accounts.list() }),
  );

  app.put<{ Params: { account: string }; Body: Static<typeof AccountBody> }>(
    '/aws/accounts/:account',
    {
      schema: {
        tags,
        summary: 'Register or update an AWS account (12-digit id in the path)',
        security,
        params: AccountParams,
        body: AccountBody,
        response: { 200: Account, 201: Account, ...problemResponses },
      },
    },
    async (req, reply) => {
      const { account, changed } = await accounts.upsert(opts.auditContext(req), {
        id: req.params.account,
        ...req.body,
      });
      return reply.code(changed && account.createdAt === account.updatedAt ? 201 : 200).send(account);
    },
  );

  app.get<{ Params: { account: string } }>(
    '/aws/accounts/:account',
    {
      schema: {
        tags,
        summary: 'An AWS account (by id or alias) with its roles',
        security,
        params: AccountParams,
        response: {
          200: Type.Intersect([Account, Type.Object({ roles: Type.Array(Role) })]),
          ...problemResponses,
        },
      },
    },
    async (req) => ({
      ...(await accounts.get(req.params.account)),
      roles: await accounts.roles(req.params.account),
    }),
  );

  app.delete<{ Params: { account: string } }>(
    '/aws/accounts/:account',
    {
      schema: {
        tags,
        summary: 'Remove an AWS account, its roles and assignments',
        security,
        params: AccountParams,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await accounts.remove(opts.auditContext(req), req.params.account);
      return reply.code(204).send();
    },
  );

  app.put<{ Params: { account: string; role: string }; Body: Static<typeof RoleBody> }>(
    '/aws/accounts/:account/roles/:role',
    {
      schema: {
        tags,
        summary: "Register or update one of the account's IAM roles",
        security,
        params: RoleParams,
        body: RoleBody,
        response: { 200: Role, ...problemResponses },
      },
    },
    async (req) =>
      (
        await accounts.upsertRole(opts.auditContext(req), req.params.account, {
          name: req.params.role,
          ...req.body,
        })
      ).role,
  );

  app.delete<{ Params: { account: string; role: string } }>(
    '/aws/accounts/:account/roles/:role',
    {
      schema: {
        tags,
        summary: 'Remove a role and its assignments',
        security,
        params: RoleParams,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await accounts.removeRole(opts.auditContext(req), req.params.account, req.params.role);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { group?: string; user?: string; workload?: string; account?: string } }>(
    '/assignments',
    {
      schema: {
        tags,
        summary:
          "List assignments (AWS roles, and admin roles on account `ferry`), optionally of one group, user or account; a user's include their groups' (marked via: group)",
        security,
        querystring: Type.Object(
          {
            group: Type.Optional(Type.String({ maxLength: 256 })),
            user: Type.Optional(Type.String({ maxLength: 256 })),
            workload: Type.Optional(Type.String({ maxLength: 256 })),
            account: Type.Optional(Type.String({ maxLength: 63 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(AssignmentSchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const admin = q.account === ADMIN_ACCOUNT;
      const accountId = q.account && !admin ? (await accounts.get(q.account)).id : undefined;
      if (q.user) {
        // A person's assignments are theirs and their groups': list both, saying which is which.
        const user = await opts.resolvePrincipal('user', q.user);
        const groups = await opts.groupsOf(user.id);
        const groupName = new Map(groups.map((g) => [g.id, g.name]));
        const ids = groups.map((g) => g.id);
        const all = [
          ...(admin ? [] : await assignments.forPrincipal(user.id, ids)),
          ...(accountId ? [] : (await opts.adminRoles.forPrincipal(user.id, ids)).map(asAssignment)),
        ].filter((a) => !accountId || a.accountId === accountId);
        return {
          items: all.map((a) =>
            a.principalType === 'group'
              ? { ...a, via: 'group' as const, viaGroup: groupName.get(a.principalId) ?? a.principalId }
              : { ...a, via: 'direct' as const, principalName: user.name },
          ),
        };
      }
      const principal = q.group
        ? await opts.resolvePrincipal('group', q.group)
        : q.workload
          ? await opts.resolvePrincipal('workload', q.workload)
          : undefined;
      const aws = admin ? [] : await assignments.list({ principal, accountId });
      const adminRoles =
        accountId || principal?.type === 'workload'
          ? []
          : (
              await opts.adminRoles.list(
                principal
                  ? { principal: { type: principal.type as 'group' | 'user', id: principal.id } }
                  : {},
              )
            ).map(asAssignment);
      return { items: [...aws, ...adminRoles] };
    },
  );

  app.post<{ Body: Static<typeof AssignmentBody> }>(
    '/assignments',
    {
      schema: {
        tags,
        summary: 'Assign an AWS role to a group, a user or a workload identity (idempotent)',
        security,
        body: AssignmentBody,
        response: { 200: AssignmentSchema, 201: AssignmentSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const { group, user, workload } = req.body;
      const given = [group, user, workload].filter((v) => v !== undefined).length;
      if (given !== 1) throw new InvalidInput('give exactly one of group, user or workload', 'group');
      const principal = group
        ? await opts.resolvePrincipal('group', group)
        : user
          ? await opts.resolvePrincipal('user', user)
          : await opts.resolvePrincipal('workload', workload!);
      if (req.body.account === ADMIN_ACCOUNT) {
        await opts.requirePermission(req, reply, 'admin-roles:write');
        if (principal.type === 'workload')
          throw new InvalidInput('workloads hold no admin roles: give them a scoped API token', 'workload');
        const role = req.body.role.startsWith('admin:') ? req.body.role.slice(6) : req.body.role;
        const r = await opts.adminRoles.add(
          opts.auditContext(req),
          { type: principal.type, id: principal.id, name: principal.name },
          role,
        );
        return reply
          .code(r.created ? 201 : 200)
          .send({ ...asAssignment(r.assignment), principalName: principal.name });
      }
      const { assignment, created } = await assignments.add(
        opts.auditContext(req),
        principal,
        req.body.account,
        req.body.role,
      );
      return reply.code(created ? 201 : 200).send({ ...assignment, principalName: principal.name });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/assignments/:id',
    {
      schema: {
        tags,
        summary: 'Remove an assignment',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: AssignmentSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      if (await opts.adminRoles.get(req.params.id)) {
        await opts.requirePermission(req, reply, 'admin-roles:write');
        const removed = await opts.adminRoles.remove(opts.auditContext(req), req.params.id);
        if (removed) return asAssignment(removed);
      }
      return assignments.remove(opts.auditContext(req), req.params.id);
    },
  );
};
