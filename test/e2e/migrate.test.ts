import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddUserToGroupCommand,
  AttachGroupPolicyCommand,
  AttachRolePolicyCommand,
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreateLoginProfileCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  CreateVirtualMFADeviceCommand,
  DeleteAccessKeyCommand,
  DeleteLoginProfileCommand,
  DeleteUserCommand,
  EnableMFADeviceCommand,
  GenerateCredentialReportCommand,
  GetRoleCommand,
  IAMClient,
  ListAccessKeysCommand,
  PutGroupPolicyCommand,
  PutUserPolicyCommand,
  RemoveUserFromGroupCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationPlan } from '../../src/migrate/plan.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

/**
 * The migration planner against moto: IAM built with the AWS CLI, exported the way an operator would,
 * planned with `ferry migrate plan`, applied with `ferry apply`, checked with `ferry access simulate`.
 */
describe('ferry migrate, against moto', () => {
  let aws: LocalAws;
  let iam: IAMClient;
  let dir: string;
  const ACCOUNT = '123456789012';
  const cli = async (args: string[]) => {
    const r = await awsCli(aws, args);
    if (r.code !== 0) throw new Error(`aws ${args.join(' ')}: ${r.stderr}`);
    return r.stdout ? JSON.parse(r.stdout) : null;
  };
  const ferry = (args: string[], env: Record<string, string> = {}) =>
    runFerry(args, { cwd: dir, env, timeoutMs: 60_000 });
  const policy = (Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });
  // moto dates keys and users "now": measure from 100 days on so age rules have something to see.
  const asOf = new Date(Date.now() + 100 * 86_400_000).toISOString().slice(0, 10);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-migrate-'));
    aws = await startLocalAws();
    // IAM is built through the SDK (one process, milliseconds a call); what Ferry reads is exported with
    // the AWS CLI below, as an operator would.
    iam = new IAMClient({
      endpoint: aws.endpoint,
      region: aws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    for (const UserName of ['alice', 'bob', 'ci-bot']) await iam.send(new CreateUserCommand({ UserName }));
    await iam.send(new CreateLoginProfileCommand({ UserName: 'alice', Password: 'Correct-Horse-1' }));
    await iam.send(new CreateLoginProfileCommand({ UserName: 'bob', Password: 'Correct-Horse-2' }));
    const mfa = await iam.send(new CreateVirtualMFADeviceCommand({ VirtualMFADeviceName: 'alice' }));
    await iam.send(
      new EnableMFADeviceCommand({
        UserName: 'alice',
        SerialNumber: mfa.VirtualMFADevice!.SerialNumber!,
        AuthenticationCode1: '123456',
        AuthenticationCode2: '654321',
      }),
    );
    await iam.send(new CreateAccessKeyCommand({ UserName: 'bob' }));
    await iam.send(new CreateAccessKeyCommand({ UserName: 'ci-bot' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'ci-bot',
        PolicyName: 'deploy',
        PolicyDocument: policy([
          { Effect: 'Allow', Action: ['iam:PassRole', 'ec2:RunInstances'], Resource: '*' },
        ]),
      }),
    );
    for (const GroupName of ['Admins', 'Operators', 'Developers'])
      await iam.send(new CreateGroupCommand({ GroupName }));
    await iam.send(
      new AttachGroupPolicyCommand({
        GroupName: 'Admins',
        PolicyArn: 'arn:aws:iam::aws:policy/AdministratorAccess',
      }),
    );
    await iam.send(
      new PutGroupPolicyCommand({
        GroupName: 'Operators',
        PolicyName: 'all',
        PolicyDocument: policy([{ Sid: 'Everything', Effect: 'Allow', Action: '*', Resource: '*' }]),
      }),
    );
    const dev = await iam.send(
      new CreatePolicyCommand({
        PolicyName: 'DeveloperS3',
        PolicyDocument: policy([{ Effect: 'Allow', Action: 's3:*', Resource: '*' }]),
      }),
    );
    await iam.send(new AttachGroupPolicyCommand({ GroupName: 'Developers', PolicyArn: dev.Policy!.Arn! }));
    await iam.send(new AddUserToGroupCommand({ UserName: 'alice', GroupName: 'Admins' }));
    await iam.send(new AddUserToGroupCommand({ UserName: 'bob', GroupName: 'Developers' }));
    await iam.send(
      new CreateRoleCommand({
        RoleName: 'AWSServiceRoleForSupport',
        Path: '/aws-service-role/support.amazonaws.com/',
        AssumeRolePolicyDocument: policy([
          { Effect: 'Allow', Principal: { Service: 'support.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ]),
      }),
    );
    // The same export as the CLI's default paging gives (checked byte for byte), in 2 requests instead of 15.
    writeFileSync(
      join(dir, 'auth.json'),
      JSON.stringify(await cli(['iam', 'get-account-authorization-details', '--page-size', '1000'])),
    );
    // moto answers STARTED first, then COMPLETE, like AWS does after a few seconds.
    await iam.send(new GenerateCredentialReportCommand({}));
    await iam.send(new GenerateCredentialReportCommand({}));
    writeFileSync(join(dir, 'report.json'), JSON.stringify(await cli(['iam', 'get-credential-report'])));
    // moto loads AWS's ~1,500 managed policies on the first IAM call: tens of seconds on a loaded machine.
  }, 300_000);

  afterAll(async () => {
    iam?.destroy();
    await aws?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let plan: MigrationPlan;
  it('plans from the exported files: findings, merged roles, reports, tenant file, checklist', async () => {
    const r = await ferry([
      'migrate',
      'plan',
      '--input',
      'auth.json',
      '--credential-report',
      'report.json',
      '--account-alias',
      'Account1',
      '--as-of',
      asOf,
      '--out',
      'plan.json',
      '--out',
      'plan.html',
      '--out',
      'plan.md',
      '--tenant-out',
      'tenant.yaml',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'account Account1 (123456789012): 3 users, 3 groups, 1 roles → 3 proposed roles',
    );
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
    const rules = plan.findings.map((f) => `${f.rule} ${f.subject}`);
    expect(rules).toContain('user-no-mfa user/bob');
    expect(rules).not.toContain('user-no-mfa user/alice'); // moto reports the MFA device enabled above
    expect(rules).toContain('administrator user/alice');
    expect(rules).toContain('escalation:passrole-ec2 user/ci-bot');
    expect(rules).toContain('service-account user/ci-bot');
    expect(rules).toContain('access-key-old user/bob');
    expect(rules).not.toContain('escalation:passrole-ec2 user/bob');
    // moto's report has no <root_account> row, so no root finding can be made from it (AWS's always has one).
    expect(rules.filter((x) => x.endsWith(' root'))).toEqual([]);
    const a = plan.accounts[0]!;
    expect(a.inventory.roles[0]).toMatchObject({ name: 'AWSServiceRoleForSupport', serviceLinked: true });
    const admin = a.roles.find((x) => x.name === 'Administrator')!;
    expect(admin.replaces).toEqual([
      { source: 'group/Admins', equivalence: 'first' },
      { source: 'group/Operators', equivalence: 'simulated' },
    ]);
    expect(a.users.find((u) => u.user === 'bob')).toMatchObject({
      state: 'mapped',
      directoryGroups: ['AWS-Account1-Developers'],
    });
    expect(readFileSync(join(dir, 'plan.html'), 'utf8')).toContain('<svg');
    expect(readFileSync(join(dir, 'plan.md'), 'utf8')).toContain('| AWS-Account1-Developers | Developers |');
    expect(readFileSync(join(dir, 'tenant.yaml'), 'utf8')).toContain('group: AWS-Account1-Administrator');
  }, 60_000);

  it('reads the same account live through the SDK (--live --endpoint-url)', async () => {
    const r = await ferry([
      'migrate',
      'plan',
      '--live',
      '--endpoint-url',
      aws.endpoint,
      '--account-alias',
      'Account1',
      '--as-of',
      asOf,
      '--out',
      'live.json',
      '--state',
      'live-state.json',
    ]);
    expect(r.stderr).not.toContain('[#'); // stderr is not a TTY here: no progress bar
    expect(r.code).toBe(0);
    const live: MigrationPlan = JSON.parse(readFileSync(join(dir, 'live.json'), 'utf8'));
    expect(live.accounts[0]!.roles.map((x) => x.name).sort()).toEqual(
      plan.accounts[0]!.roles.map((x) => x.name).sort(),
    );
    expect(live.findings.map((f) => f.rule).sort()).toEqual(plan.findings.map((f) => f.rule).sort());
  }, 60_000);

  it('refuses input that is not an export, with the reason', async () => {
    writeFileSync(join(dir, 'bad.json'), '{"Users": []}');
    const r = await ferry(['migrate', 'plan', '--input', 'bad.json', '--out', 'x.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('get-account-authorization-details');
    const ext = await ferry(['migrate', 'plan', '--input', 'auth.json', '--out', 'x.pdf']);
    expect(ext.stderr).toContain('.html, .md or .json');
    expect(ext.code).toBe(2);
  }, 60_000);

  describe.each(ENGINES)('plan → ferry apply → ferry access simulate (%s)', (engine) => {
    let server: TestFerry;
    beforeAll(async () => {
      server = await startTestFerry(engine);
    }, 60_000);
    afterAll(async () => server?.close());

    it('applies the generated tenant file and simulates the proposed role, from the plan and from AWS', async () => {
      const env = { FERRY_SERVER: server.url, FERRY_TOKEN: server.adminToken };
      const applied = await ferry(['apply', 'tenant.yaml'], env);
      expect(applied.stderr).toBe('');
      expect(applied.stdout).toContain(
        '+ assignment group:AWS-Account1-Developers → aws:123456789012/Developers',
      );
      expect((await ferry(['apply', 'tenant.yaml'], env)).stdout).toBe('no changes\n');

      // From the plan, before the role exists in AWS.
      const put = [
        'access',
        'simulate',
        '--input',
        'plan.json',
        '--account',
        'Account1',
        '--role',
        'Developers',
        '--action',
        's3:PutObject',
        '--resource',
        'arn:aws:s3:::data/k',
      ];
      const yes = await ferry(put);
      expect(yes.code).toBe(0);
      expect(yes.stdout).toMatch(/^allowed: s3:PutObject/);
      expect(yes.stdout).toContain('statement 1');
      const no = await ferry([
        'access',
        'simulate',
        '--input',
        'plan.json',
        '--account',
        'Account1',
        '--role',
        'Developers',
        '--action',
        'iam:CreateUser',
        '--resource',
        `arn:aws:iam::${ACCOUNT}:user/x`,
      ]);
      expect(no.code).toBe(1);
      expect(no.stdout).toMatch(/^denied: iam:CreateUser/);

      // Create the role in AWS as the plan says, then ask AWS's copy.
      const role = plan.accounts[0]!.roles.find((x) => x.name === 'Developers')!;
      const exists = await iam.send(new GetRoleCommand({ RoleName: role.name })).then(
        () => true,
        () => false,
      );
      if (!exists) {
        await iam.send(
          new CreateRoleCommand({
            RoleName: role.name,
            AssumeRolePolicyDocument: JSON.stringify(role.trustPolicy),
          }),
        );
        for (const PolicyArn of role.managedPolicies)
          await iam.send(new AttachRolePolicyCommand({ RoleName: role.name, PolicyArn }));
      }
      const liveArgs = [
        'access',
        'simulate',
        '--live',
        '--endpoint-url',
        aws.endpoint,
        '--account',
        ACCOUNT,
        '--role',
        'Developers',
      ];
      expect(
        (await ferry([...liveArgs, '--action', 's3:PutObject', '--resource', 'arn:aws:s3:::data/k'])).code,
      ).toBe(0);
      const denied = await ferry([
        ...liveArgs,
        '--action',
        'iam:CreateUser',
        '--resource',
        `arn:aws:iam::${ACCOUNT}:user/x`,
        '--json',
      ]);
      expect(denied.code).toBe(1);
      expect(JSON.parse(denied.stdout)).toMatchObject({ allowed: false, result: 'ImplicitlyDenied' });
      const wrong = await ferry([
        ...liveArgs.slice(0, -4),
        '--account',
        '111122223333',
        '--role',
        'Developers',
        '--action',
        's3:PutObject',
      ]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('not 111122223333');
    }, 120_000);
  });

  it('keeps the checklist: mark signed in, then detect the removal from a fresh export', async () => {
    const marked = await ferry(['migrate', 'status', '--mark', 'bob', 'signed-in']);
    expect(marked.code).toBe(0);
    expect(marked.stdout).toMatch(/bob\s+person\s+AWS-Account1-Developers\s+signed-in/);
    expect((await ferry(['migrate', 'status', '--mark', 'nobody', 'removed'])).code).toBe(1);
    await iam.send(new RemoveUserFromGroupCommand({ UserName: 'bob', GroupName: 'Developers' }));
    await iam.send(new DeleteLoginProfileCommand({ UserName: 'bob' }));
    const keys = await iam.send(new ListAccessKeysCommand({ UserName: 'bob' }));
    for (const k of keys.AccessKeyMetadata ?? [])
      await iam.send(new DeleteAccessKeyCommand({ UserName: 'bob', AccessKeyId: k.AccessKeyId! }));
    await iam.send(new DeleteUserCommand({ UserName: 'bob' }));
    writeFileSync(
      join(dir, 'fresh.json'),
      JSON.stringify(await cli(['iam', 'get-account-authorization-details', '--page-size', '1000'])),
    );
    const status = await ferry(['migrate', 'status', '--input', 'fresh.json', '--json']);
    expect(status.code).toBe(0);
    const users = JSON.parse(status.stdout) as Array<{ user: string; state: string }>;
    expect(users.find((u) => u.user === 'bob')?.state).toBe('removed');
    expect(users.find((u) => u.user === 'alice')?.state).toBe('mapped');
    // Three CLI runs and an export of ~1,500 policies through the AWS CLI: a minute on a loaded machine.
  }, 180_000);
});
