import { CreateGroupCommand, IdentitystoreClient } from '@aws-sdk/client-identitystore';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import {
  DeleteAccountAssignmentCommand,
  DescribePermissionSetCommand,
  GetInlinePolicyForPermissionSetCommand,
  ListAccountAssignmentsCommand,
  ListInstancesCommand,
  ListManagedPoliciesInPermissionSetCommand,
  ListPermissionSetsCommand,
  SSOAdminClient,
  UpdatePermissionSetCommand,
} from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { type LocalAws, startLocalAws } from '../../../test/support/local-aws.js';
import { type SsoAdminStandIn, startSsoAdminStandIn } from '../../../test/support/sso-admin-stand-in.js';
import type { Principal } from '../../access/principal.js';
import type { AuditContext } from '../../audit/actor.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const READ_ONLY = 'arn:aws:iam::aws:policy/ReadOnlyAccess';
const INLINE = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Deny', Action: 's3:DeleteBucket', Resource: '*' }],
};

/**
 * Permission sets as code end to end: Ferry's admin API and tenant file on one side, moto's IAM Identity
 * Center and Organizations (behind the sso-admin stand-in for what moto lacks) on the other, through the
 * AWS SDK both ways.
 */
describe.each(ENGINES)('IAM Identity Center permission sets against the local AWS (%s)', (engine) => {
  let moto: LocalAws;
  let aws: SsoAdminStandIn;
  let ferry: TestFerry;
  let sso: SSOAdminClient;
  let orgs: OrganizationsClient;
  let instanceArn: string;
  let prodOu: string;
  let prodAccount: string;
  let sandboxOu: string;
  let developers: string; // the Identity Center group id

  const sdk = () => ({
    region: moto.region,
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const api = async (path: string, method = 'GET', body?: unknown) => {
    const res = await ferry.api(path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text.trim().split('\n').at(-1)!) : null, text };
  };
  const plan = async () =>
    (await api('/api/v1/identity-center/permission-sets/plan')).body as {
      steps: Array<{ action: string; kind: string; name: string; drift: boolean; details: string[] }>;
      problems: Array<{ name: string; error: string }>;
    };
  const sync = async () => {
    const res = await api('/api/v1/identity-center/permission-sets/apply', 'POST');
    const lines = res.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]!.type).toBe('plan');
    return lines.at(-1) as {
      type: string;
      applied: Array<{ action: string; kind: string; name: string; ok: boolean; error?: string }>;
      problems: Array<{ name: string; error: string }>;
    };
  };
  const arnOf = async (name: string) => {
    const list = await sso.send(new ListPermissionSetsCommand({ InstanceArn: instanceArn }));
    for (const arn of list.PermissionSets ?? []) {
      const d = await sso.send(
        new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
      );
      if (d.PermissionSet?.Name === name) return arn;
    }
    return null;
  };
  const assignedIn = async (account: string, set: string) => {
    const arn = await arnOf(set);
    if (!arn) return [];
    const res = await sso.send(
      new ListAccountAssignmentsCommand({
        InstanceArn: instanceArn,
        AccountId: account,
        PermissionSetArn: arn,
      }),
    );
    return (res.AccountAssignments ?? []).map((a) => a.PrincipalId);
  };
  const tenant = (extra: Record<string, unknown> = {}) => ({
    groups: [{ name: 'AWS-Account1-Developers' }],
    accounts: [{ id: '123456789012', alias: 'Account1' }],
    permissionSets: [
      {
        name: 'ReadOnly',
        description: 'Read-only access',
        sessionDuration: '4h',
        managedPolicies: [READ_ONLY],
        inlinePolicy: INLINE,
        permissionsBoundary: { managedPolicyArn: 'arn:aws:iam::aws:policy/PowerUserAccess' },
      },
    ],
    permissionSetAssignments: [
      { group: 'AWS-Account1-Developers', account: 'Account1', permissionSet: 'ReadOnly' },
      { group: 'AWS-Account1-Developers', ou: '/Root/Workloads', permissionSet: 'ReadOnly' },
    ],
    ...extra,
  });
  const applyTenant = async (document: unknown, options: { dryRun?: boolean; prune?: boolean } = {}) =>
    api('/api/v1/tenant/apply', 'POST', { document, ...options });

  beforeAll(async () => {
    moto = await startLocalAws();
    aws = await startSsoAdminStandIn(moto);
    ferry = await startTestFerry(engine, {
      config: { aws: { endpoint: aws.endpoint, region: moto.region } },
    });
    sso = new SSOAdminClient(sdk());
    orgs = new OrganizationsClient(sdk());
    const instance = (await sso.send(new ListInstancesCommand({}))).Instances![0]!;
    instanceArn = instance.InstanceArn!;
    const store = new IdentitystoreClient(sdk());
    developers = (
      await store.send(
        new CreateGroupCommand({
          IdentityStoreId: instance.IdentityStoreId!,
          DisplayName: 'AWS-Account1-Developers',
        }),
      )
    ).GroupId!;
    store.destroy();
    await orgs.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    const root = (await orgs.send(new ListRootsCommand({}))).Roots![0]!.Id!;
    prodOu = (await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'Workloads' })))
      .OrganizationalUnit!.Id!;
    sandboxOu = (await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'Sandbox' })))
      .OrganizationalUnit!.Id!;
    const created = await orgs.send(
      new CreateAccountCommand({ AccountName: 'Prod App', Email: 'prod@contoso.example' }),
    );
    prodAccount = created.CreateAccountStatus!.AccountId!;
    await orgs.send(
      new MoveAccountCommand({ AccountId: prodAccount, SourceParentId: root, DestinationParentId: prodOu }),
    );
  }, 120_000);
  afterAll(async () => {
    sso?.destroy();
    orgs?.destroy();
    await ferry?.close();
    await aws?.stop();
    await moto?.stop();
  });

  it('discovers the organization: registers its accounts with their names and records OU paths', async () => {
    const res = await api('/api/v1/aws/discover', 'POST');
    expect(res.status, res.text).toBe(200);
    expect(res.body.managementAccountId).toBe('123456789012');
    expect(res.body.accounts).toContainEqual(
      expect.objectContaining({
        id: prodAccount,
        alias: 'Prod-App',
        ouPath: '/Root/Workloads',
        status: 'ACTIVE',
      }),
    );
    expect((await ferry.services.accounts.get(prodAccount)).alias).toBe('Prod-App');
  });

  it('refuses a permission set AWS would refuse before any call, naming the rule', async () => {
    const before = aws.seen.length;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: 'Read Only' }, /name: must match \[\\w\+=,\.@-\]\{1,32\}/],
      [{ name: 'A'.repeat(33) }, /name: must match/],
      [{ name: 'Short', sessionDuration: 'PT30M' }, /sessionDuration: must be between PT1H and PT12H/],
      [{ name: 'Long', sessionDuration: 'P1D' }, /sessionDuration: must be an ISO-8601 duration/],
      [{ name: 'Bad', inlinePolicy: '{"Version":' }, /inlinePolicy: is not valid JSON/],
      [
        {
          name: 'Bad',
          inlinePolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*' }] },
        },
        /needs exactly one of Resource or NotResource/,
      ],
      [
        {
          name: 'Bad',
          inlinePolicy: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Principal: '*' }],
          },
        },
        /Principal is not allowed/,
      ],
      [
        {
          name: 'Big',
          inlinePolicy: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'x'.repeat(33_000), Resource: '*' }],
          },
        },
        /at most 32768/,
      ],
      [
        { name: 'Bad', managedPolicies: ['arn:aws:iam::123456789012:policy/Mine'] },
        /not an AWS managed policy ARN/,
      ],
      [
        {
          name: 'Many',
          managedPolicies: Array.from({ length: 21 }, (_, i) => `arn:aws:iam::aws:policy/P${i}`),
        },
        /at most 20 per permission set/,
      ],
    ];
    for (const [ps, rule] of cases) {
      const res = await applyTenant({ permissionSets: [ps] });
      expect(res.status, JSON.stringify(ps)).toBe(400);
      expect(res.body.type).toBe('https://ferry.dev/problems/invalid-input');
      expect(res.body.detail).toMatch(rule);
    }
    expect(aws.seen.length).toBe(before);
    expect(await ferry.services.permissionSets.list()).toEqual([]);
  });

  it('refuses assignments to an unknown account, OU or group by name', async () => {
    for (const [a, word] of [
      [
        { group: 'AWS-Account1-Developers', account: '999999999999', permissionSet: 'ReadOnly' },
        'unknown account 999999999999',
      ],
      [
        { group: 'AWS-Account1-Developers', ou: 'ou-abcd-12345678', permissionSet: 'ReadOnly' },
        'unknown organizational unit ou-abcd-12345678',
      ],
      [{ group: 'Nobody', account: 'Account1', permissionSet: 'ReadOnly' }, 'unknown group Nobody'],
    ] as const) {
      const res = await applyTenant(tenant({ permissionSetAssignments: [a] }));
      expect(res.status).toBe(400);
      expect(res.body.detail).toContain(word);
    }
  });

  it('dry run shows the diff against Identity Center; apply creates, assigns via account and OU; a re-run is a no-op', async () => {
    const dry = await applyTenant(tenant(), { dryRun: true });
    expect(dry.status, dry.text).toBe(200);
    const names = dry.body.changes.map((c: { kind: string; name: string }) => `${c.kind} ${c.name}`);
    expect(names, JSON.stringify(dry.body)).toContain('iic-permission-set ReadOnly');
    expect(await arnOf('ReadOnly')).toBeNull();

    const applied = await applyTenant(tenant());
    expect(applied.body.identityCenter.syncNeeded).toBe(true);
    const result = await sync();
    expect(
      result.applied.every((s) => s.ok),
      JSON.stringify(result),
    ).toBe(true);
    expect(result.applied.map((s) => `${s.action} ${s.kind}`)).toEqual([
      'create permission-set',
      'create account-assignment',
      'create account-assignment',
    ]);
    const arn = (await arnOf('ReadOnly'))!;
    const d = await sso.send(
      new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
    );
    expect(d.PermissionSet).toMatchObject({ SessionDuration: 'PT4H', Description: 'Read-only access' });
    const managed = await sso.send(
      new ListManagedPoliciesInPermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
    );
    expect(managed.AttachedManagedPolicies?.map((p) => p.Arn)).toEqual([READ_ONLY]);
    const inline = await sso.send(
      new GetInlinePolicyForPermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
    );
    expect(JSON.parse(inline.InlinePolicy!)).toEqual(INLINE);
    expect(aws.seen).toContain('PutPermissionsBoundaryToPermissionSet');
    expect(aws.seen).toContain('DescribeAccountAssignmentCreationStatus');
    expect(await assignedIn('123456789012', 'ReadOnly')).toEqual([developers]);
    expect(await assignedIn(prodAccount, 'ReadOnly')).toEqual([developers]);

    const again = await applyTenant(tenant());
    expect(again.body.changes).toEqual([]);
    expect((await sync()).applied).toEqual([]);
    expect((await plan()).steps).toEqual([]);
  });

  it('decides aws:<account>/permission-set/<name> by group, via OU, and denies elsewhere', async () => {
    const group = await ferry.services.groups.get('AWS-Account1-Developers');
    const dev: Principal = {
      kind: 'user',
      id: 'u-dev',
      userName: 'dev@contoso.example',
      active: true,
      groups: [{ id: group.id, name: group.displayName }],
      attributes: {},
      amr: ['pwd', 'otp'],
      authTime: null,
    };
    const signals = { client: 'cli' as const };
    const direct = await ferry.services.access.explain(
      dev,
      { kind: 'permission-set', account: '123456789012', name: 'ReadOnly' },
      signals,
    );
    expect(direct).toMatchObject({ effect: 'allow', maxDuration: 4 * 3600 });
    expect(direct.reasons[0]!.message).toContain(
      'member of AWS-Account1-Developers, which is assigned permission set ReadOnly',
    );
    const viaOu = await ferry.services.access.explain(
      dev,
      { kind: 'permission-set', account: prodAccount, name: 'ReadOnly' },
      signals,
    );
    expect(viaOu.effect).toBe('allow');
    expect(viaOu.reasons[0]!.message).toContain('in /Root/Workloads');
    const other = await ferry.services.access.explain(
      dev,
      { kind: 'permission-set', account: '123456789012', name: 'Admin' },
      signals,
    );
    expect(other).toMatchObject({ effect: 'deny' });
    const stranger = await ferry.services.access.explain(
      { ...dev, groups: [] },
      { kind: 'permission-set', account: '123456789012', name: 'ReadOnly' },
      signals,
    );
    expect(stranger.effect).toBe('deny');
    expect(stranger.reasons[0]!.message).toContain('no assignment gives dev@contoso.example');
  });

  it('detects drift made in the console and reconciles it on the next apply', async () => {
    const arn = (await arnOf('ReadOnly'))!;
    await sso.send(
      new UpdatePermissionSetCommand({
        InstanceArn: instanceArn,
        PermissionSetArn: arn,
        Description: 'Read-only access',
        SessionDuration: 'PT12H',
      }),
    );
    await sso.send(
      new DeleteAccountAssignmentCommand({
        InstanceArn: instanceArn,
        TargetId: '123456789012',
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: arn,
        PrincipalType: 'GROUP',
        PrincipalId: developers,
      }),
    );
    const drift = await plan();
    expect(drift.steps).toEqual([
      expect.objectContaining({
        action: 'update',
        kind: 'permission-set',
        drift: true,
        details: ['sessionDuration PT12H → PT4H'],
      }),
      expect.objectContaining({
        action: 'create',
        kind: 'account-assignment',
        drift: true,
        details: ['deleted outside Ferry'],
      }),
    ]);
    const result = await sync();
    expect(
      result.applied.every((s) => s.ok),
      JSON.stringify(result),
    ).toBe(true);
    expect(aws.seen).toContain('ProvisionPermissionSet');
    expect(await assignedIn('123456789012', 'ReadOnly')).toEqual([developers]);
    expect((await plan()).steps).toEqual([]);
  });

  it('follows an account moving out of the OU: its assignment is removed after discovery', async () => {
    await orgs.send(
      new MoveAccountCommand({
        AccountId: prodAccount,
        SourceParentId: prodOu,
        DestinationParentId: sandboxOu,
      }),
    );
    const res = await api('/api/v1/aws/discover', 'POST');
    expect(res.body.moved).toEqual([
      { accountId: prodAccount, from: '/Root/Workloads', to: '/Root/Sandbox' },
    ]);
    const result = await sync();
    expect(result.applied.map((s) => `${s.action} ${s.name}`)).toEqual([
      `delete ReadOnly → ${prodAccount} ← group:AWS-Account1-Developers`,
    ]);
    expect(await assignedIn(prodAccount, 'ReadOnly')).toEqual([]);
  });

  it('reports a quota exceeded, a failed assignment and a failed provisioning per item, and converges on a re-run', async () => {
    aws.maxPermissionSets = 1;
    aws.accounts = new Set(['123456789012']);
    await ferry.services.accounts.upsert(ctx, { id: '210987654321', alias: 'Outside' });
    const doc = tenant({
      accounts: [
        { id: '123456789012', alias: 'Account1' },
        { id: '210987654321', alias: 'Outside' },
      ],
      permissionSets: [
        ...(tenant().permissionSets as object[]),
        { name: 'Billing', managedPolicies: ['arn:aws:iam::aws:policy/AdministratorAccess'] },
      ],
      permissionSetAssignments: [
        { group: 'AWS-Account1-Developers', account: 'Account1', permissionSet: 'ReadOnly' },
        { group: 'AWS-Account1-Developers', account: 'Outside', permissionSet: 'ReadOnly' },
        { group: 'AWS-Account1-Developers', account: 'Account1', permissionSet: 'Billing' },
      ],
    });
    expect((await applyTenant(doc, { prune: true })).status).toBe(200);
    const first = await sync();
    const failed = first.applied.filter((s) => !s.ok);
    expect(failed.map((s) => s.name)).toEqual([
      'Billing',
      'Billing → 123456789012 ← group:AWS-Account1-Developers',
      'ReadOnly → 210987654321 ← group:AWS-Account1-Developers',
    ]);
    expect(failed[0]!.error).toContain('ServiceQuotaExceededException');
    expect(failed[2]!.error).toContain('Not supported account 210987654321');
    const recorded = await ferry.services.store.db
      .selectFrom('iic_assignments')
      .select(['account_id', 'state'])
      .execute();
    expect(recorded).toContainEqual({ account_id: '210987654321', state: 'failed' });

    // A changed set whose provisioning fails is reported; the next run provisions it again.
    aws.failNextProvisioning = 'Rate exceeded in the member account';
    const changed = {
      ...doc,
      permissionSets: [
        { ...(doc.permissionSets as Array<Record<string, unknown>>)[0], sessionDuration: '8h' },
        (doc.permissionSets as object[])[1],
      ],
    };
    await applyTenant(changed);
    const second = await sync();
    expect(second.applied.find((s) => s.kind === 'permission-set' && s.name === 'ReadOnly')).toMatchObject({
      ok: false,
      error: expect.stringContaining('provisioning failed: Rate exceeded'),
    });

    aws.maxPermissionSets = 500;
    aws.accounts = null;
    const third = await sync();
    expect(third.applied.filter((s) => !s.ok)).toEqual([]);
    expect((await plan()).steps).toEqual([]);
  });

  it('--prune removes what the file no longer names, in Ferry and then in Identity Center', async () => {
    const res = await applyTenant({ permissionSets: [], permissionSetAssignments: [] }, { prune: true });
    expect(res.status, res.text).toBe(200);
    const result = await sync();
    expect(
      result.applied.every((s) => s.ok),
      JSON.stringify(result),
    ).toBe(true);
    expect(await arnOf('ReadOnly')).toBeNull();
    expect(await arnOf('Billing')).toBeNull();
    expect((await plan()).steps).toEqual([]);
  });
});
