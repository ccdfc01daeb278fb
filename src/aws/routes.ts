import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AwsAccounts } from '../access/aws-accounts.js';
import { AwsIdentityCollision } from '../access/aws-identity.js';
import type { AccessDecider } from '../access/decide.js';
import type { AuditContext } from '../audit/actor.js';
import type { Caller } from '../identity/caller.js';
import { Nullable } from '../nullable-schema.js';
import { Problem } from '../problem.js';
import { problemResponses } from '../problem-schema.js';
import { type AwsCredentialBroker, CredentialsRefused, StsExchangeFailed } from './credentials.js';

export interface AwsCallerRoutesOptions {
  broker: AwsCredentialBroker;
  access: AccessDecider;
  accounts: AwsAccounts;
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** the local AWS every account without its own endpoint is reached at (config aws.endpoint) */
  defaultEndpoint: string | null;
}

const CredentialsBody = Type.Object(
  {
    account: Type.String({ minLength: 1, maxLength: 64, description: '12-digit id or alias' }),
    role: Type.String({ minLength: 1, maxLength: 64 }),
    durationSeconds: Type.Optional(Type.Integer({ minimum: 900, maximum: 43200 })),
  },
  { additionalProperties: false },
);

const Credentials = Type.Object({
  accessKeyId: Type.String(),
  secretAccessKey: Type.String(),
  sessionToken: Type.String(),
  expiration: Type.String(),
  accountId: Type.String(),
  accountAlias: Type.String(),
  roleName: Type.String(),
  roleArn: Type.String(),
  assumedRoleArn: Type.String(),
  sourceIdentity: Type.String(),
  durationSeconds: Type.Integer(),
});

const Entitlement = Type.Object({
  accountId: Type.String(),
  accountAlias: Type.String(),
  roleName: Type.String(),
  roleArn: Type.String(),
  target: Type.String(),
  /** seconds: the longest credential `ferry creds` can get for this role now */
  maxDurationSeconds: Type.Integer(),
  endpointUrl: Nullable(Type.String()),
  /** the AWS CLI profile name `ferry aws config` writes for it */
  profile: Type.String(),
});
export type EntitlementView = Static<typeof Entitlement>;

/** `ferry-<account alias>-<role>` in lower case, with anything a profile name can't hold made a dash. */
export const profileName = (alias: string, role: string): string =>
  `ferry-${alias}-${role}`.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');

/** What a signed-in person (or workload) uses to reach AWS: their roles, and credentials for one. */
export const awsCallerRoutes: FastifyPluginAsync<AwsCallerRoutesOptions> = async (app, opts) => {
  const tags = ['aws'];
  const security = [{ bearer: [] }];
  const signals = (req: FastifyRequest, caller: Caller) => ({
    ip: req.ip,
    client: caller.principal.kind === 'workload' ? ('workload' as const) : ('cli' as const),
    userAgent: req.headers['user-agent'] ?? null,
    // A managed device's agent (or `ferry creds --device-assertion`) presents its posture here.
    deviceAssertion: String(req.headers['x-ferry-device-posture'] ?? '') || null,
  });

  app.post<{ Body: Static<typeof CredentialsBody> }>(
    '/aws/credentials',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Short-lived STS credentials for one role you are entitled to (AssumeRoleWithSAML)',
        security,
        body: CredentialsBody,
        response: { 200: Credentials, ...problemResponses },
      },
    },
    async (req, reply) => {
      const caller = req.caller!;
      try {
        const credentials = await opts.broker.issue(
          caller.principal,
          { account: req.body.account, role: req.body.role, durationSeconds: req.body.durationSeconds },
          signals(req, caller),
          opts.auditContext(req),
        );
        return reply.header('cache-control', 'no-store').send(credentials);
      } catch (err) {
        if (err instanceof CredentialsRefused) {
          throw new Problem(403, 'access-denied', 'Access denied', err.message, {
            target: err.target,
            effect: err.decision.effect,
            reasons: err.decision.reasons,
            ...(err.decision.effect === 'step-up' ? { require: err.decision.require } : {}),
          });
        }
        if (err instanceof AwsIdentityCollision) {
          throw new Problem(409, err.code, 'AWS identity taken', err.message, { tried: err.tried });
        }
        if (err instanceof StsExchangeFailed) {
          throw new Problem(502, 'aws-sts-failed', 'AWS STS refused the exchange', err.message, {
            roleArn: err.roleArn,
            awsError: err.awsCode,
            hint: err.hint,
          });
        }
        throw err;
      }
    },
  );

  app.get(
    '/aws/entitlements',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'The AWS roles you may have right now',
        security,
        response: { 200: Type.Object({ items: Type.Array(Entitlement) }), ...problemResponses },
      },
    },
    async (req) => {
      const caller = req.caller!;
      const entitled = await opts.access.entitlements(caller.principal, signals(req, caller));
      const accounts = new Map((await opts.accounts.list()).map((a) => [a.id, a]));
      const items: EntitlementView[] = [];
      for (const { target, decision } of entitled) {
        if (decision.effect !== 'allow') continue;
        const account = accounts.get(target.account);
        if (!account) continue;
        const { role } = await opts.accounts.role(account.id, target.role);
        items.push({
          accountId: account.id,
          accountAlias: account.alias,
          roleName: role.name,
          roleArn: role.arn,
          target: `aws:${account.id}/${role.name}`,
          maxDurationSeconds: Math.min(role.maxSessionDuration, decision.maxDuration),
          endpointUrl: account.endpointUrl ?? opts.defaultEndpoint,
          profile: profileName(account.alias, role.name),
        });
      }
      return { items };
    },
  );
};
