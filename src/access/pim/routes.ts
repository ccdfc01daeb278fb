import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import { InvalidInput } from '../../errors.js';
import type { Caller } from '../../identity/caller.js';
import { Nullable } from '../../nullable-schema.js';
import { Forbidden, Problem } from '../../problem.js';
import { problemResponses } from '../../problem-schema.js';
import { ADMIN_ACCOUNT, type Permission } from '../admin-roles.js';
import {
  type Activation,
  type Activations,
  isApprover,
  PimForbidden,
  StepUpRequired,
} from './activations.js';
import type { ActivationRules, Approver, Eligibilities, Eligibility } from './eligibilities.js';
import { ACTIVATION_STATES, type ActivationState, IllegalTransition } from './lifecycle.js';

type PreHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface PimApiOptions {
  eligibilities: Eligibilities;
  activations: Activations;
  /** a signed-in person (`ferry login`, browser session) */
  authenticateCaller: PreHandler;
  /** an admin API token */
  authenticateAdmin: PreHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** a second permission a route needs for some inputs (admin-roles:write to make an admin role eligible) */
  requirePermission: (req: FastifyRequest, reply: FastifyReply, permission: Permission) => Promise<void>;
  /**
   * Answering a request needs `approvals:decide` (admin-access.ts), unless the person is `named` as
   * one of its approvers; throws a 403 problem (audited) otherwise (docs/decisions/0041).
   */
  authorizeApprover: (req: FastifyRequest, named: boolean) => Promise<void>;
  /** audits an answer the domain refused (not an approver, one's own request); never throws */
  onRefused?: (req: FastifyRequest, detail: string) => Promise<void>;
  /** does membership of this group carry an admin role (access/admin-roles.ts)? */
  groupHoldsAdminRole: (groupId: string) => Promise<boolean>;
  /** resolves a group or user name (or id); throws NotFound */
  resolvePrincipal: (
    type: 'group' | 'user',
    ref: string,
  ) => Promise<{ type: 'group' | 'user'; id: string; name: string }>;
}

const ApproverSchema = Type.Object({
  type: Type.Union([Type.Literal('user'), Type.Literal('group')]),
  id: Type.String(),
  name: Type.String(),
});
const AutoApproveSchema = Type.Object({
  maxDuration: Type.Optional(Type.Integer()),
  requesterGroups: Type.Optional(Type.Array(Type.Object({ id: Type.String(), name: Type.String() }))),
  withTicket: Type.Optional(Type.Boolean()),
});
const EligibilitySchema = Type.Object({
  id: Type.String(),
  principalType: Type.String(),
  principalId: Type.String(),
  principalName: Type.Optional(Type.String()),
  kind: Type.String({ enum: ['aws-role', 'permission-set', 'group', 'ssh'] }),
  accountId: Type.String(),
  roleName: Type.String(),
  target: Type.String(),
  maxDuration: Type.Integer({ description: 'seconds' }),
  requireJustification: Type.Boolean(),
  requireTicket: Type.Boolean(),
  requireMfa: Type.Boolean(),
  approvers: Type.Array(ApproverSchema),
  approvalsRequired: Type.Integer(),
  autoApprove: Type.Union([AutoApproveSchema, Type.Null()]),
  createdAt: Type.String(),
  createdBy: Type.String(),
  updatedAt: Type.String(),
});
const ActivationSchema = Type.Object({
  id: Type.String(),
  state: Type.String({ enum: [...ACTIVATION_STATES] }),
  userId: Type.String(),
  userName: Type.String(),
  kind: Type.String({ enum: ['aws-role', 'permission-set', 'group', 'ssh'] }),
  accountId: Type.String(),
  roleName: Type.String(),
  target: Type.String(),
  effect: Type.Union([
    Type.Object(
      { state: Type.String(), detail: Nullable(Type.String()), at: Nullable(Type.String()) },
      {
        description:
          'the Identity Center account assignment or group membership: pending, applying, applied, failed (retried), kept, removing, removed',
      },
    ),
    Type.Null(),
  ]),
  openSessions: Type.String({ description: 'what happens to sessions already open when it ends' }),
  eligibilityId: Type.String(),
  durationSeconds: Type.Integer(),
  justification: Nullable(Type.String()),
  ticket: Nullable(Type.String()),
  approvers: Type.Array(ApproverSchema),
  approvalsRequired: Type.Integer(),
  approvals: Type.Array(
    Type.Object({
      userId: Type.String(),
      userName: Type.String(),
      at: Type.String(),
      reason: Nullable(Type.String()),
    }),
  ),
  requestedAt: Type.String(),
  answerBy: Type.String(),
  activatedAt: Nullable(Type.String()),
  expiresAt: Nullable(Type.String()),
  endedAt: Nullable(Type.String()),
  endedBy: Nullable(Type.String()),
  endReason: Nullable(Type.String()),
  version: Type.Integer(),
});
const RequestBody = Type.Object(
  {
    account: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 63,
        description:
          '12-digit id or alias; `ferry` for an admin role (role: helpdesk, ferry-administrator, …)',
      }),
    ),
    role: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    target: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 600,
        description:
          'instead of account and role: aws:<account>/permission-set/<name>, group:<name>, ssh:<login>@<host>',
      }),
    ),
    durationSeconds: Type.Integer({ minimum: 1, maximum: 86400 }),
    justification: Type.Optional(Type.String({ maxLength: 1000 })),
    ticket: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
const ReasonBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false },
);
const EligibilityBody = Type.Object(
  {
    group: Type.Optional(Type.String({ maxLength: 256 })),
    user: Type.Optional(Type.String({ maxLength: 256 })),
    account: Type.Optional(
      Type.String({
        maxLength: 63,
        description:
          'account id or alias; `ferry` for an admin role (role: helpdesk, ferry-administrator, …)',
      }),
    ),
    role: Type.Optional(Type.String({ maxLength: 64 })),
    target: Type.Optional(
      Type.String({
        maxLength: 600,
        description:
          'instead of account and role: aws:<account>/permission-set/<name>, group:<name>, ssh:<login>@<host or glob>',
      }),
    ),
    maxDuration: Type.Integer({ description: 'seconds (900..43200)' }),
    requireJustification: Type.Optional(Type.Boolean()),
    requireTicket: Type.Optional(Type.Boolean()),
    requireMfa: Type.Optional(Type.Boolean()),
    approverGroups: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 50 })),
    approverUsers: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 50 })),
    approvalsRequired: Type.Optional(Type.Integer({ minimum: 0, maximum: 50 })),
    autoApprove: Type.Optional(
      Type.Union([
        Type.Object(
          {
            maxDuration: Type.Optional(Type.Integer({ minimum: 1 })),
            requesterGroups: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 50 })),
            withTicket: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
);
export type EligibilityInput = Static<typeof EligibilityBody>;
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ListQuery = Type.Object(
  {
    mine: Type.Optional(Type.Boolean()),
    pending: Type.Optional(Type.Boolean()),
    state: Type.Optional(Type.String({ enum: [...ACTIVATION_STATES] })),
  },
  { additionalProperties: false },
);

/** Turns the rules of the API body (names) into stored rules (ids); shared with the tenant file. */
export async function rulesFromInput(
  input: Omit<EligibilityInput, 'group' | 'user' | 'account' | 'role' | 'target'>,
  resolve: PimApiOptions['resolvePrincipal'],
): Promise<ActivationRules> {
  const approvers: Approver[] = [];
  for (const g of input.approverGroups ?? []) approvers.push((await resolve('group', g)) as Approver);
  for (const u of input.approverUsers ?? []) approvers.push((await resolve('user', u)) as Approver);
  const auto = input.autoApprove ?? null;
  return {
    maxDuration: input.maxDuration,
    requireJustification: input.requireJustification ?? false,
    requireTicket: input.requireTicket ?? false,
    requireMfa: input.requireMfa ?? false,
    approvers,
    approvalsRequired: input.approvalsRequired ?? (approvers.length > 0 ? 1 : 0),
    autoApprove: auto
      ? {
          ...(auto.maxDuration !== undefined ? { maxDuration: auto.maxDuration } : {}),
          ...(auto.requesterGroups?.length
            ? {
                requesterGroups: await Promise.all(
                  auto.requesterGroups.map(async (g) => {
                    const r = await resolve('group', g);
                    return { id: r.id, name: r.name };
                  }),
                ),
              }
            : {}),
          ...(auto.withTicket ? { withTicket: true } : {}),
        }
      : null,
  };
}

/** The errors of the PIM domain as problems: 403 (with step-up), 409 for a transition the state forbids. */
export function pimProblem(err: unknown): unknown {
  if (err instanceof StepUpRequired)
    return new Problem(403, 'step-up-required', 'Step-up required', err.message, {
      target: err.target,
      effect: 'step-up',
      require: [...err.require],
      hint: 'sign in again with your one-time code or security key: `ferry logout && ferry login`',
    });
  if (err instanceof PimForbidden) return new Forbidden(err.message);
  if (err instanceof IllegalTransition)
    return new Problem(409, 'illegal-transition', 'Conflict', err.message, {
      state: err.state,
      event: err.event,
    });
  return err;
}

const wrap =
  <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
  async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (err) {
      throw pimProblem(err);
    }
  };

const isAdminToken = (req: FastifyRequest) => /^Bearer\s+ferry_at_/i.test(req.headers.authorization ?? '');

/** Eligible roles (admin) and activations (the person, their approvers, admins) under /api/v1/pim. */
export const pimApi: FastifyPluginAsync<PimApiOptions> = async (app, opts) => {
  const { eligibilities, activations } = opts;
  const security = [{ bearer: [] }];
  const tags = ['pim'];
  // Revoking and listing are open to admin tokens too; everything else is a person acting for themself.
  const callerOrAdmin: PreHandler = (req, reply) =>
    isAdminToken(req) ? opts.authenticateAdmin(req, reply) : opts.authenticateCaller(req, reply);
  const person = (req: FastifyRequest) => {
    const caller = req.caller as Caller;
    return caller.principal;
  };
  const reasonOf = (body: unknown) => (body as { reason?: string } | undefined)?.reason?.trim() || null;
  /** An eligibility for this target would let someone become an administrator. */
  const grantsAdminRole = async (t: { kind: string; accountId: string }): Promise<boolean> =>
    t.accountId === ADMIN_ACCOUNT ||
    (t.kind === 'group' && (await opts.groupHoldsAdminRole(t.accountId.slice('group:'.length))));

  app.get(
    '/pim/eligibilities',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'List eligible assignments (who may activate which role, under which rules)',
        security,
        response: { 200: Type.Object({ items: Type.Array(EligibilitySchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await eligibilities.list() }),
  );

  app.post<{ Body: EligibilityInput }>(
    '/pim/eligibilities',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary:
          'Create or replace an eligible assignment (group or user → account/role, with activation rules)',
        security,
        body: EligibilityBody,
        response: { 200: EligibilitySchema, 201: EligibilitySchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if ((b.group === undefined) === (b.user === undefined))
        throw new InvalidInput('give exactly one of group or user', 'group');
      if (b.target === undefined && (b.account === undefined || b.role === undefined))
        throw new InvalidInput('give target, or account and role', 'target');
      const target = b.target ?? { kind: 'aws-role' as const, account: b.account!, role: b.role! };
      // Making someone eligible for an admin role, or for a group that carries one, is granting it:
      // as much as an assignment is. Judged on the resolved target, however the request spelled it.
      if (await grantsAdminRole(await eligibilities.resolveTarget(target)))
        await opts.requirePermission(req, reply, 'admin-roles:write');
      const principal = await opts.resolvePrincipal(
        b.group !== undefined ? 'group' : 'user',
        (b.group ?? b.user)!,
      );
      const rules = await rulesFromInput(b, opts.resolvePrincipal);
      const { eligibility, change } = await eligibilities.setTarget(
        opts.auditContext(req),
        principal,
        target,
        rules,
      );
      // As the list shows it: with the group's or person's name (the console says who it made eligible).
      return reply
        .code(change === 'created' ? 201 : 200)
        .send({ ...eligibility, principalName: eligibility.principalName ?? principal.name });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/pim/eligibilities/:id',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Remove an eligible assignment',
        security,
        params: IdParams,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      // Removing an admin-role eligibility changes who may become an administrator.
      if (await grantsAdminRole(await eligibilities.get(req.params.id)))
        await opts.requirePermission(req, reply, 'admin-roles:write');
      await eligibilities.remove(opts.auditContext(req), req.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/pim/eligible',
    {
      onRequest: opts.authenticateCaller,
      schema: {
        tags,
        summary: 'The roles you may activate, with their rules',
        security,
        response: { 200: Type.Object({ items: Type.Array(EligibilitySchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const p = person(req);
      const items: Eligibility[] =
        p.kind === 'user'
          ? await eligibilities.forPrincipal(
              p.id,
              p.groups.map((g) => g.id),
            )
          : [];
      return { items };
    },
  );

  app.post<{ Body: Static<typeof RequestBody> }>(
    '/pim/activations',
    {
      onRequest: opts.authenticateCaller,
      schema: {
        tags,
        summary: 'Request to activate a role you are eligible for',
        security,
        body: RequestBody,
        response: { 201: ActivationSchema, ...problemResponses },
      },
    },
    wrap(async (req: FastifyRequest<{ Body: Static<typeof RequestBody> }>, reply: FastifyReply) => {
      const activation = await activations.request(opts.auditContext(req), person(req), req.body);
      return reply.code(201).send(activation);
    }),
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/pim/activations',
    {
      onRequest: callerOrAdmin,
      schema: {
        tags,
        summary:
          'Activations: yours (default, or mine=true), those waiting for your approval (pending=true); all with an admin token',
        security,
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(ActivationSchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const state = req.query.state as ActivationState | undefined;
      const states = state ? [state] : undefined;
      if (!req.caller) {
        // admin token
        if (req.query.pending) return { items: await activations.list({ states: ['requested'] }) };
        return { items: await activations.list({ states }) };
      }
      if (req.query.pending) return { items: await activations.pendingFor(person(req)) };
      return { items: await activations.list({ userId: person(req).id, states }) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/pim/activations/:id',
    {
      onRequest: callerOrAdmin,
      schema: {
        tags,
        summary: 'One activation (yours, one you may approve, or any with an admin token)',
        security,
        params: IdParams,
        response: { 200: ActivationSchema, ...problemResponses },
      },
    },
    async (req) => {
      const activation = await activations.get(req.params.id);
      if (req.caller) mayView(activation, person(req));
      return activation;
    },
  );

  /**
   * Approve and deny declare approvals:decide. A person named as approver of this request may answer it
   * without the permission (the portal's queue and the notification links: approvers are chosen per
   * eligibility, by whoever may write it); anyone else is refused here, audited, unless they hold the
   * permission, and the domain then still requires being named, and never one's own request.
   */
  const mayDecide: PreHandler = async (req) => {
    const a = await activations.get((req.params as { id: string }).id);
    const me = person(req);
    // the requester is passed on, for the domain to say why: nobody answers their own request
    await opts.authorizeApprover(req, a.userId === me.id || isApprover(a.approvers, me));
  };

  const answer = (
    path: 'approve' | 'deny' | 'cancel' | 'revoke',
    summary: string,
    run: (
      req: FastifyRequest<{ Params: { id: string }; Body: Static<typeof ReasonBody> }>,
    ) => Promise<Activation>,
  ) =>
    app.post<{ Params: { id: string }; Body: Static<typeof ReasonBody> }>(
      `/pim/activations/:id/${path}`,
      {
        onRequest: path === 'revoke' ? callerOrAdmin : opts.authenticateCaller,
        ...(path === 'approve' || path === 'deny'
          ? { config: { permission: 'approvals:decide' as const }, preHandler: mayDecide }
          : {}),
        schema: {
          tags,
          summary,
          security,
          params: IdParams,
          body: Type.Optional(ReasonBody),
          response: { 200: ActivationSchema, ...problemResponses },
        },
      },
      async (req) => {
        try {
          return await run(req);
        } catch (err) {
          if (err instanceof PimForbidden) await opts.onRefused?.(req, `${path}: ${err.message}`);
          throw pimProblem(err);
        }
      },
    );

  answer('approve', 'Approve a request (you are one of its approvers and not its requester)', (req) =>
    activations.approve(opts.auditContext(req), person(req), req.params.id, reasonOf(req.body)),
  );
  answer('deny', 'Deny a request', (req) =>
    activations.deny(opts.auditContext(req), person(req), req.params.id, reasonOf(req.body)),
  );
  answer('cancel', 'Withdraw your own request before it is active', (req) =>
    activations.cancel(opts.auditContext(req), person(req), req.params.id, reasonOf(req.body)),
  );
  answer(
    'revoke',
    'End an active activation early (you, an approver, or an admin token); your AWS sessions on the role are revoked',
    (req) =>
      activations.revoke(
        opts.auditContext(req),
        req.caller ? person(req) : null,
        req.params.id,
        reasonOf(req.body),
      ),
  );
};

/** A person sees their own activations and those they may approve; others are not found for them. */
function mayView(a: Activation, p: Caller['principal']): void {
  if (a.userId === p.id || isApprover(a.approvers, p)) return;
  throw new Forbidden(`activation ${a.id} is neither yours nor one you may approve`);
}
