import type { AssumeRoleWithSAMLCommandOutput, STSClient } from '@aws-sdk/client-sts';
import type { AwsAccount, AwsAccounts, AwsRole } from '../access/aws-accounts.js';
import { AwsIdentityCollision, awsIdentityOf } from '../access/aws-identity.js';
import type { AccessDecider } from '../access/decide.js';
import type { Decision, Reason } from '../access/decision.js';
import type { Signals } from '../access/principal.js';
import { stepUpAdvice } from '../access/step-up-advice.js';
import { formatTarget, type Target } from '../access/targets.js';
import type { AuditContext } from '../audit/actor.js';
import { recordIssued } from '../audit/issued.js';
import { appendAudit } from '../audit/ledger.js';
import type { Clock } from '../clock.js';
import { NotFound } from '../errors.js';
import type { CallerPrincipal } from '../identity/caller.js';
import type { Store } from '../store/open.js';
import { accountConnection } from './account-clients.js';
import { stsSdk } from './sdk.js';

/** The SAML assertion for one role that STS exchanges (built in federation/saml, injected here). */
export interface RoleAssertionSource {
  build(input: {
    subjectId: string;
    userName: string;
    /** RoleSessionName and SourceIdentity (awsIdentityOf) */
    awsIdentity: string;
    account: AwsAccount;
    role: AwsRole;
    durationSeconds: number;
    sessionTags: Record<string, string>;
    authTime: Date | null;
    /** RFC 8176 methods of the sign-in: the assertion's AuthnContext says what it was */
    amr: readonly string[];
  }): Promise<{ base64: string; assertionId: string; sessionName: string; sourceIdentity: string }>;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601 */
  expiration: string;
  accountId: string;
  accountAlias: string;
  roleName: string;
  roleArn: string;
  /** arn:aws:sts::<account>:assumed-role/<role>/<session name>: what CloudTrail shows */
  assumedRoleArn: string;
  sourceIdentity: string;
  durationSeconds: number;
}

/** decide() said no (or asked for a step-up the CLI can't do here): nothing was issued. */
export class CredentialsRefused extends Error {
  constructor(
    readonly target: string,
    readonly decision: Exclude<Decision, { effect: 'allow' }>,
  ) {
    super(
      decision.effect === 'step-up'
        ? `${target} needs ${decision.require.join(' and ')} (${decision.reasons.map((r) => r.message).join('; ')}). ${stepUpAdvice(decision.require)}`
        : `access to ${target} is refused: ${decision.reasons.map((r) => r.message).join('; ')}`,
    );
    this.name = 'CredentialsRefused';
  }
}

/** AWS STS refused the exchange: the message names the role and what to fix. */
export class StsExchangeFailed extends Error {
  constructor(
    readonly roleArn: string,
    readonly awsCode: string,
    awsMessage: string,
    readonly hint: string,
  ) {
    super(`AWS STS refused AssumeRoleWithSAML for ${roleArn}: ${awsCode}: ${awsMessage}. ${hint}`);
    this.name = 'StsExchangeFailed';
  }
}

const DEFAULT_DURATION_SECONDS = 3600;

function hintFor(code: string, account: AwsAccount, role: AwsRole): string {
  const setup = `\`ferry aws setup-account --account ${account.alias}\``;
  switch (code) {
    case 'AccessDenied':
    case 'AccessDeniedException':
      return `Check that role ${role.name} trusts the SAML provider ${account.samlProviderArn} with sts:AssumeRoleWithSAML, sts:SetSourceIdentity and sts:TagSession (${setup} writes that trust).`;
    case 'NoSuchEntity':
    case 'NoSuchEntityException':
      return `Role ${role.name} or the SAML provider ${account.samlProviderArn} does not exist in account ${account.id}: create it, or run ${setup}.`;
    case 'InvalidIdentityToken':
    case 'InvalidIdentityTokenException':
      return `The SAML provider ${account.samlProviderArn} does not hold Ferry's current signing certificate: re-run ${setup} after a key rotation.`;
    case 'ValidationError':
      return `The requested duration may exceed role ${role.name}'s MaxSessionDuration (${role.maxSessionDuration} s in Ferry's registry; check the role in IAM).`;
    case 'ExpiredTokenException':
      return 'Ferry and AWS disagree about the time: check the server clock (NTP).';
    default:
      return `Check role ${role.name} and the SAML provider in account ${account.id}.`;
  }
}

/**
 * The CLI and SDK credential issuer: asks decide() about exactly one role, has STS exchange a SAML
 * assertion naming only that role, and records the AccessKeyId so a CloudTrail event maps back to a
 * person. It never decides anything itself.
 */
export class AwsCredentialBroker {
  readonly #sts = new Map<string, STSClient>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly accounts: AwsAccounts,
    private readonly access: AccessDecider,
    private readonly assertions: RoleAssertionSource,
    private readonly region: string,
    /** the local AWS for accounts without an endpoint of their own (config aws.endpoint) */
    private readonly defaultEndpoint: string | null = null,
  ) {}

  async issue(
    principal: CallerPrincipal,
    request: { account: string; role: string; durationSeconds?: number },
    signals: Signals,
    ctx: AuditContext,
  ): Promise<AwsCredentials> {
    const account = await this.accounts.find(this.store.db, request.account);
    const target: Extract<Target, { kind: 'aws-role' }> = {
      kind: 'aws-role',
      account: account?.id ?? request.account,
      role: request.role,
    };
    const name = formatTarget(target);
    const decision = await this.access.decide(principal, target, signals);
    if (decision.effect !== 'allow') {
      await this.#audit(ctx, principal, 'aws.credentials.refused', 'failure', {
        target: name,
        effect: decision.effect,
        reasons: decision.reasons,
      });
      throw new CredentialsRefused(name, decision);
    }
    if (!account) throw new NotFound('AWS account', request.account);
    const { role } = await this.accounts.role(account.id, request.role);
    const ceiling = Math.min(role.maxSessionDuration, decision.maxDuration);
    const durationSeconds = Math.max(
      900,
      Math.min(request.durationSeconds ?? DEFAULT_DURATION_SECONDS, ceiling),
    );
    let awsIdentity: string;
    try {
      awsIdentity = await awsIdentityOf(this.store.db, this.clock, principal);
    } catch (err) {
      if (err instanceof AwsIdentityCollision)
        await this.#audit(ctx, principal, 'aws.credentials.refused', 'failure', {
          target: name,
          effect: 'deny',
          reasons: [{ message: err.message }],
        });
      throw err;
    }
    const assertion = await this.assertions.build({
      subjectId: principal.id,
      userName: principal.userName,
      awsIdentity,
      account,
      role,
      durationSeconds,
      sessionTags: decision.sessionTags,
      authTime: principal.authTime ? new Date(principal.authTime) : null,
      amr: principal.amr,
    });
    let answer: AssumeRoleWithSAMLCommandOutput;
    try {
      answer = await this.#client(account).send(
        new stsSdk.AssumeRoleWithSAMLCommand({
          RoleArn: role.arn,
          PrincipalArn: account.samlProviderArn,
          SAMLAssertion: assertion.base64,
          DurationSeconds: durationSeconds,
        }),
      );
    } catch (err) {
      const code =
        err instanceof stsSdk.STSServiceException ? err.name : ((err as { code?: string }).code ?? 'Error');
      const failure = new StsExchangeFailed(
        role.arn,
        code,
        (err as Error).message,
        hintFor(code, account, role),
      );
      await this.#audit(ctx, principal, 'aws.credentials.failed', 'failure', {
        target: name,
        roleArn: role.arn,
        awsError: code,
        message: (err as Error).message,
      });
      throw failure;
    }
    const c = answer.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new StsExchangeFailed(
        role.arn,
        'IncompleteResponse',
        'STS answered without credentials',
        hintFor('', account, role),
      );
    }
    const expiration = c.Expiration;
    const credentials: AwsCredentials = {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration.toISOString(),
      accountId: account.id,
      accountAlias: account.alias,
      roleName: role.name,
      roleArn: role.arn,
      assumedRoleArn:
        answer.AssumedRoleUser?.Arn ??
        `arn:${account.partition}:sts::${account.id}:assumed-role/${role.name}/${assertion.sessionName}`,
      sourceIdentity: assertion.sourceIdentity,
      durationSeconds,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await recordIssued(trx, this.clock, {
        kind: 'sts-credentials',
        userId: principal.kind === 'user' ? principal.id : null,
        subject: principal.userName,
        target: name,
        audience: account.samlProviderArn,
        externalId: credentials.accessKeyId,
        details: {
          roleArn: role.arn,
          assumedRoleArn: credentials.assumedRoleArn,
          sourceIdentity: assertion.sourceIdentity,
          sessionName: assertion.sessionName,
          durationSeconds,
          assertionId: assertion.assertionId,
          principalKind: principal.kind,
        },
        expiresAt: expiration,
      });
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'aws.credentials.issued',
        outcome: 'success',
        actor: ctx.actor,
        subject: principal.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          target: name,
          roleArn: role.arn,
          accessKeyId: credentials.accessKeyId,
          sourceIdentity: assertion.sourceIdentity,
          durationSeconds,
          expiration: credentials.expiration,
          reasons: decision.reasons.map((r: Reason) => r.message),
        },
      });
    });
    return credentials;
  }

  #client(account: AwsAccount): STSClient {
    const { endpoint, region } = accountConnection(account, {
      region: this.region,
      endpoint: this.defaultEndpoint,
    });
    const key = `${endpoint ?? 'aws'} ${region}`;
    let client = this.#sts.get(key);
    if (!client) {
      client = new stsSdk.STSClient({
        region,
        ...(endpoint ? { endpoint } : {}),
        // AssumeRoleWithSAML is unsigned: Ferry needs no AWS credentials of its own to broker it.
        credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
        maxAttempts: 2,
      });
      this.#sts.set(key, client);
    }
    return client;
  }

  async #audit(
    ctx: AuditContext,
    principal: CallerPrincipal,
    type: string,
    outcome: 'success' | 'failure',
    data: Record<string, unknown>,
  ): Promise<void> {
    await this.store.db.transaction().execute((trx) =>
      appendAudit(trx, this.store.engine, this.clock, {
        type,
        outcome,
        actor: ctx.actor,
        subject: principal.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data,
      }),
    );
  }
}
