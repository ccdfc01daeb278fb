import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import {
  apiCall,
  assumedRole,
  logFile,
  logFileKey,
  putLogFile,
  rootConsoleLogin,
} from '../support/cloudtrail.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const DEVELOPER = 'test-awsdeveloper@contoso.example';
const PASSWORD = 'correct-horse-battery-42';
const TRAIL_BUCKET = 'contoso-org-cloudtrail';
const ORG = 'o-exampleorgid';

interface Item {
  time: string;
  source: 'ferry' | 'cloudtrail';
  eventName: string;
  person: string | null;
  accessKeyId: string | null;
  account: string | null;
  role: string | null;
  outcome: string;
  attribution: string | null;
  issuedByFerry: boolean | null;
}

/**
 * From sign-in to AWS API call: Ferry issues the developer real credentials (ferry login, ferry creds),
 * the AWS CLI makes calls with them, CloudTrail's files for those calls (and one root sign-in) land in
 * the organization trail's bucket, and `ferry cloudtrail sync` + `ferry activity` show them as the
 * person's; least privilege proposes a policy the planner's simulate reads.
 */
describe.each(ENGINES)('CloudTrail joined to the person Ferry issued credentials to (%s, moto)', (engine) => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let home: string;
  let env: Record<string, string>;
  let admin: Record<string, string>;
  let creds: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
  let sourceIdentity: string;
  let issuedAt: Date;

  const ferryCli = (args: string[], as: Record<string, string> = env, input?: string) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env: as, input, timeoutMs: 60_000 });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-activity-'));
    aws = await startLocalAws();
    ferry = await startTestFerry(engine, {
      config: {
        signin: { requireMfa: false },
        aws: { endpoint: aws.endpoint, region: aws.region },
        cloudtrail: { syncInterval: 0 },
      },
    });
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1', endpointUrl: aws.endpoint });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const user = await s.users.create(ctx, { userName: DEVELOPER, password: PASSWORD });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Developer',
    );
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: await (await fetch(`${ferry.url}/saml/metadata`)).text(),
      roles: [{ name: 'Developer' }],
    });
    env = {
      HOME: home,
      FERRY_CONFIG_DIR: join(home, 'ferry'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    admin = { ...env, FERRY_TOKEN: ferry.adminToken };
  }, 180_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('ferry issues the developer credentials, and the AWS CLI calls AWS with them', async () => {
    const login = await ferryCli(['login', '--user', DEVELOPER], env, `${PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
    const res = await ferryCli([
      'creds',
      '--account',
      'Account1',
      '--role',
      'Developer',
      '--format',
      'credential_process',
    ]);
    expect(res.code, res.stderr).toBe(0);
    creds = JSON.parse(res.stdout);
    expect(creds.AccessKeyId).toMatch(/^[A-Z0-9]{16,}$/);
    const as = {
      accessKeyId: creds.AccessKeyId,
      secretAccessKey: creds.SecretAccessKey,
      sessionToken: creds.SessionToken,
    };
    const who = await awsCli(aws, ['sts', 'get-caller-identity'], as);
    expect(who.code, who.stderr).toBe(0);
    // moto names the session; Ferry's SourceIdentity is the person (as the ledger has it).
    const [issued] = await ferry.services.store.db
      .selectFrom('issued_credentials')
      .select(['details', 'issued_at'])
      .where('external_id', '=', creds.AccessKeyId)
      .execute();
    sourceIdentity = (JSON.parse(issued!.details) as { sourceIdentity: string }).sourceIdentity;
    issuedAt = new Date(issued!.issued_at);
    expect(sourceIdentity).toBe(DEVELOPER);
    expect((await awsCli(aws, ['s3api', 'list-buckets'], as)).code).toBe(0);
    expect((await awsCli(aws, ['s3api', 'create-bucket', '--bucket', 'developer-reports'], as)).code).toBe(0);
    // moto enforces no IAM here; in AWS, Developer (S3 only) gets AccessDenied, which the trail records.
    expect((await awsCli(aws, ['iam', 'list-roles'], as)).code).toBe(0);
  }, 120_000);

  it('ferry cloudtrail sync reads the organization trail and ferry activity shows the calls as the person’s', async () => {
    const s3 = new S3Client({
      endpoint: aws.endpoint,
      region: aws.region,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: TRAIL_BUCKET }));
    const now = new Date();
    const identity = assumedRole({
      account: ACCOUNT,
      role: 'Developer',
      session: sourceIdentity,
      accessKeyId: creds.AccessKeyId,
      sourceIdentity,
    });
    const call = (
      eventSource: string,
      eventName: string,
      seconds: number,
      extra: Record<string, unknown> = {},
    ) =>
      apiCall({
        identity,
        eventSource,
        eventName,
        time: new Date(issuedAt.getTime() + seconds * 1000),
        account: ACCOUNT,
        ...extra,
      });
    const records = [
      call('sts.amazonaws.com', 'GetCallerIdentity', 1),
      call('s3.amazonaws.com', 'ListBuckets', 2),
      call('s3.amazonaws.com', 'CreateBucket', 3, {
        requestParameters: { bucketName: 'developer-reports', Host: 's3.amazonaws.com' },
        resources: [{ ARN: 'arn:aws:s3:::developer-reports', type: 'AWS::S3::Bucket' }],
        readOnly: false,
      }),
      call('iam.amazonaws.com', 'ListRoles', 4, {
        errorCode: 'AccessDenied',
        errorMessage: `User: arn:aws:sts::${ACCOUNT}:assumed-role/Developer/${sourceIdentity} is not authorized to perform: iam:ListRoles`,
      }),
    ];
    const rootLogin = rootConsoleLogin(ACCOUNT, new Date(now.getTime() - 30_000));
    await putLogFile(
      s3,
      TRAIL_BUCKET,
      logFileKey({ prefix: 'ferry-e2e/', org: ORG, account: ACCOUNT, time: now }),
      logFile(records),
    );
    await putLogFile(
      s3,
      TRAIL_BUCKET,
      logFileKey({ prefix: 'ferry-e2e/', org: ORG, account: ACCOUNT, region: 'us-west-2', time: now }),
      logFile([rootLogin]),
    );
    s3.destroy();

    const added = await ferryCli(
      ['cloudtrail', 'add-source', '--bucket', TRAIL_BUCKET, '--prefix', 'ferry-e2e'],
      admin,
    );
    expect(added.code, added.stderr).toBe(0);
    const sync = await ferryCli(['cloudtrail', 'sync', '--json'], admin);
    expect(sync.code, sync.stderr).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ stored: 5, skipped: [] });
    const sources = await ferryCli(['cloudtrail', 'sources'], admin);
    expect(sources.stdout).toContain(`s3://${TRAIL_BUCKET}/ferry-e2e/`);

    const res = await ferryCli(['activity', '--user', DEVELOPER, '--since', '1h', '--json'], admin);
    expect(res.code, res.stderr).toBe(0);
    const items = JSON.parse(res.stdout) as Item[];
    const issued = items.find((i) => i.source === 'ferry' && i.eventName === 'aws.credentials.issued');
    expect(issued).toMatchObject({
      person: DEVELOPER,
      accessKeyId: creds.AccessKeyId,
      account: ACCOUNT,
      role: 'Developer',
      outcome: 'success',
    });
    const calls = items.filter((i) => i.source === 'cloudtrail');
    expect(calls.map((c) => c.eventName)).toEqual([
      'GetCallerIdentity',
      'ListBuckets',
      'CreateBucket',
      'ListRoles',
    ]);
    for (const c of calls)
      expect(c).toMatchObject({
        person: DEVELOPER,
        accessKeyId: creds.AccessKeyId,
        account: ACCOUNT,
        role: 'Developer',
        attribution: 'access-key',
        issuedByFerry: true,
      });
    expect(calls.at(-1)?.outcome).toBe('denied');
    // The timeline starts with Ferry: the credential comes before the calls made with it.
    expect(items.indexOf(issued!)).toBeLessThan(items.indexOf(calls[0]!));

    const text = await ferryCli(['activity', '--user', DEVELOPER, '--since', '1h'], admin);
    expect(text.stdout).toMatch(/!! DENIED {2}iam:ListRoles/);

    const account = JSON.parse(
      (await ferryCli(['activity', '--account', 'Account1', '--since', '1h', '--json'], admin)).stdout,
    ) as Item[];
    expect(account.find((i) => i.eventName === 'ConsoleLogin')).toMatchObject({
      source: 'cloudtrail',
      person: null,
      attribution: 'none',
      issuedByFerry: false,
    });
  }, 120_000);

  it('least privilege proposes the used actions only, and ferry access simulate reads the proposal', async () => {
    const file = join(home, 'developer-least-privilege.json');
    const res = await ferryCli(
      [
        'access',
        'least-privilege',
        '--account',
        'Account1',
        '--role',
        'Developer',
        '--since',
        '1d',
        '--out',
        file,
        '--json',
      ],
      admin,
    );
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as {
      used: Array<{ action: string; allowedNow: boolean; resourceNote: string | null }>;
      denied: Array<{ action: string }>;
      unusedGrants: Array<{ action: string }>;
      proposed: { Statement: Array<{ Action: string[]; Resource: string | string[] }> };
      validation: { checked: number; allowed: number };
    };
    expect(report.used.map((u) => [u.action, u.allowedNow])).toEqual([
      ['s3:CreateBucket', true],
      ['s3:ListAllMyBuckets', true],
    ]);
    expect(report.denied.map((d) => d.action)).toEqual(['iam:ListRoles']);
    // AmazonS3FullAccess: s3:* was used, s3-object-lambda:* never.
    expect(report.unusedGrants.map((g) => g.action)).toEqual(['s3-object-lambda:*']);
    // actions narrowed to the resources the records named where IAM allows it, "*" where it cannot
    expect(report.proposed.Statement.map((s) => [s.Action, s.Resource])).toEqual([
      [['s3:ListAllMyBuckets'], '*'],
      [['s3:CreateBucket'], 'arn:aws:s3:::developer-reports'],
    ]);
    expect(report.used.map((u) => u.resourceNote)).toEqual([
      null,
      'the action does not support resource-level permissions',
    ]);
    expect(report.validation).toEqual({ checked: 2, allowed: 2, failures: [] });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveProperty('RoleDetailList');

    const allowed = await ferryCli([
      'access',
      'simulate',
      '--input',
      file,
      '--role',
      'Developer',
      '--action',
      's3:ListAllMyBuckets',
    ]);
    expect(allowed.code, allowed.stderr).toBe(0);
    const narrowed = await ferryCli([
      'access',
      'simulate',
      '--input',
      file,
      '--role',
      'Developer',
      '--action',
      's3:DeleteBucket',
    ]);
    expect(narrowed.code).toBe(1);
  }, 120_000);

  it('answers bad questions with problem details, not a 500', async () => {
    const noWho = await ferry.api('/api/v1/activity?since=1h');
    expect(noWho.status).toBe(400);
    expect(noWho.headers.get('content-type')).toContain('application/problem+json');
    expect((await ferry.api('/api/v1/activity?user=x&since=yesterday')).status).toBe(400);
    expect(
      (await ferry.api(`/api/v1/activity?user=${encodeURIComponent('nobody@contoso.example')}`)).status,
    ).toBe(404);
    expect((await ferry.api('/api/v1/access/least-privilege?account=Account1&role=Ghost')).status).toBe(404);
    expect((await ferry.api('/api/v1/access/least-privilege?account=Account1')).status).toBe(400);
    expect((await ferry.api('/api/v1/cloudtrail/sync', { method: 'POST', auth: false })).status).toBe(401);
    const bad = await ferry.api('/api/v1/cloudtrail/sources', {
      method: 'POST',
      body: JSON.stringify({ bucket: 'UPPER_case' }),
    });
    expect(bad.status).toBe(400);
  });
});
