import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import type { Clock } from '../../clock.js';
import { InvalidInput } from '../../errors.js';
import { problemResponses } from '../../problem-schema.js';
import type { AccessDecider } from '../decide.js';
import type { Principal } from '../principal.js';
import { parseTarget } from '../targets.js';
import type { NamedLocations } from './named-locations.js';
import { type ConditionalAccessPolicies, policyView } from './policies.js';

export interface PolicyApiOptions {
  policies: ConditionalAccessPolicies;
  locations: NamedLocations;
  access: AccessDecider;
  clock: Clock;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** the principal decide() would see for this user or workload, signed in with these methods at this time */
  principalFor: (
    who: { user?: string; workload?: string },
    amr: string[],
    authTime: string | null,
  ) => Promise<Principal>;
}

const Loose = Type.Object({}, { additionalProperties: true });
const REQUIREMENT = Type.Union(
  ['mfa', 'phishing-resistant-mfa', 'compliant-device', 'reauthentication'].map((r) => Type.Literal(r)),
);
/** What-if's answer: decide()'s effect and reasons, and how each policy treated the request. */
const WhatIfResult = Type.Object({
  user: Type.String({ description: 'the user (or workload) name the decision was made for' }),
  target: Type.String(),
  result: Type.Union([Type.Literal('allow'), Type.Literal('step-up'), Type.Literal('deny')]),
  maxDuration: Type.Optional(Type.Integer({ description: 'allow: seconds a credential may live at most' })),
  sessionTags: Type.Optional(Type.Record(Type.String(), Type.String())),
  require: Type.Optional(Type.Array(REQUIREMENT, { description: 'step-up: what the person must prove' })),
  reasons: Type.Array(
    Type.Object({
      source: Type.String({ description: 'assignment, activation, policy, directory or target' }),
      ref: Type.Optional(Type.String()),
      message: Type.String(),
    }),
  ),
  policies: Type.Array(
    Type.Object({
      policy: Type.String(),
      policyId: Type.String(),
      state: Type.Union([Type.Literal('on'), Type.Literal('report-only')]),
      applied: Type.Boolean(),
      why: Type.Array(Type.String(), {
        description: 'each matched condition when it applied, else the first that did not match',
      }),
      result: Type.Optional(
        Type.Union([Type.Literal('block'), Type.Literal('satisfied'), Type.Literal('step-up')]),
      ),
      require: Type.Optional(Type.Array(REQUIREMENT)),
      maxDuration: Type.Optional(Type.Integer()),
    }),
  ),
});
const AMR_OF = { none: ['pwd'], totp: ['pwd', 'otp', 'mfa'], webauthn: ['pwd', 'hwk', 'mfa'] } as const;

export const WhatIfBody = Type.Object(
  {
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    workload: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    target: Type.String({ minLength: 1, maxLength: 600 }),
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    client: Type.Optional(
      Type.Union([Type.Literal('browser'), Type.Literal('cli'), Type.Literal('workload')]),
    ),
    mfa: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('totp'), Type.Literal('webauthn')])),
    /** seconds since the (simulated) sign-in */
    signedInSecondsAgo: Type.Optional(Type.Integer({ minimum: 0, maximum: 366 * 86400 })),
    signInRisk: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')]),
    ),
    /** a device posture assertion (JWT), as a client would send it */
    device: Type.Optional(Type.String({ maxLength: 8192 })),
  },
  { additionalProperties: false },
);

/** Conditional access policies, named locations and what-if under /api/v1. */
export const policyApi: FastifyPluginAsync<PolicyApiOptions> = async (app, opts) => {
  const { policies, locations } = opts;
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['conditional access'];

  app.get(
    '/policies',
    {
      schema: {
        tags,
        summary: 'List conditional access policies',
        security,
        response: { 200: Type.Object({ items: Type.Array(Loose) }) },
      },
    },
    async () => ({ items: (await policies.list()).map(policyView) }),
  );

  app.get<{ Params: { ref: string } }>(
    '/policies/:ref',
    {
      schema: {
        tags,
        summary: 'One policy (by id or name)',
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 200 }) }),
        response: { 200: Loose, ...problemResponses },
      },
    },
    async (req) => policyView(await policies.get(req.params.ref)),
  );

  app.put<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/policies/:name',
    {
      schema: {
        tags,
        summary: 'Create or replace the policy with this name (idempotent)',
        description:
          'Body: state, include {all, users, groups, workloads}, exclude {users, groups, workloads}, targets, excludeTargets, conditions {signInRisk, userRisk, locations, countries, clients, device, time}, grant {block | require + operator}, session {maxCredentialLifetime, signInFrequency}. See docs/conditional-access.md.',
        security,
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }),
        body: Loose,
        response: { 200: Loose, 201: Loose, ...problemResponses },
      },
    },
    async (req, reply) => {
      const body = req.body ?? {};
      if (body.name !== undefined && body.name !== req.params.name)
        throw new InvalidInput('the name in the body differs from the one in the path', 'name');
      const { policy, created } = await policies.put(opts.auditContext(req), {
        ...body,
        name: req.params.name,
      });
      return reply.code(created ? 201 : 200).send(policyView(policy));
    },
  );

  app.post<{ Params: { ref: string }; Body: { state: 'on' | 'report-only' | 'off' } }>(
    '/policies/:ref/state',
    {
      schema: {
        tags,
        summary: 'Switch a policy on, to report-only, or off',
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 200 }) }),
        body: Type.Object(
          { state: Type.Union([Type.Literal('on'), Type.Literal('report-only'), Type.Literal('off')]) },
          { additionalProperties: false },
        ),
        response: { 200: Loose, ...problemResponses },
      },
    },
    async (req) =>
      policyView(await policies.setState(opts.auditContext(req), req.params.ref, req.body.state)),
  );

  app.delete<{ Params: { ref: string } }>(
    '/policies/:ref',
    {
      schema: {
        tags,
        summary: 'Remove a policy',
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 200 }) }),
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await policies.remove(opts.auditContext(req), req.params.ref);
      return reply.code(204).send();
    },
  );

  app.get(
    '/named-locations',
    {
      schema: {
        tags,
        summary: 'List named locations',
        security,
        response: { 200: Type.Object({ items: Type.Array(Loose) }) },
      },
    },
    async () => ({ items: await locations.list() }),
  );

  app.put<{ Params: { name: string }; Body: { ranges: string[] } }>(
    '/named-locations/:name',
    {
      schema: {
        tags,
        summary: 'Create or replace a named location (IP ranges in CIDR notation)',
        security,
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Object(
          {
            ranges: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 1000 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose, ...problemResponses },
      },
    },
    async (req) => locations.put(opts.auditContext(req), req.params.name, req.body.ranges),
  );

  app.delete<{ Params: { name: string } }>(
    '/named-locations/:name',
    {
      schema: {
        tags,
        summary: 'Remove a named location',
        security,
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await locations.remove(opts.auditContext(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Body: (typeof WhatIfBody)['static'] }>(
    '/access/what-if',
    {
      config: { permission: 'policies:read' },
      schema: {
        tags,
        summary:
          'What decide() would answer for this user (or workload), target and circumstances, policy by policy',
        security,
        body: WhatIfBody,
        response: { 200: WhatIfResult, ...problemResponses },
      },
    },
    async (req) => {
      const b = req.body;
      if ((b.user === undefined) === (b.workload === undefined))
        throw new InvalidInput('give exactly one of user or workload', 'user');
      const target = parseTarget(b.target);
      const now = opts.clock.now().getTime();
      const authTime = b.workload ? null : new Date(now - (b.signedInSecondsAgo ?? 0) * 1000).toISOString();
      const principal = await opts.principalFor(
        { user: b.user, workload: b.workload },
        b.workload ? [] : [...AMR_OF[b.mfa ?? 'none']],
        authTime,
      );
      principal.signInRisk = b.signInRisk ?? 'none';
      const decision = await opts.access.explain(principal, target, {
        ip: b.ip ?? null,
        client: b.client ?? (b.workload ? 'workload' : 'browser'),
        deviceAssertion: b.device ?? null,
      });
      return {
        user: principal.userName,
        target: b.target,
        result: decision.effect,
        ...(decision.effect === 'allow'
          ? { maxDuration: decision.maxDuration, sessionTags: decision.sessionTags }
          : {}),
        ...(decision.effect === 'step-up' ? { require: decision.require } : {}),
        reasons: decision.reasons,
        policies: decision.policies ?? [],
      };
    },
  );
};
