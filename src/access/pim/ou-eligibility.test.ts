import { CreateUserCommand, IdentitystoreClient } from '@aws-sdk/client-identitystore';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import {
  CreatePermissionSetCommand,
  ListAccountAssignmentsCommand,
  ListInstancesCommand,
  SSOAdminClient,
} from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { type LocalAws, startLocalAws } from '../../../test/support/local-aws.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { NotFound } from '../../errors.js';
import { principalOf } from '../../identity/principal-of.js';
import { PimForbidden } from './activations.js';
import type { ActivationRules } from './eligibilities.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };
const HOUR = 3600;

const rules = (over: Partial<ActivationRules> = {}): ActivationRules => ({
  maxDuration: HOUR,
  requireJustification: false,
  requireTicket: false,
  requireMfa: false,
  approvers: [],
  approvalsRequired: 0,
  autoApprove: null,
  ...over,
});

/**
 * OUs in PIM and conditional access, against moto's Organizations and Identity Center through the AWS
 * SDK: an eligibility for a permission set in an OU covers the accounts Organizations has in it when the
 * activation is requested; a policy target naming an OU follows an account moving out of it.
 */
let aws: LocalAws;
let sso: SSOAdminClient;
let orgs: OrganizationsClient;
let ids: IdentitystoreClient;
let instanceArn: string;
let identityStoreId: string;
let root: string;
let workloads: string;
let sandbox: string;

const sdk = () => ({
  region: aws.region,
  endpoint: aws.endpoint,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});

beforeAll(async () => {
  aws = await startLocalAws();
  sso = new SSOAdminClient(sdk());
  orgs = new OrganizationsClient(sdk());
  ids = new IdentitystoreClient(sdk());
  const instance = (await sso.send(new ListInstancesCommand({}))).Instances![0]!;
  instanceArn = instance.InstanceArn!;
  identityStoreId = instance.IdentityStoreId!;
  await orgs.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  root = (await orgs.send(new ListRootsCommand({}))).Roots![0]!.Id!;
  workloads = (await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'Workloads' })))
    .OrganizationalUnit!.Id!;
  sandbox = (await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'Sandbox' })))
    .OrganizationalUnit!.Id!;
}, 120_000);
afterAll(async () => {
  sso?.destroy();
  orgs?.destroy();
  ids?.destroy();
  await aws?.stop();
});

async function account(name: string, parent: string): Promise<string> {
  const created = await orgs.send(
    new CreateAccountCommand({ AccountName: name, Email: `${name.toLowerCase()}@contoso.example` }),
  );
  const id = created.CreateAccountStatus!.AccountId!;
  await orgs.send(
    new MoveAccountCommand({ AccountId: id, SourceParentId: root, DestinationParentId: parent }),
  );
  return id;
}

async function userAssignments(accountId: string, permissionSetArn: string): Promise<string[]> {
  const res = await sso.send(
    new ListAccountAssignmentsCommand({
      InstanceArn: instanceArn,
      AccountId: accountId,
      PermissionSetArn: permissionSetArn,
    }),
  );
  return (res.AccountAssignments ?? []).filter((a) => a.PrincipalType === 'USER').map((a) => a.PrincipalId!);
}

describe.each(ENGINES)('OUs in PIM and conditional access on %s', (engine) => {
  let ferry: TestFerry;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  const tag = engine === 'sqlite' ? 's' : 'p';

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      clock,
      config: { aws: { endpoint: aws.endpoint, region: aws.region } },
    });
  }, 60_000);
  afterAll(async () => {
    await ferry?.close();
  });

  const drain = () => ferry.workers.drainOnce();
  const as = (u: { id: string }) =>
    principalOf(ferry.services.store.db, u.id, { amr: ['pwd', 'otp'], authTime: null });
  const discover = async () => {
    const res = await ferry.api('/api/v1/aws/discover', { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as { moved: Array<{ accountId: string; from: string; to: string }> };
  };
  const move = (accountId: string, from: string, to: string) =>
    orgs.send(
      new MoveAccountCommand({ AccountId: accountId, SourceParentId: from, DestinationParentId: to }),
    );

  it('an OU eligibility covers the accounts in the OU at activation time, and creates the assignment in the one asked for', async () => {
    const s = ferry.services;
    const inside = await account(`Inside${tag}`, workloads);
    const outside = await account(`Outside${tag}`, sandbox);
    await discover();
    const name = `OuAdmin${tag}`;
    const ps = await sso.send(
      new CreatePermissionSetCommand({ InstanceArn: instanceArn, Name: name, SessionDuration: 'PT1H' }),
    );
    const psArn = ps.PermissionSet!.PermissionSetArn!;
    const devs = await s.groups.create(ctx, { displayName: `OuDevs${tag}` });
    const dev = await s.users.create(ctx, { userName: `oudev${tag}@contoso.example` });
    await s.groups.setMembership(ctx, devs.id, dev.id, true);
    // Identity Center knows the person from its identity store (no SCIM push record here)
    const icUser = (
      await ids.send(
        new CreateUserCommand({
          IdentityStoreId: identityStoreId,
          UserName: dev.userName,
          DisplayName: 'OU Dev',
          Name: { GivenName: 'OU', FamilyName: 'Dev' },
        }),
      )
    ).UserId!;

    // unknown OU: refused by name
    await expect(
      s.eligibilities.setTarget(
        ctx,
        { type: 'group', id: devs.id, name: devs.displayName },
        `aws:ou/Root/Nowhere/permission-set/${name}`,
        rules(),
      ),
    ).rejects.toBeInstanceOf(NotFound);
    const { eligibility } = await s.eligibilities.setTarget(
      ctx,
      { type: 'group', id: devs.id, name: devs.displayName },
      `aws:ou/Root/Workloads/permission-set/${name}`,
      rules(),
    );
    expect(eligibility.target).toBe(`aws:ou/${workloads}/permission-set/${name}`);
    // the same OU by id is the same eligibility
    const again = await s.eligibilities.setTarget(
      ctx,
      { type: 'group', id: devs.id, name: devs.displayName },
      `aws:ou/${workloads}/permission-set/${name}`,
      rules(),
    );
    expect(again.change).toBe('unchanged');

    // an account outside the OU: not eligible
    await expect(
      s.activations.request(ctx, await as(dev), {
        target: `aws:${outside}/permission-set/${name}`,
        durationSeconds: HOUR,
      }),
    ).rejects.toBeInstanceOf(PimForbidden);
    // naming the OU itself is not an activation target
    await expect(
      s.activations.request(ctx, await as(dev), {
        target: `aws:ou/${workloads}/permission-set/${name}`,
        durationSeconds: HOUR,
      }),
    ).rejects.toThrow(/names one account/);

    const a = await s.activations.request(ctx, await as(dev), {
      target: `aws:${inside}/permission-set/${name}`,
      durationSeconds: HOUR,
    });
    expect(a).toMatchObject({ state: 'active', target: `aws:${inside}/permission-set/${name}` });
    await drain();
    expect((await s.activations.get(a.id)).effect).toMatchObject({ state: 'applied' });
    expect(await userAssignments(inside, psArn)).toEqual([icUser]);
    const target = { kind: 'permission-set' as const, account: inside, name };
    expect((await s.access.decide(await as(dev), target, cli)).effect).toBe('allow');

    // The account moves out: the live activation stands (decided when it was requested), a new one is
    // refused; the account that moved in is covered now.
    await move(inside, workloads, sandbox);
    await move(outside, sandbox, workloads);
    expect((await discover()).moved.map((m) => m.accountId).sort()).toEqual([inside, outside].sort());
    expect((await s.access.decide(await as(dev), target, cli)).effect).toBe('allow');
    await s.activations.revoke(ctx, null, a.id, null);
    await drain();
    expect(await userAssignments(inside, psArn)).toEqual([]);
    await expect(
      s.activations.request(ctx, await as(dev), {
        target: `aws:${inside}/permission-set/${name}`,
        durationSeconds: HOUR,
      }),
    ).rejects.toBeInstanceOf(PimForbidden);
    const b = await s.activations.request(ctx, await as(dev), {
      target: `aws:${outside}/permission-set/${name}`,
      durationSeconds: HOUR,
    });
    expect(b.state).toBe('active');
    await drain();
    expect(await userAssignments(outside, psArn)).toEqual([icUser]);

    // expiry removes it
    clock.advance(HOUR * 1000);
    await s.activations.runDue();
    await drain();
    expect(await userAssignments(outside, psArn)).toEqual([]);
    expect((await s.access.decide(await as(dev), { ...target, account: outside }, cli)).effect).toBe('deny');
    // put them back for the next test
    await move(inside, sandbox, workloads);
    await move(outside, workloads, sandbox);
    await discover();
  });

  it('a conditional access target naming an OU covers the accounts in it (and below), following moves', async () => {
    const s = ferry.services;
    const inside = await account(`Pinside${tag}`, workloads);
    const team = (
      await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: workloads, Name: `Team${tag}` }))
    ).OrganizationalUnit!.Id!;
    const nested = await account(`Pnested${tag}`, team);
    await discover();
    const ops = await s.groups.create(ctx, { displayName: `OuOps${tag}` });
    const op = await s.users.create(ctx, { userName: `ouop${tag}@contoso.example` });
    await s.groups.setMembership(ctx, ops.id, op.id, true);
    for (const acct of [inside, nested]) {
      await s.accounts.upsertRole(ctx, acct, { name: 'Operator', maxSessionDuration: 3600 });
      await s.assignments.add(ctx, { type: 'group', id: ops.id, name: ops.displayName }, acct, 'Operator');
    }
    await expect(
      s.policies.put(ctx, {
        name: `bad-${tag}`,
        state: 'on',
        include: { groups: [ops.displayName] },
        targets: ['aws:ou/'],
        grant: { block: true },
      }),
    ).rejects.toThrow();
    await s.policies.put(ctx, {
      name: `No operators in workloads ${tag}`,
      state: 'on',
      include: { groups: [ops.displayName] },
      targets: ['aws:ou/Root/Workloads/Oper*'],
      grant: { block: true },
    });
    const role = (account: string) => ({ kind: 'aws-role' as const, account, role: 'Operator' });
    const d1 = await s.access.decide(await as(op), role(inside), cli);
    expect(d1.effect).toBe('deny');
    expect(d1.reasons.map((r) => r.message).join(' ')).toContain('aws:ou/Root/Workloads/Oper*');
    // below the OU too
    expect((await s.access.decide(await as(op), role(nested), cli)).effect).toBe('deny');

    // moved out of the OU: the policy no longer covers it once Organizations is read again
    await move(inside, workloads, sandbox);
    expect((await s.access.decide(await as(op), role(inside), cli)).effect).toBe('deny');
    await discover();
    expect((await s.access.decide(await as(op), role(inside), cli)).effect).toBe('allow');
    // the same by OU id
    await s.policies.put(ctx, {
      name: `No operators in sandbox ${tag}`,
      state: 'on',
      include: { groups: [ops.displayName] },
      targets: [`aws:ou/${sandbox}/*`],
      grant: { block: true },
    });
    expect((await s.access.decide(await as(op), role(inside), cli)).effect).toBe('deny');
    await move(inside, sandbox, workloads);
    await discover();
  });
});
