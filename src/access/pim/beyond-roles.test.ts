import {
  CreatePermissionSetCommand,
  ListAccountAssignmentsCommand,
  ListInstancesCommand,
  SSOAdminClient,
} from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import {
  type IdentityCenterScimServer,
  startIdentityCenterScim,
} from '../../../test/support/identity-center-scim.js';
import { type LocalAws, startLocalAws } from '../../../test/support/local-aws.js';
import type { AuditContext } from '../../audit/actor.js';
import { NoIdentityCenterUser } from '../../aws/identity-center/pim-assignments.js';
import { ManualClock } from '../../clock.js';
import { InvalidInput } from '../../errors.js';
import { principalOf } from '../../identity/principal-of.js';
import type { ActivationRules } from './eligibilities.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };
const HOUR = 3600;

let aws: LocalAws;
let sso: SSOAdminClient;
let instanceArn: string;

beforeAll(async () => {
  aws = await startLocalAws();
  sso = new SSOAdminClient({
    region: aws.region,
    endpoint: aws.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  instanceArn = (await sso.send(new ListInstancesCommand({}))).Instances![0]!.InstanceArn!;
}, 60_000);
afterAll(async () => {
  sso?.destroy();
  await aws?.stop();
});

/** USER assignments of the permission set in the account, as Identity Center lists them. */
async function userAssignments(account: string, permissionSetArn: string): Promise<string[]> {
  const res = await sso.send(
    new ListAccountAssignmentsCommand({
      InstanceArn: instanceArn,
      AccountId: account,
      PermissionSetArn: permissionSetArn,
    }),
  );
  return (res.AccountAssignments ?? []).filter((a) => a.PrincipalType === 'USER').map((a) => a.PrincipalId!);
}

const rules = (over: Partial<ActivationRules> = {}): ActivationRules => ({
  maxDuration: HOUR,
  requireJustification: true,
  requireTicket: false,
  requireMfa: false,
  approvers: [],
  approvalsRequired: 0,
  autoApprove: null,
  ...over,
});

describe.each(ENGINES)('PIM beyond IAM roles on %s', (engine) => {
  let ferry: TestFerry;
  let scim: IdentityCenterScimServer;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let seq = 0;
  const unique = (p: string) => `${p}${engine === 'sqlite' ? 's' : 'p'}${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      clock,
      config: { aws: { endpoint: aws.endpoint, region: aws.region } },
    });
    scim = await startIdentityCenterScim();
    await ferry.services.identityCenter.targets.set(ctx, { endpoint: scim.endpoint, token: scim.token });
  }, 60_000);
  afterAll(async () => {
    await scim?.close();
    await ferry?.close();
  });

  const drain = () => ferry.workers.drainOnce();
  const as = (u: { id: string }, amr = ['pwd', 'otp']) =>
    principalOf(ferry.services.store.db, u.id, { amr, authTime: null });

  /** A developer (pushed to Identity Center by the SCIM handlers), their group, an account. */
  async function world(options: { pushed?: boolean } = {}) {
    const s = ferry.services;
    const accountId = String(300000000000 + ++seq);
    await s.accounts.upsert(ctx, { id: accountId, alias: unique('Acct') });
    const devs = await s.groups.create(ctx, { displayName: unique('Devs') });
    const admins = await s.groups.create(ctx, { displayName: unique('Admins') });
    const dev = await s.users.create(ctx, { userName: `${unique('dev')}@contoso.example` });
    await s.groups.setMembership(ctx, devs.id, dev.id, true);
    const admin = await s.users.create(ctx, { userName: `${unique('admin')}@contoso.example` });
    await s.groups.setMembership(ctx, admins.id, admin.id, true);
    if (options.pushed !== false) await drain();
    else {
      // the SCIM push has not run yet: drop what the outbox holds for Identity Center
      await s.store.db.deleteFrom('outbox').where('processed_at', 'is', null).execute();
    }
    const principal = { type: 'group' as const, id: devs.id, name: devs.displayName };
    return { s, accountId, devs, admins, dev, admin, principal };
  }

  async function permissionSet(sessionDuration = 'PT1H') {
    const name = unique('Elevated');
    const res = await sso.send(
      new CreatePermissionSetCommand({
        InstanceArn: instanceArn,
        Name: name,
        SessionDuration: sessionDuration,
      }),
    );
    return { name, arn: res.PermissionSet!.PermissionSetArn! };
  }

  it("activating a permission set creates the person's account assignment; expiry deletes it, confirmed and audited", async () => {
    const w = await world();
    const ps = await permissionSet();
    const target = `aws:${w.accountId}/permission-set/${ps.name}`;
    const { eligibility } = await w.s.eligibilities.setTarget(ctx, w.principal, target, rules());
    expect(eligibility).toMatchObject({ kind: 'permission-set', target });
    const remoteId = scim.userByName(w.dev.userName)!.id;

    const before = await w.s.access.decide(
      await as(w.dev),
      { kind: 'permission-set', account: w.accountId, name: ps.name },
      cli,
    );
    expect(before.effect).toBe('deny');

    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target,
      durationSeconds: HOUR,
      justification: 'incident 42',
    });
    expect(a).toMatchObject({ state: 'active', kind: 'permission-set', effect: { state: 'pending' } });
    expect(a.openSessions).toMatch(/session duration/);
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([]);
    await drain();
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([remoteId]);
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'applied' });

    const during = await w.s.access.decide(
      await as(w.dev),
      { kind: 'permission-set', account: w.accountId, name: ps.name },
      cli,
    );
    expect(during).toMatchObject({ effect: 'allow', maxDuration: HOUR });
    expect(during.reasons[0]).toMatchObject({ source: 'activation', ref: a.id });

    // Replayed delivery: still one assignment.
    await ferry.services.pimAssignments.handle({
      type: 'pim.account-assignment-requested',
      activationId: a.id,
      action: 'create',
      userId: w.dev.id,
      userName: w.dev.userName,
      account: w.accountId,
      permissionSet: ps.name,
    });
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([remoteId]);

    clock.advance(HOUR * 1000);
    const after = await w.s.access.decide(
      await as(w.dev),
      { kind: 'permission-set', account: w.accountId, name: ps.name },
      cli,
    );
    expect(after.effect).toBe('deny'); // at the exact end, before the scheduler ran
    expect((await w.s.activations.runDue()).expired).toBeGreaterThanOrEqual(1);
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'removing' });
    await drain();
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([]);
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'removed' });

    const audit = await w.s.store.db
      .selectFrom('audit_events')
      .select(['type', 'outcome', 'data'])
      .where('type', 'like', 'pim.activation.assignment-%')
      .orderBy('seq')
      .execute();
    const mine = audit.filter((e) => JSON.parse(e.data).activationId === a.id);
    expect(mine.map((e) => e.type)).toEqual([
      'pim.activation.assignment-created',
      'pim.activation.assignment-deleted',
    ]);
    expect(JSON.parse(mine[0]!.data)).toMatchObject({ principalId: remoteId, permissionSetArn: ps.arn });
  });

  it('revoking ("end now") deletes the assignment; a standing direct assignment is never taken away', async () => {
    const w = await world();
    const ps = await permissionSet();
    const target = `aws:${w.accountId}/permission-set/${ps.name}`;
    await w.s.eligibilities.setTarget(ctx, w.principal, target, rules());
    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target,
      durationSeconds: HOUR,
      justification: 'x',
    });
    await drain();
    const remoteId = scim.userByName(w.dev.userName)!.id;
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([remoteId]);
    const revoked = await w.s.activations.revoke(ctx, await as(w.dev), a.id, 'done');
    expect(revoked).toMatchObject({ state: 'revoked', effect: { state: 'removing' } });
    await drain();
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([]);

    // Already assigned directly (not by Ferry's activation): the activation keeps it, and its end too.
    await ferry.services.pimAssignments.handle({
      type: 'pim.account-assignment-requested',
      activationId: a.id,
      action: 'delete',
      userId: w.dev.id,
      userName: w.dev.userName,
      account: w.accountId,
      permissionSet: ps.name,
    });
    const { CreateAccountAssignmentCommand } = await import('@aws-sdk/client-sso-admin');
    await sso.send(
      new CreateAccountAssignmentCommand({
        InstanceArn: instanceArn,
        TargetId: w.accountId,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: ps.arn,
        PrincipalType: 'USER',
        PrincipalId: remoteId,
      }),
    );
    const b = await w.s.activations.request(ctx, await as(w.dev), {
      target,
      durationSeconds: HOUR,
      justification: 'y',
    });
    await drain();
    expect((await w.s.activations.get(b.id)).effect).toMatchObject({ state: 'kept' });
    await w.s.activations.revoke(ctx, null, b.id, 'admin');
    await drain();
    expect(await userAssignments(w.accountId, ps.arn)).toEqual([remoteId]);
  });

  it('a failed assignment is visible on the activation and retried until it succeeds', async () => {
    const w = await world();
    const ps = await permissionSet();
    const target = `aws:${w.accountId}/permission-set/${ps.name}`;
    await w.s.eligibilities.setTarget(ctx, w.principal, target, rules());
    // Someone deletes the permission set in the console after the eligibility was set.
    const { DeletePermissionSetCommand } = await import('@aws-sdk/client-sso-admin');
    await sso.send(new DeletePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: ps.arn }));
    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target,
      durationSeconds: HOUR,
      justification: 'x',
    });
    await drain();
    const failed = await w.s.activations.get(a.id);
    expect(failed.effect).toMatchObject({
      state: 'failed',
      detail: expect.stringContaining(`no permission set ${ps.name}`),
    });
    const pending = await w.s.store.db
      .selectFrom('outbox')
      .select(['payload', 'last_error', 'processed_at'])
      .where('type', '=', 'pim.account-assignment-requested')
      .where('processed_at', 'is', null)
      .execute();
    expect(pending.filter((e) => JSON.parse(e.payload).activationId === a.id)).toHaveLength(1);
    const audit = await w.s.store.db
      .selectFrom('audit_events')
      .select(['outcome', 'data'])
      .where('type', '=', 'pim.activation.assignment-failed')
      .execute();
    expect(audit.filter((e) => JSON.parse(e.data).activationId === a.id)[0]).toMatchObject({
      outcome: 'failure',
    });

    // Put back (same name): the next retry assigns it.
    const again = await sso.send(
      new CreatePermissionSetCommand({ InstanceArn: instanceArn, Name: ps.name, SessionDuration: 'PT1H' }),
    );
    clock.advance(2_000);
    await drain();
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'applied' });
    expect(await userAssignments(w.accountId, again.PermissionSet!.PermissionSetArn!)).toEqual([
      scim.userByName(w.dev.userName)!.id,
    ]);
    await w.s.activations.revoke(ctx, null, a.id, null);
    await drain();
    expect(await userAssignments(w.accountId, again.PermissionSet!.PermissionSetArn!)).toEqual([]);
  });

  it('refuses a person with no Identity Center user yet, and a permission set whose sessions outlast the activation', async () => {
    const w = await world({ pushed: false });
    const ps = await permissionSet();
    const target = `aws:${w.accountId}/permission-set/${ps.name}`;
    await w.s.eligibilities.setTarget(ctx, w.principal, target, rules());
    const err = await w.s.activations
      .request(ctx, await as(w.dev), { target, durationSeconds: HOUR, justification: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoIdentityCenterUser);
    expect((err as NoIdentityCenterUser).code).toBe('identity-center-user-missing');
    expect(await w.s.activations.list({ userId: w.dev.id })).toEqual([]);

    const long = await permissionSet('PT8H');
    await expect(
      w.s.eligibilities.setTarget(
        ctx,
        w.principal,
        `aws:${w.accountId}/permission-set/${long.name}`,
        rules(),
      ),
    ).rejects.toThrow(/SessionDuration 28800s, longer than the eligibility's maxDuration 3600s/);
    await expect(
      w.s.eligibilities.setTarget(ctx, w.principal, `aws:${w.accountId}/permission-set/NoSuchSet`, rules()),
    ).rejects.toBeInstanceOf(InvalidInput);
    await expect(
      w.s.eligibilities.setTarget(ctx, w.principal, `aws:${w.accountId}/permission-set/bad name!`, rules()),
    ).rejects.toThrow(/breaks Identity Center's rule/);
  });

  it("a group activation is a membership until its end: the group's access follows, SCIM push sees it, expiry removes it", async () => {
    const w = await world();
    const elevated = await w.s.groups.create(ctx, { displayName: unique('Breakglass') });
    await w.s.accounts.upsertRole(ctx, w.accountId, { name: 'Administrator', maxSessionDuration: 43200 });
    await w.s.assignments.add(
      ctx,
      { type: 'group', id: elevated.id, name: elevated.displayName },
      w.accountId,
      'Administrator',
    );
    await drain();
    const role = { kind: 'aws-role' as const, account: w.accountId, role: 'Administrator' };
    expect((await w.s.access.decide(await as(w.dev), role, cli)).effect).toBe('deny');

    await w.s.eligibilities.setTarget(
      ctx,
      w.principal,
      `group:${elevated.displayName}`,
      rules({
        approvers: [{ type: 'group', id: w.admins.id, name: w.admins.displayName }],
        approvalsRequired: 1,
      }),
    );
    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target: `group:${elevated.displayName}`,
      durationSeconds: HOUR,
      justification: 'on call',
    });
    expect(a.state).toBe('requested');
    await w.s.activations.approve(ctx, await as(w.admin), a.id, null);
    await drain();
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'applied' });
    expect((await as(w.dev)).groups.map((g) => g.id)).toContain(elevated.id);
    expect((await w.s.access.decide(await as(w.dev), role, cli)).effect).toBe('allow');
    expect(scim.memberNames(elevated.displayName)).toEqual([w.dev.userName]);

    clock.advance(HOUR * 1000);
    await w.s.activations.runDue();
    await drain();
    expect((await as(w.dev)).groups.map((g) => g.id)).not.toContain(elevated.id);
    expect((await w.s.access.decide(await as(w.dev), role, cli)).effect).toBe('deny');
    expect(scim.memberNames(elevated.displayName)).toEqual([]);
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({ state: 'removed' });

    // A standing member activating the same group: nothing added, and the end takes nothing away.
    await w.s.groups.setMembership(ctx, elevated.id, w.dev.id, true);
    const b = await w.s.activations.request(ctx, await as(w.dev), {
      target: `group:${elevated.displayName}`,
      durationSeconds: HOUR,
      justification: 'again',
    });
    await w.s.activations.approve(ctx, await as(w.admin), b.id, null);
    await drain();
    expect((await w.s.activations.get(b.id)).effect).toMatchObject({ state: 'kept' });
    await w.s.activations.revoke(ctx, null, b.id, null);
    await drain();
    expect((await as(w.dev)).groups.map((g) => g.id)).toContain(elevated.id);
  });

  it('a group activation stops counting at expiresAt exactly, and its removal is due then, not at the next scheduler run', async () => {
    const w = await world();
    const elevated = await w.s.groups.create(ctx, { displayName: unique('OnCall') });
    await w.s.accounts.upsertRole(ctx, w.accountId, { name: 'OnCall', maxSessionDuration: 43200 });
    await w.s.assignments.add(
      ctx,
      { type: 'group', id: elevated.id, name: elevated.displayName },
      w.accountId,
      'OnCall',
    );
    await w.s.eligibilities.setTarget(ctx, w.principal, `group:${elevated.displayName}`, rules());
    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target: `group:${elevated.displayName}`,
      durationSeconds: HOUR,
      justification: 'incident',
    });
    expect(a.state).toBe('active');
    await drain();
    const role = { kind: 'aws-role' as const, account: w.accountId, role: 'OnCall' };
    const expiresAt = Date.parse((await w.s.activations.get(a.id)).expiresAt!);

    clock.set(new Date(expiresAt - 1000));
    await drain();
    expect((await w.s.access.decide(await as(w.dev), role, cli)).effect).toBe('allow');
    expect(await w.s.groups.namesOf(w.dev.id)).toContain(elevated.displayName);

    // The instant it ends: no scheduler run yet, and the row not yet removed, yet it counts no more.
    clock.set(new Date(expiresAt));
    expect((await w.s.access.decide(await as(w.dev), role, cli)).effect).toBe('deny');
    expect(await w.s.groups.namesOf(w.dev.id)).not.toContain(elevated.displayName);
    const now = clock.now();
    expect((await principalOf(w.s.store.db, w.dev.id, null, now)).groups.map((g) => g.id)).not.toContain(
      elevated.id,
    );
    expect((await w.s.activations.get(a.id)).state).toBe('active');

    // The removal written at activation is due now: the outbox alone removes it and pushes that.
    await drain();
    expect((await as(w.dev)).groups.map((g) => g.id)).not.toContain(elevated.id);
    expect(scim.memberNames(elevated.displayName)).toEqual([]);
    expect((await w.s.activations.get(a.id)).effect).toMatchObject({
      state: 'removed',
      detail: 'membership removed',
    });

    // The scheduler's end then changes the state and leaves the effect's record as it is.
    await w.s.activations.runDue();
    await drain();
    const ended = await w.s.activations.get(a.id);
    expect(ended.state).toBe('expired');
    expect(ended.effect).toMatchObject({ state: 'removed', detail: 'membership removed' });
  });

  it('an SSH login activation lets decide() allow the login while it lasts, and not after', async () => {
    const w = await world();
    const target = 'ssh:root@*.prod.internal';
    await w.s.eligibilities.setTarget(ctx, w.principal, target, rules({ maxDuration: 1800 }));
    const ssh = { kind: 'ssh' as const, host: 'db1.prod.internal', login: 'root' };
    expect((await w.s.access.decide(await as(w.dev), ssh, cli)).effect).toBe('deny');
    await expect(
      w.s.activations.request(ctx, await as(w.dev), { target, durationSeconds: HOUR, justification: 'x' }),
    ).rejects.toThrow(/at most 1800 seconds/);
    const a = await w.s.activations.request(ctx, await as(w.dev), {
      target,
      durationSeconds: 1800,
      justification: 'x',
    });
    expect(a).toMatchObject({ state: 'active', kind: 'ssh', effect: null, target });
    const during = await w.s.access.decide(await as(w.dev), ssh, cli);
    expect(during).toMatchObject({ effect: 'allow', ssh: { portForwarding: false, agentForwarding: false } });
    expect(during.effect === 'allow' && during.maxDuration).toBeLessThanOrEqual(15 * 60);
    expect(await w.s.access.sshLoginsFor(await as(w.dev), 'db1.prod.internal')).toEqual(['root']);
    // another host, another login: still refused
    expect((await w.s.access.decide(await as(w.dev), { ...ssh, host: 'db1.dev.internal' }, cli)).effect).toBe(
      'deny',
    );
    expect((await w.s.access.decide(await as(w.dev), { ...ssh, login: 'admin' }, cli)).effect).toBe('deny');
    clock.advance(1800 * 1000);
    expect((await w.s.access.decide(await as(w.dev), ssh, cli)).effect).toBe('deny');
    await w.s.activations.runDue();
    expect((await w.s.activations.get(a.id)).state).toBe('expired');
  });

  it('one approval activates a request once under a burst of approvals, for a permission set and a group', async () => {
    const w = await world();
    const ps = await permissionSet();
    const admins = [w.admin];
    for (let i = 0; i < 4; i++) {
      const u = await w.s.users.create(ctx, { userName: `${unique('appr')}@contoso.example` });
      await w.s.groups.setMembership(ctx, w.admins.id, u.id, true);
      admins.push(u);
    }
    const elevated = await w.s.groups.create(ctx, { displayName: unique('Ops') });
    const approval = rules({
      approvers: [{ type: 'group', id: w.admins.id, name: w.admins.displayName }],
      approvalsRequired: 1,
    });
    for (const target of [`aws:${w.accountId}/permission-set/${ps.name}`, `group:${elevated.displayName}`]) {
      await w.s.eligibilities.setTarget(ctx, w.principal, target, approval);
      const a = await w.s.activations.request(ctx, await as(w.dev), {
        target,
        durationSeconds: HOUR,
        justification: 'x',
      });
      const results = await Promise.allSettled(
        admins.map(async (u) => w.s.activations.approve(ctx, await as(u), a.id, null)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const final = await w.s.activations.get(a.id);
      expect(final).toMatchObject({ state: 'active', effect: { state: 'pending' } });
      expect(final.approvals).toHaveLength(1);
      const effects = await w.s.store.db
        .selectFrom('outbox')
        .select('payload')
        .where('type', 'in', ['pim.account-assignment-requested', 'pim.group-membership-requested'])
        .execute();
      const mine = effects.map((e) => JSON.parse(e.payload)).filter((e) => e.activationId === a.id);
      // one begin; a group's activation also writes its end, due at expiresAt
      expect(mine.filter((e) => e.action === 'create' || e.action === 'add')).toHaveLength(1);
      expect(mine.filter((e) => e.action === 'delete' || e.action === 'remove')).toHaveLength(
        target.startsWith('group:') ? 1 : 0,
      );
      // a second request for the same target while this one is open is refused
      await expect(
        w.s.activations.request(ctx, await as(w.dev), { target, durationSeconds: HOUR, justification: 'x' }),
      ).rejects.toThrow(/already has activation/);
    }
  });
});
