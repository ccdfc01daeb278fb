import {
  CreateRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  NoSuchEntityException,
} from '@aws-sdk/client-iam';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { evaluateSession } from '../../test/support/iam-simulate.js';
import { type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import { AwsAccounts } from '../access/aws-accounts.js';
import { awsIdentityOf } from '../access/aws-identity.js';
import type { AuditContext } from '../audit/actor.js';
import { recordIssued } from '../audit/issued.js';
import { ManualClock } from '../clock.js';
import { openStore, type Store } from '../store/open.js';
import { accountConnection, openAccountClients } from './account-clients.js';
import { REVOCATION_POLICY_NAME, type RevocationPolicyDocument } from './revocation-policy.js';
import { SessionRevocationIncomplete, SessionRevoker } from './session-revocation.js';

const ACCOUNT = '123456789012';
const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const ALICE = { userId: 'u-alice', userName: 'alice@contoso.example' };
const BOB = { userId: 'u-bob', userName: 'bob@contoso.example' };
const CAROL = { userId: 'u-carol', userName: 'carol@contoso.example' };
const T0 = new Date('2026-03-01T12:00:00.000Z');
const SKEW_SECONDS = 60;

const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' },
  ],
});

describe.each(ENGINES)('revoking a person’s live AWS sessions (%s, moto)', (engine) => {
  let aws: LocalAws;
  let iam: IAMClient;
  let db: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let revoker: SessionRevoker;
  let roleCounter = 0;
  let role: (base: string) => string;

  beforeAll(async () => {
    aws = await startLocalAws();
    iam = new IAMClient({
      endpoint: aws.endpoint,
      region: aws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
  }, 60_000);

  afterAll(async () => {
    iam?.destroy();
    await aws?.stop();
  });

  beforeEach(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
    clock = new ManualClock(T0);
    const accounts = new AwsAccounts(store, clock);
    await accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    // Fresh role names per test: one moto serves the whole file.
    const suffix = ++roleCounter;
    role = (base: string) => `${base}${suffix}`;
    for (const [name, max] of [
      ['Developer', 3600],
      ['Administrator', 43_200],
      ['Auditor', 3600],
    ] as const) {
      await accounts.upsertRole(ctx, ACCOUNT, { name: role(name), maxSessionDuration: max });
      await iam.send(
        new CreateRoleCommand({
          RoleName: role(name),
          AssumeRolePolicyDocument: TRUST,
          MaxSessionDuration: max,
        }),
      );
    }
    revoker = new SessionRevoker(
      store,
      clock,
      accounts,
      (account) =>
        openAccountClients(accountConnection(account, { region: aws.region, endpoint: aws.endpoint })),
      { clockSkewSeconds: SKEW_SECONDS },
    );
  });

  afterEach(async () => {
    await store.close();
    await db.drop();
  });

  async function issue(
    who: { userId: string; userName: string },
    kind: 'saml-assertion' | 'sts-credentials',
    roles: string[],
    opts: { expiresInMs: number; sessionDuration?: number; sourceIdentity?: string | null },
  ) {
    const sourceIdentity = opts.sourceIdentity === undefined ? who.userName : opts.sourceIdentity;
    return store.db.transaction().execute((trx) =>
      recordIssued(trx, clock, {
        kind,
        userId: who.userId,
        subject: who.userName,
        target: roles.map((r) => `aws:${ACCOUNT}/${r}`).join(','),
        audience: 'urn:amazon:webservices',
        externalId: `${kind}-${Math.random()}`,
        details: {
          ...(sourceIdentity === null ? {} : { sourceIdentity }),
          ...(opts.sessionDuration === undefined ? {} : { sessionDuration: opts.sessionDuration }),
        },
        expiresAt: new Date(clock.now().getTime() + opts.expiresInMs),
      }),
    );
  }

  async function policyOn(roleName: string): Promise<RevocationPolicyDocument | null> {
    try {
      const out = await iam.send(
        new GetRolePolicyCommand({ RoleName: roleName, PolicyName: REVOCATION_POLICY_NAME }),
      );
      return JSON.parse(decodeURIComponent(out.PolicyDocument!)) as RevocationPolicyDocument;
    } catch (err) {
      if (err instanceof NoSuchEntityException) return null;
      throw err;
    }
  }

  const denied = (doc: RevocationPolicyDocument | null) =>
    Object.fromEntries(
      (doc?.Statement ?? []).map((s) => [
        String(s.Condition.StringEquals['aws:SourceIdentity']),
        s.Condition.DateLessThan['aws:TokenIssueTime'],
      ]),
    );

  const auditOf = async (type: string) =>
    (
      await store.db.selectFrom('audit_events').selectAll().where('type', '=', type).orderBy('seq').execute()
    ).map((e) => JSON.parse(e.data) as Record<string, unknown>);

  it('denies exactly the roles the person used, only to them, and marks those credentials revoked', async () => {
    // Console sign-in to Developer an hour-long session ago (the assertion itself has expired)…
    await issue(ALICE, 'saml-assertion', [role('Developer')], {
      expiresInMs: 5 * 60_000,
      sessionDuration: 3600,
    });
    clock.advance(10 * 60_000);
    // …CLI credentials for Administrator, a colleague on Developer, and an Auditor session long over.
    await issue(ALICE, 'sts-credentials', [role('Administrator')], { expiresInMs: 3600_000 });
    await issue(BOB, 'saml-assertion', [role('Developer')], {
      expiresInMs: 5 * 60_000,
      sessionDuration: 3600,
    });
    clock.set('2026-03-01T08:00:00Z');
    await issue(ALICE, 'sts-credentials', [role('Auditor')], { expiresInMs: 3600_000 });
    clock.set('2026-03-01T12:10:00Z');

    const requestedAt = clock.now();
    const report = await revoker.revokeLiveSessions(ALICE, requestedAt, { reason: 'user deactivated', ctx });
    const cutoff = '2026-03-01T12:11:00Z'; // the request plus the clock-skew allowance
    expect(report.roles.map((r) => [r.target, r.outcome, r.cutoff]).sort()).toEqual([
      [`aws:${ACCOUNT}/${role('Administrator')}`, 'revoked', cutoff],
      [`aws:${ACCOUNT}/${role('Developer')}`, 'revoked', cutoff],
    ]);
    expect(denied(await policyOn(role('Developer')))).toEqual({ [ALICE.userName]: cutoff });
    expect(denied(await policyOn(role('Administrator')))).toEqual({ [ALICE.userName]: cutoff });
    expect(await policyOn(role('Auditor'))).toBeNull();

    const ledger = await store.db
      .selectFrom('issued_credentials')
      .selectAll()
      .orderBy('issued_at')
      .orderBy('subject')
      .execute();
    expect(ledger.map((r) => [r.subject, r.target.split('/')[1], r.revoked_at !== null])).toEqual([
      [ALICE.userName, role('Auditor'), false], // long expired: nothing to revoke
      [ALICE.userName, role('Developer'), true],
      [ALICE.userName, role('Administrator'), true],
      [BOB.userName, role('Developer'), false],
    ]);
    const audited = await auditOf('aws.sessions-revoked');
    expect(audited.map((d) => [d['target'], d['policyName'], d['cutoff'], d['reason']]).sort()).toEqual([
      [`aws:${ACCOUNT}/${role('Administrator')}`, REVOCATION_POLICY_NAME, cutoff, 'user deactivated'],
      [`aws:${ACCOUNT}/${role('Developer')}`, REVOCATION_POLICY_NAME, cutoff, 'user deactivated'],
    ]);

    // At least once: the same event again changes nothing and audits nothing new.
    const again = await revoker.revokeLiveSessions(ALICE, requestedAt, { reason: 'user deactivated', ctx });
    expect(again.roles).toEqual([]);
    expect(await auditOf('aws.sessions-revoked')).toHaveLength(2);
    expect(denied(await policyOn(role('Developer')))).toEqual({ [ALICE.userName]: cutoff });
  });

  it('moves the cutoff past the expiry of a SAML assertion that could still be redeemed', async () => {
    await issue(ALICE, 'saml-assertion', [role('Developer')], {
      expiresInMs: 5 * 60_000,
      sessionDuration: 3600,
    });
    clock.advance(60_000); // deactivated a minute later: the assertion is good for four more minutes
    const report = await revoker.revokeLiveSessions(ALICE, clock.now(), { reason: 'user deactivated', ctx });
    expect(report.roles[0]!.cutoff).toBe('2026-03-01T12:06:00Z'); // assertion expiry 12:05 + 60 s skew
  });

  it('merges people on one role, each with their own cutoff, and forgets entries whose sessions have expired', async () => {
    await issue(ALICE, 'saml-assertion', [role('Developer')], { expiresInMs: 60_000, sessionDuration: 3600 });
    await issue(BOB, 'sts-credentials', [role('Developer')], { expiresInMs: 3600_000 });
    clock.advance(120_000);
    // Two offboardings handled at once (two workers) must not lose each other's statement.
    await Promise.all([
      revoker.revokeLiveSessions(ALICE, clock.now(), { reason: 'user deactivated', ctx }),
      revoker.revokeLiveSessions(BOB, new Date(clock.now().getTime() + 5000), {
        reason: 'user deleted',
        ctx,
      }),
    ]);
    expect(denied(await policyOn(role('Developer')))).toEqual({
      [ALICE.userName]: '2026-03-01T12:03:00Z',
      [BOB.userName]: '2026-03-01T12:03:05Z',
    });
    const stored = await store.db.selectFrom('aws_revocation_policies').selectAll().execute();
    expect(stored.map((r) => Number(r.applied_version) === Number(r.version))).toEqual([true]);

    // An hour (Developer's MaxSessionDuration) past their cutoffs, Carol's revocation drops them.
    clock.set('2026-03-01T13:04:00Z');
    await issue(CAROL, 'sts-credentials', [role('Developer')], { expiresInMs: 3600_000 });
    await revoker.revokeLiveSessions(CAROL, clock.now(), { reason: 'user deactivated', ctx });
    expect(denied(await policyOn(role('Developer')))).toEqual({ [CAROL.userName]: '2026-03-01T13:05:00Z' });
  });

  it('revokes one role only for PIM, leaving a multi-role assertion live on the other', async () => {
    await issue(ALICE, 'saml-assertion', [role('Developer'), role('Administrator')], {
      expiresInMs: 60_000,
      sessionDuration: 3600,
    });
    clock.advance(120_000);
    const report = await revoker.revokeRoleSessions(
      ALICE,
      { account: ACCOUNT, role: role('Administrator') },
      clock.now(),
      { reason: 'activation expired', ctx },
    );
    expect(report.roles.map((r) => r.target)).toEqual([`aws:${ACCOUNT}/${role('Administrator')}`]);
    expect(report.credentialsRevoked).toBe(0); // the assertion still opens Developer
    expect(await policyOn(role('Developer'))).toBeNull();
    expect(Object.keys(denied(await policyOn(role('Administrator'))))).toEqual([ALICE.userName]);
  });

  it('audits a failed role, throws so the outbox retries, and completes on the retry', async () => {
    const ghost = `${role('Ghost')}`;
    await new AwsAccounts(store, clock).upsertRole(ctx, ACCOUNT, { name: ghost, maxSessionDuration: 3600 });
    await issue(ALICE, 'sts-credentials', [role('Developer')], { expiresInMs: 3600_000 });
    await issue(ALICE, 'sts-credentials', [ghost], { expiresInMs: 3600_000 });
    const requestedAt = clock.now();
    const first = await revoker
      .revokeLiveSessions(ALICE, requestedAt, { reason: 'user deactivated', ctx })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(first).toBeInstanceOf(SessionRevocationIncomplete);
    expect((first as Error).message).toContain(`aws:${ACCOUNT}/${ghost}`);
    const failures = await auditOf('aws.sessions-revoke-failed');
    expect(failures.map((d) => d['target'])).toEqual([`aws:${ACCOUNT}/${ghost}`]);
    expect(String(failures[0]!['error'])).toMatch(/cannot be found|not found|NoSuchEntity/i);
    // The role that worked is done and its credential marked; the other is left for the retry.
    expect(Object.keys(denied(await policyOn(role('Developer'))))).toEqual([ALICE.userName]);

    await iam.send(new CreateRoleCommand({ RoleName: ghost, AssumeRolePolicyDocument: TRUST }));
    clock.advance(2000);
    const retry = await revoker.revokeLiveSessions(ALICE, requestedAt, { reason: 'user deactivated', ctx });
    expect(retry.roles.map((r) => [r.target, r.outcome])).toEqual([[`aws:${ACCOUNT}/${ghost}`, 'revoked']]);
    expect(denied(await policyOn(ghost))).toEqual({ [ALICE.userName]: '2026-03-01T12:01:00Z' });
    const left = await store.db.selectFrom('issued_credentials').select('revoked_at').execute();
    expect(left.every((r) => r.revoked_at !== null)).toBe(true);
  });

  it('ends exactly one of two people whose UPNs normalise alike (IAM policy simulator on the policy moto holds)', async () => {
    const jose = { userId: 'u-jose', userName: 'jose@contoso.example' };
    const joseAccent = { userId: 'u-jose-accent', userName: 'josé@contoso.example' };
    // What every issuer calls them (the console and `ferry creds` both ask awsIdentityOf).
    const identity = (p: typeof jose) =>
      awsIdentityOf(store.db, clock, { kind: 'user', id: p.userId, userName: p.userName });
    const joseId = await identity(jose);
    const accentId = await identity(joseAccent);
    expect(joseId).not.toBe(accentId);
    await issue(jose, 'sts-credentials', [role('Developer')], {
      expiresInMs: 3600_000,
      sourceIdentity: joseId,
    });
    await issue(joseAccent, 'sts-credentials', [role('Developer')], {
      expiresInMs: 3600_000,
      sourceIdentity: accentId,
    });
    const issuedAt = '2026-03-01T12:00:00Z';
    clock.advance(60_000);
    await revoker.revokeLiveSessions(joseAccent, clock.now(), { reason: 'user deactivated', ctx });

    const policy = await policyOn(role('Developer'));
    const judge = (sourceIdentity: string) =>
      evaluateSession(policy, { sourceIdentity, issuedAt }, { account: ACCOUNT, role: role('Developer') });
    expect(await judge(accentId)).toBe('ExplicitlyDenied');
    expect(await judge(joseId)).toBe('Allowed');
    // What main wrote for both of them (the bare normalised UPN) is not what the deny names.
    expect(Object.keys(denied(policy))).toEqual([accentId]);
    const marked = await store.db
      .selectFrom('issued_credentials')
      .select(['user_id', 'revoked_at'])
      .execute();
    expect(Object.fromEntries(marked.map((r) => [r.user_id, r.revoked_at !== null]))).toEqual({
      'u-jose': false,
      'u-jose-accent': true,
    });
  });

  it('GovCloud: writes the deny on the role in the aws-us-gov partition, where issuance reached it', async () => {
    const accounts = new AwsAccounts(store, clock);
    await accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1', partition: 'aws-us-gov' });
    const name = role('GovDeveloper');
    await accounts.upsertRole(ctx, ACCOUNT, { name, maxSessionDuration: 3600 });
    // The role exists only in the GovCloud partition (moto keeps IAM per partition, as AWS does).
    const gov = new IAMClient({
      endpoint: aws.endpoint,
      region: 'us-gov-west-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    try {
      const created = await gov.send(
        new CreateRoleCommand({
          RoleName: name,
          AssumeRolePolicyDocument: TRUST.replace('arn:aws:', 'arn:aws-us-gov:'),
        }),
      );
      const govArn = `arn:aws-us-gov:iam::${ACCOUNT}:role/${name}`;
      expect(created.Role!.Arn).toBe(govArn);
      await issue(ALICE, 'sts-credentials', [name], { expiresInMs: 3600_000 });
      await issue(BOB, 'sts-credentials', [name], { expiresInMs: 3600_000 });
      clock.advance(60_000);

      // On main the revoker ignored the partition: it asked the commercial IAM, found no such role, and failed.
      const report = await revoker.revokeLiveSessions(ALICE, clock.now(), {
        reason: 'user deactivated',
        ctx,
      });
      expect(report.roles.map((r) => [r.roleArn, r.outcome])).toEqual([[govArn, 'revoked']]);
      expect((await auditOf('aws.sessions-revoked')).map((d) => d['roleArn'])).toEqual([govArn]);
      const out = await gov.send(
        new GetRolePolicyCommand({ RoleName: name, PolicyName: REVOCATION_POLICY_NAME }),
      );
      const policy = JSON.parse(decodeURIComponent(out.PolicyDocument!)) as RevocationPolicyDocument;
      expect(Object.keys(denied(policy))).toEqual([ALICE.userName]);
      expect(await policyOn(name)).toBeNull(); // nothing written in the commercial partition

      const judge = (sourceIdentity: string) =>
        evaluateSession(
          policy,
          { sourceIdentity, issuedAt: '2026-03-01T12:00:00Z' },
          { account: ACCOUNT, role: name, partition: 'aws-us-gov' },
        );
      expect(await judge(ALICE.userName)).toBe('ExplicitlyDenied');
      expect(await judge(BOB.userName)).toBe('Allowed');
    } finally {
      gov.destroy();
    }
  });

  it('refuses to pretend for credentials issued without a SourceIdentity: audited, not marked revoked', async () => {
    await issue(ALICE, 'sts-credentials', [role('Developer')], {
      expiresInMs: 3600_000,
      sourceIdentity: null,
    });
    const report = await revoker.revokeLiveSessions(ALICE, clock.now(), { reason: 'user deactivated', ctx });
    expect(report).toMatchObject({ roles: [], unnarrowable: 1, credentialsRevoked: 0 });
    expect(await policyOn(role('Developer'))).toBeNull();
    expect((await auditOf('aws.sessions-revoke-failed'))[0]!['error']).toMatch(/without a SourceIdentity/);
  });
});
