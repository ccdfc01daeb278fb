import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AwsAccounts } from '../../access/aws-accounts.js';
import type { AccessDecider } from '../../access/decide.js';
import type { AwsOrganization } from '../../access/organization.js';
import type { PermissionSets } from '../../access/permission-sets.js';
import type { Signals } from '../../access/principal.js';
import type { AuditContext } from '../../audit/actor.js';
import { InvalidInput } from '../../errors.js';
import type { Caller } from '../../identity/caller.js';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import { aliasOf, discoverOrganization } from '../organizations.js';
import type { PermissionSetSync } from './permission-set-sync.js';
import type { IdentityCenterConnection } from './sso-admin.js';

export interface PermissionSetApiOptions {
  permissionSets: PermissionSets;
  sync: PermissionSetSync;
  organization: AwsOrganization;
  accounts: AwsAccounts;
  access: AccessDecider;
  connection: IdentityCenterConnection;
  /** what `ferry aws config` writes for permission sets (config identityCenter.cliProfiles) */
  cliProfiles?: 'sso' | 'ferry';
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  authenticateCaller: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  signals: (req: FastifyRequest, caller: Caller) => Signals;
  auditContext: (req: FastifyRequest) => AuditContext;
  resolvePrincipal: (
    type: 'group' | 'user',
    ref: string,
  ) => Promise<{ type: 'group' | 'user'; id: string; name: string }>;
}

const PolicyRef = Type.Object({ name: Type.String(), path: Type.String() }, { additionalProperties: false });
export const PermissionSetSchema = Type.Object({
  name: Type.String(),
  description: Nullable(Type.String()),
  sessionDuration: Type.String({ description: 'ISO-8601, PT1H..PT12H' }),
  relayState: Nullable(Type.String()),
  managedPolicies: Type.Array(Type.String()),
  customerManagedPolicies: Type.Array(PolicyRef),
  inlinePolicy: Nullable(Type.String()),
  permissionsBoundary: Type.Union([
    Type.Object({ managedPolicyArn: Type.String() }, { additionalProperties: false }),
    Type.Object({ customerManagedPolicy: PolicyRef }, { additionalProperties: false }),
    Type.Null(),
  ]),
});
export type PermissionSetView = Static<typeof PermissionSetSchema>;

const PermissionSetBody = Type.Object(
  {
    description: Type.Optional(Nullable(Type.String())),
    sessionDuration: Type.Optional(Type.Union([Type.String(), Type.Integer()])),
    relayState: Type.Optional(Nullable(Type.String())),
    managedPolicies: Type.Optional(Type.Array(Type.String())),
    customerManagedPolicies: Type.Optional(
      Type.Array(
        Type.Object(
          { name: Type.String(), path: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
      ),
    ),
    inlinePolicy: Type.Optional(
      Type.Union([Type.String(), Type.Object({}, { additionalProperties: true }), Type.Null()]),
    ),
    permissionsBoundary: Type.Optional(
      Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    ),
  },
  { additionalProperties: false },
);

const AssignmentSchema = Type.Object({
  id: Type.String(),
  principalType: Type.String(),
  principalId: Type.String(),
  scopeType: Type.String(),
  scopeId: Type.String(),
  permissionSet: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
});

const Step = Type.Object({
  action: Type.String(),
  kind: Type.String(),
  name: Type.String(),
  details: Type.Array(Type.String()),
  drift: Type.Boolean(),
});
const PlanSchema = Type.Object({
  instanceArn: Type.String(),
  startUrl: Type.String(),
  steps: Type.Array(Step),
  problems: Type.Array(Type.Object({ name: Type.String(), error: Type.String() })),
  unmanaged: Type.Array(Type.String()),
});

export const PermissionSetEntitlement = Type.Object({
  accountId: Type.String(),
  accountAlias: Type.String(),
  permissionSet: Type.String(),
  target: Type.String(),
  maxDurationSeconds: Type.Integer(),
  startUrl: Type.String(),
  ssoRegion: Type.String(),
  profile: Type.String(),
});
export type PermissionSetEntitlementView = Static<typeof PermissionSetEntitlement>;

/**
 * IAM Identity Center permission sets and account assignments as code (admin), the sync that makes
 * Identity Center match them (plan = dry run and drift; apply streams NDJSON progress), `ferry aws
 * discover`, and a person's own permission sets for `ferry aws config`.
 */
export const permissionSetApi: FastifyPluginAsync<PermissionSetApiOptions> = async (app, opts) => {
  const { permissionSets, sync } = opts;
  const security = [{ bearer: [] }];
  const tags = ['identity-center'];
  const admin = { onRequest: opts.authenticate };

  app.get(
    '/identity-center/permission-sets',
    {
      ...admin,
      schema: {
        tags,
        summary: 'Declared permission sets',
        security,
        response: { 200: Type.Object({ items: Type.Array(PermissionSetSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await permissionSets.list() }),
  );
  app.put<{ Params: { name: string }; Body: Static<typeof PermissionSetBody> }>(
    '/identity-center/permission-sets/:name',
    {
      ...admin,
      schema: {
        tags,
        summary:
          "Create or replace a permission set (checked against Identity Center's rules; applied by the sync)",
        security,
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        body: PermissionSetBody,
        response: {
          200: Type.Object({ permissionSet: PermissionSetSchema, changed: Type.Boolean() }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const { spec, changed } = await permissionSets.put(opts.auditContext(req), {
        ...(req.body as object),
        name: req.params.name,
      } as Parameters<PermissionSets['put']>[1]);
      return { permissionSet: spec, changed };
    },
  );
  app.delete<{ Params: { name: string } }>(
    '/identity-center/permission-sets/:name',
    {
      ...admin,
      schema: {
        tags,
        summary: 'Remove a permission set and its assignments',
        security,
        params: Type.Object({ name: Type.String() }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await permissionSets.remove(opts.auditContext(req), req.params.name);
      return reply.code(204).send();
    },
  );
  app.get(
    '/identity-center/permission-set-assignments',
    {
      ...admin,
      schema: {
        tags,
        summary: 'Who is assigned which permission set where',
        security,
        response: { 200: Type.Object({ items: Type.Array(AssignmentSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await permissionSets.assignments() }),
  );
  app.post<{ Body: { group?: string; user?: string; account?: string; ou?: string; permissionSet: string } }>(
    '/identity-center/permission-set-assignments',
    {
      ...admin,
      schema: {
        tags,
        summary:
          'Assign a permission set to a group or user in an account or every account of an OU; idempotent',
        security,
        body: Type.Object(
          {
            group: Type.Optional(Type.String({ minLength: 1 })),
            user: Type.Optional(Type.String({ minLength: 1 })),
            account: Type.Optional(Type.String({ minLength: 1 })),
            ou: Type.Optional(
              Type.String({ minLength: 1, description: 'ou-…, r-… or a path such as /Root/Workloads' }),
            ),
            permissionSet: Type.String({ minLength: 1 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ assignment: AssignmentSchema, created: Type.Boolean() }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const b = req.body;
      if ((b.group === undefined) === (b.user === undefined))
        throw new InvalidInput('give exactly one of group or user', 'group');
      if ((b.account === undefined) === (b.ou === undefined))
        throw new InvalidInput('give exactly one of account or ou', 'account');
      const principal = await opts.resolvePrincipal(
        b.group !== undefined ? 'group' : 'user',
        (b.group ?? b.user)!,
      );
      return permissionSets.assign(opts.auditContext(req), principal, (b.account ?? b.ou)!, b.permissionSet);
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/identity-center/permission-set-assignments/:id',
    {
      ...admin,
      schema: {
        tags,
        summary: 'Remove a permission set assignment',
        security,
        params: Type.Object({ id: Type.String() }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await permissionSets.unassign(opts.auditContext(req), req.params.id);
      return reply.code(204).send();
    },
  );
  app.get(
    '/identity-center/permission-sets/plan',
    {
      ...admin,
      schema: {
        tags,
        summary:
          'What applying would change in Identity Center; steps marked drift undo changes made outside Ferry',
        security,
        response: { 200: PlanSchema, ...problemResponses },
      },
    },
    async () => sync.plan(),
  );
  app.post(
    '/identity-center/permission-sets/apply',
    {
      ...admin,
      schema: {
        tags,
        summary:
          'Make Identity Center match; streams NDJSON: a plan line, progress lines, then a result line',
        security,
        produces: ['application/x-ndjson'],
      },
    },
    async (req, reply) => {
      const ctx = opts.auditContext(req);
      const out = reply.raw;
      reply.hijack();
      out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      const line = (v: unknown) => out.write(`${JSON.stringify(v)}\n`);
      try {
        const result = await sync.apply(
          ctx,
          (p) => line({ type: 'progress', ...p }),
          (plan) => line({ type: 'plan', total: plan.steps.length, problems: plan.problems.length }),
        );
        line({ type: 'result', ...result });
      } catch (err) {
        req.log.warn({ err }, 'Identity Center permission set sync failed');
        line({ type: 'error', detail: (err as Error).message });
      }
      out.end();
    },
  );
  app.post(
    '/aws/discover',
    {
      ...admin,
      schema: {
        tags: ['aws'],
        summary: 'Read AWS Organizations: register its accounts (names, OU paths) and record the OU tree',
        security,
        response: {
          200: Type.Object({
            managementAccountId: Nullable(Type.String()),
            delegatedAdministrators: Type.Array(
              Type.Object({ accountId: Type.String(), name: Type.String() }),
            ),
            units: Type.Array(Type.Object({ id: Type.String(), path: Type.String() })),
            accounts: Type.Array(
              Type.Object({
                id: Type.String(),
                alias: Type.String(),
                ouPath: Type.String(),
                status: Type.String(),
                registered: Type.Boolean(),
              }),
            ),
            moved: Type.Array(
              Type.Object({ accountId: Type.String(), from: Type.String(), to: Type.String() }),
            ),
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const ctx = opts.auditContext(req);
      const found = await discoverOrganization(opts.connection);
      const { moved } = await opts.organization.record(ctx, found);
      const paths = new Map((await opts.organization.units()).map((u) => [u.id, u.path]));
      const accounts = [];
      const known = new Map((await opts.accounts.list()).map((a) => [a.id, a]));
      for (const a of found.accounts) {
        const existing = known.get(a.id);
        const alias = existing?.alias ?? aliasOf(a.name, a.id);
        let registered = false;
        if (a.status === 'ACTIVE')
          registered = (
            await opts.accounts.upsert(ctx, { id: a.id, alias }).catch(async () =>
              // the alias is another account's: fall back to one made unique by the id
              opts.accounts.upsert(ctx, { id: a.id, alias: `${alias.slice(0, 50)}-${a.id}` }),
            )
          ).changed;
        accounts.push({
          id: a.id,
          alias,
          ouPath: paths.get(a.parentId) ?? a.parentId,
          status: a.status,
          registered,
        });
      }
      return {
        managementAccountId: found.managementAccountId,
        delegatedAdministrators: found.delegatedAdministrators,
        units: [...paths].map(([id, path]) => ({ id, path })),
        accounts,
        moved,
      };
    },
  );
  app.get(
    '/aws/permission-set-entitlements',
    {
      onRequest: opts.authenticateCaller,
      schema: {
        tags: ['aws'],
        summary: 'The IAM Identity Center permission sets you may use right now, with the access portal URL',
        security,
        response: {
          200: Type.Object({
            items: Type.Array(PermissionSetEntitlement),
            cliProfiles: Type.Union([Type.Literal('sso'), Type.Literal('ferry')], {
              description:
                'what the operator wants `ferry aws config` to write: AWS CLI sso profiles, or only Ferry-issued role credentials',
            }),
            startUrl: Type.String({
              description: 'the AWS access portal ("" when Identity Center cannot be reached)',
            }),
            ssoRegion: Type.String(),
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const caller = req.caller!;
      const entitled = await opts.access.permissionSetEntitlements(
        caller.principal,
        opts.signals(req, caller),
        (a) => permissionSets.accountsOf(a),
      );
      const cliProfiles = opts.cliProfiles ?? 'sso';
      const ssoRegion = opts.connection.region;
      if (entitled.length === 0) return { items: [], cliProfiles, startUrl: '', ssoRegion };
      const startUrl = await sync.startUrl().catch(() => '');
      const aliases = new Map((await opts.accounts.list()).map((a) => [a.id, a.alias]));
      const items: PermissionSetEntitlementView[] = [];
      for (const { target, decision } of entitled) {
        if (decision.effect !== 'allow') continue;
        const alias = aliases.get(target.account) ?? target.account;
        items.push({
          accountId: target.account,
          accountAlias: alias,
          permissionSet: target.name,
          target: `aws:${target.account}/permission-set/${target.name}`,
          maxDurationSeconds: decision.maxDuration,
          startUrl,
          ssoRegion: opts.connection.region,
          profile: `ferry-sso-${alias}-${target.name}`.toLowerCase().replace(/[^\w.-]+/g, '-'),
        });
      }
      return { items, cliProfiles, startUrl, ssoRegion };
    },
  );
};
