import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { loginFile } from '../../src/cli/login-session.js';
import { generateTotpSecret, totpCode } from '../../src/identity/totp.js';
import { type AwsQueryProxy, startAwsQueryProxy } from '../support/aws-query-proxy.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const DEVELOPER = 'test-awsdeveloper@contoso.example';
const ADMIN = 'test-awsadmin@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The seeds' daily life with the real AWS CLI: `ferry login` (password and one-time code, no
 * browser), `ferry aws config`, then `aws … --profile ferry-account1-developer` runs `ferry creds`
 * as its credential_process against moto. No AWS keys exist anywhere on the client.
 */
describe('ferry login, ferry aws config and the AWS CLI through credential_process', () => {
  let aws: LocalAws;
  let proxy: AwsQueryProxy;
  let ferry: TestFerry;
  let home: string;
  let env: Record<string, string>;
  let developerSecret: string;

  const ferryCli = (args: string[], input?: string, as: Record<string, string> = env) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env: as, input, timeoutMs: 60_000 });

  /** The AWS CLI with only the config file ferry wrote: no keys in the environment or on disk. */
  const awsCliWithProfile = (args: string[], as: Record<string, string> = env): Promise<Run> =>
    new Promise((resolve, reject) => {
      const inherited = Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('FERRY_')),
      );
      const child = spawn('aws', [...args, '--output', 'json'], {
        env: { ...inherited, ...as, AWS_EC2_METADATA_DISABLED: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 90_000,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.once('error', reject);
      child.once('close', (code) =>
        resolve({
          code: code ?? 1,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        }),
      );
    });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-creds-'));
    [aws, ferry] = await Promise.all([
      startLocalAws(),
      startTestFerry('sqlite', { config: { signin: { requireMfa: false } } }),
    ]);
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    // moto's AssumeRoleWithSAML checks nothing; in front of it, STS answers for a missing role as AWS does.
    proxy = await startAwsQueryProxy(aws, {
      intercept: (r) =>
        r.action === 'AssumeRoleWithSAML' && r.params.get('RoleArn')?.endsWith(':role/Ghost')
          ? {
              status: 403,
              body: '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithSAML</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>',
            }
          : undefined,
    });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1', endpointUrl: proxy.endpoint });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Administrator', maxSessionDuration: 43200 });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    for (const [groupName, role, userName] of [
      ['AWS-Account1-Developers', 'Developer', DEVELOPER],
      ['AWS-Account1-Administrators', 'Administrator', ADMIN],
    ] as const) {
      const group = await s.groups.create(ctx, { displayName: groupName });
      const user = await s.users.create(ctx, { userName, password: PASSWORD });
      await s.groups.setMembership(ctx, group.id, user.id, true);
      await s.assignments.add(ctx, { type: 'group', id: group.id, name: groupName }, ACCOUNT, role);
    }
    developerSecret = generateTotpSecret();
    const developer = await s.users.get(DEVELOPER);
    await s.store.db
      .transaction()
      .execute((trx) => s.totp.enroll(trx, ctx, developer, { confirmed: true, secret: developerSecret }));
    const metadata = await (await fetch(`${ferry.url}/saml/metadata`)).text();
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: metadata,
      roles: [{ name: 'Administrator' }, { name: 'Developer' }],
    });
    const configFile = join(home, 'aws-config');
    // The person's own profile, which ferry must leave alone.
    writeFileSync(configFile, '[profile personal]\nregion = eu-west-1\noutput = table\n');
    env = {
      HOME: home,
      FERRY_CONFIG_DIR: join(home, 'ferry'),
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
  }, 120_000);

  afterAll(async () => {
    await ferry?.close();
    await proxy?.stop();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('ferry login --user reads the password and the one-time code from standard input, and keeps the tokens 0600', async () => {
    const wrong = await ferryCli(['login', '--user', DEVELOPER], `not-the-password\n`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('Sign-in failed');

    const res = await ferryCli(
      ['login', '--user', DEVELOPER],
      `${PASSWORD}\n${totpCode(developerSecret, new Date())}\n`,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Signed in to ${ferry.url} as ${DEVELOPER}`);
    process.env.FERRY_CONFIG_DIR = env.FERRY_CONFIG_DIR;
    const file = loginFile(ferry.url);
    delete process.env.FERRY_CONFIG_DIR;
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const who = await runFerry(['whoami', '--json'], { cwd: home, env });
    expect(who.code).toBe(0);
    const view = JSON.parse(who.stdout) as {
      userName: string;
      server: string;
      amr: string[];
      groups: string[];
    };
    // --server was remembered from the login.
    expect(view).toMatchObject({
      userName: DEVELOPER,
      server: ferry.url,
      groups: ['AWS-Account1-Developers'],
    });
    expect(view.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
  });

  it('ferry aws config writes a profile per entitled role and keeps the person’s own', async () => {
    const res = await ferryCli(['aws', 'config']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('+ ferry-account1-developer');
    const text = readFileSync(env.AWS_CONFIG_FILE!, 'utf8');
    expect(text).toContain('[profile personal]\nregion = eu-west-1\noutput = table\n');
    expect(text).toContain('[profile ferry-account1-developer]');
    expect(text).toMatch(
      /credential_process = .*creds --server \S+ --account 123456789012 --role Developer --format credential_process/,
    );
    expect(text).toContain(`endpoint_url = ${proxy.endpoint}`);
    expect(text).not.toContain('ferry-account1-administrator');
  });

  it('aws sts get-caller-identity --profile ferry-account1-developer is the person on the Developer role', async () => {
    const res = await awsCliWithProfile([
      'sts',
      'get-caller-identity',
      '--profile',
      'ferry-account1-developer',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const identity = JSON.parse(res.stdout) as { Arn: string; Account: string };
    expect(identity.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/Developer/${DEVELOPER}`);
    // The AccessKeyId is in the audit trail, so CloudTrail maps back to the person.
    const audit = (await ferry
      .api('/api/v1/audit/events?type=aws.credentials.issued')
      .then((r) => r.json())) as {
      items: Array<{ subject: string; data: { accessKeyId: string; sourceIdentity: string } }>;
    };
    expect(audit.items.at(-1)).toMatchObject({ subject: DEVELOPER, data: { sourceIdentity: DEVELOPER } });
  });

  it('ferry creds serves the cached credentials without the server until 5 minutes before expiry', async () => {
    const first = await ferryCli([
      'creds',
      '--account',
      'Account1',
      '--role',
      'Developer',
      '--format',
      'credential_process',
    ]);
    expect(first.code).toBe(0);
    const issuedBefore = await ferry.services.store.db
      .selectFrom('issued_credentials')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'sts-credentials')
      .executeTakeFirstOrThrow();
    const second = await ferryCli([
      'creds',
      '--account',
      'Account1',
      '--role',
      'Developer',
      '--format',
      'credential_process',
    ]);
    expect(second.stdout).toBe(first.stdout);
    const issuedAfter = await ferry.services.store.db
      .selectFrom('issued_credentials')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'sts-credentials')
      .executeTakeFirstOrThrow();
    expect(Number(issuedAfter.n)).toBe(Number(issuedBefore.n));
    const parsed = JSON.parse(first.stdout) as { Version: number; AccessKeyId: string; Expiration: string };
    expect(parsed.Version).toBe(1);
    expect(Date.parse(parsed.Expiration)).toBeGreaterThan(Date.now() + 30 * 60_000);
  });

  it('a role the person is not entitled to is refused with the reason, and audited', async () => {
    const res = await ferryCli(['creds', '--account', 'Account1', '--role', 'Administrator', '--no-cache']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      'no assignment gives test-awsdeveloper@contoso.example aws:123456789012/Administrator',
    );
    const audit = (await ferry
      .api('/api/v1/audit/events?type=aws.credentials.refused')
      .then((r) => r.json())) as {
      items: unknown[];
    };
    expect(audit.items.length).toBeGreaterThan(0);
  });

  it('an STS failure names the role and what to fix, with a non-zero exit', async () => {
    await ferry.services.accounts.upsertRole(ctx, ACCOUNT, { name: 'Ghost', maxSessionDuration: 3600 });
    const group = await ferry.services.groups.get('AWS-Account1-Developers');
    await ferry.services.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Ghost',
    );
    const config = await ferryCli(['aws', 'config']);
    expect(config.stdout).toBe(
      `+ ferry-account1-ghost\n2 Ferry profile(s) in ${env.AWS_CONFIG_FILE}; try: aws sts get-caller-identity --profile ferry-account1-developer\n`,
    );
    const res = await ferryCli(['creds', '--account', ACCOUNT, '--role', 'Ghost']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      'AWS STS refused AssumeRoleWithSAML for arn:aws:iam::123456789012:role/Ghost',
    );
    expect(res.stderr).toMatch(/ferry aws setup-account --account Account1/);
  });

  it('an entitlement removed after sign-in: the next ferry creds is refused (no cached credentials for it)', async () => {
    const group = await ferry.services.groups.get('AWS-Account1-Developers');
    const ghost = (
      await ferry.services.assignments.list({ principal: { type: 'group', id: group.id } })
    ).find((a) => a.roleName === 'Ghost')!;
    await ferry.services.assignments.remove(ctx, ghost.id);
    const res = await ferryCli(['creds', '--account', ACCOUNT, '--role', 'Ghost']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no assignment gives');
    // ferry aws config removes only the profile it wrote that is no longer entitled.
    const again = await ferryCli(['aws', 'config']);
    expect(again.stdout).toContain('- ferry-account1-ghost (no longer entitled)');
    expect(again.stdout).not.toContain('ferry-account1-developer\n1');
    expect(readFileSync(env.AWS_CONFIG_FILE!, 'utf8')).toContain('[profile personal]');
  });

  it('with moto enforcing IAM after the credentials are cached: Developer lists S3 and is denied iam:CreateUser; Administrator may', async () => {
    // The administrator is someone else, on their own machine: their own config directory and AWS config.
    const adminEnv = {
      ...env,
      FERRY_CONFIG_DIR: join(home, 'ferry-admin'),
      AWS_CONFIG_FILE: join(home, 'aws-config-admin'),
    };
    const admin = await ferryCli(['login', '--user', ADMIN], `${PASSWORD}\n`, adminEnv);
    expect(admin.code).toBe(0);
    expect((await ferryCli(['aws', 'config'], undefined, adminEnv)).code).toBe(0);
    // Both people's credentials are cached before the switch (credential_process runs once each).
    await awsCliWithProfile(
      ['sts', 'get-caller-identity', '--profile', 'ferry-account1-administrator'],
      adminEnv,
    );
    await awsCliWithProfile(['sts', 'get-caller-identity', '--profile', 'ferry-account1-developer']);
    const reset = await fetch(`${aws.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(reset.ok).toBe(true);

    const list = await awsCliWithProfile(['s3api', 'list-buckets', '--profile', 'ferry-account1-developer']);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    const denied = await awsCliWithProfile([
      'iam',
      'create-user',
      '--user-name',
      'mallory',
      '--profile',
      'ferry-account1-developer',
    ]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/AccessDenied|not authorized/);
    const allowed = await awsCliWithProfile(
      ['iam', 'create-user', '--user-name', 'alice', '--profile', 'ferry-account1-administrator'],
      adminEnv,
    );
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
  });

  it('an expired access token is renewed silently with the refresh token (which rotates)', async () => {
    process.env.FERRY_CONFIG_DIR = env.FERRY_CONFIG_DIR;
    const file = loginFile(ferry.url);
    delete process.env.FERRY_CONFIG_DIR;
    const before = JSON.parse(readFileSync(file, 'utf8')) as {
      accessTokenExpiresAt: number;
      refreshToken: string;
    };
    writeFileSync(file, JSON.stringify({ ...before, accessTokenExpiresAt: Date.now() - 1000 }), {
      mode: 0o600,
    });
    const res = await ferryCli(['aws', 'entitlements', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const after = JSON.parse(readFileSync(file, 'utf8')) as {
      accessTokenExpiresAt: number;
      refreshToken: string;
    };
    expect(after.accessTokenExpiresAt).toBeGreaterThan(Date.now() + 60_000);
    expect(after.refreshToken).not.toBe(before.refreshToken);
  });

  it('ferry console --print prints the console sign-in for one role', async () => {
    const res = await ferryCli(['console', '--account', 'Account1', '--role', 'Developer', '--print']);
    expect(res.stdout).toBe(`${ferry.url}/apps/aws-console?account=Account1&role=Developer\n`);
  });

  it('ferry logout revokes the sign-in and forgets tokens and cached credentials', async () => {
    const out = await ferryCli(['logout']);
    expect(out.code).toBe(0);
    const who = await ferryCli(['whoami']);
    expect(who.code).toBe(1);
    expect(who.stderr).toContain('ferry login');
    const creds = await ferryCli(['creds', '--account', 'Account1', '--role', 'Administrator']);
    expect(creds.code).toBe(1);
    expect(creds.stderr).toContain('not signed in');
  });
});
