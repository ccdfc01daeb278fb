import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { generateTotpSecret, totpCode } from '../../src/identity/totp.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const ADMIN = 'test-awsadmin@contoso.example';
const CONTRACTOR = 'contractor@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

const POLICIES = `
policies:
  - name: Admins need phishing-resistant MFA
    state: on
    include: { groups: [AWS-Account1-Administrators] }
    targets: ['aws:*/Administrator']
    grant: { require: [phishing-resistant-mfa] }
  - name: Everyone needs MFA
    state: on
    include: { all: true }
    exclude: { groups: [AWS-Account1-Administrators] }
    targets: [all]
    grant: { require: [mfa] }
  - name: Block outside the office (trial)
    state: report-only
    include: { all: true }
    targets: [all]
    conditions: { locations: { include: [any], exclude: [office] } }
    grant: { block: true }
`;

/** The admin's and the person's side of conditional access with the real `ferry` CLI. */
describe('ferry policies, ferry access what-if, and ferry creds refused with what to do', () => {
  let ferry: TestFerry;
  let home: string;
  let env: Record<string, string>;
  let adminEnv: Record<string, string>;
  let secret: string;
  const cli = (args: string[], input?: string, as = env) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env: as, input, timeoutMs: 60_000 });

  beforeAll(async () => {
    ferry = await startTestFerry('sqlite');
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Administrator', maxSessionDuration: 3600 });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 3600 });
    const admins = await s.groups.create(ctx, { displayName: 'AWS-Account1-Administrators' });
    const devs = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const admin = await s.users.create(ctx, { userName: ADMIN, password: PASSWORD });
    const contractor = await s.users.create(ctx, { userName: CONTRACTOR, password: PASSWORD });
    await s.groups.setMembership(ctx, admins.id, admin.id, true);
    await s.groups.setMembership(ctx, devs.id, contractor.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: admins.id, name: admins.displayName },
      ACCOUNT,
      'Administrator',
    );
    await s.assignments.add(
      ctx,
      { type: 'group', id: devs.id, name: devs.displayName },
      ACCOUNT,
      'Developer',
    );
    secret = generateTotpSecret();
    await s.store.db
      .transaction()
      .execute((trx) => s.totp.enroll(trx, ctx, admin, { confirmed: true, secret }));
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-ca-'));
    env = { HOME: home, FERRY_CONFIG_DIR: join(home, 'ferry') };
    adminEnv = { ...env, FERRY_TOKEN: ferry.adminToken };
  }, 60_000);

  afterAll(async () => {
    await ferry?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('applies policies from a file, lists them, and refuses a broken one with the reason', async () => {
    const loc = await cli(['locations', 'set', 'office', '203.0.113.0/24'], undefined, adminEnv);
    expect(loc.code, loc.stderr).toBe(0);
    const file = join(home, 'policies.yaml');
    writeFileSync(file, POLICIES);
    const applied = await cli(['policies', 'apply', file], undefined, adminEnv);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Admins need phishing-resistant MFA: on');
    const list = await cli(['policies', 'list'], undefined, adminEnv);
    expect(list.stdout).toMatch(/Block outside the office \(trial\)\s+report-only\s+all\s+block/);
    expect(list.stdout).toMatch(
      /Admins need phishing-resistant MFA\s+on\s+aws:\*\/Administrator\s+phishing-resistant-mfa/,
    );
    writeFileSync(file, 'name: broken\ninclude: { groups: [Nobody] }\ntargets: [all]\n');
    const broken = await cli(['policies', 'apply', file], undefined, adminEnv);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('include.groups: unknown group Nobody');
  });

  it('what-if explains each policy and exits 2 for a step-up', async () => {
    const res = await cli(
      [
        'access',
        'what-if',
        '--user',
        ADMIN,
        '--target',
        `aws:${ACCOUNT}/Administrator`,
        '--mfa',
        'totp',
        '--ip',
        '198.51.100.4',
        '--client',
        'cli',
      ],
      undefined,
      adminEnv,
    );
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toContain(
      `${ADMIN} → aws:${ACCOUNT}/Administrator: STEP-UP (needs phishing-resistant-mfa)`,
    );
    expect(res.stdout).toMatch(/● Admins need phishing-resistant MFA \[on\]: applied → step-up/);
    expect(res.stdout).toMatch(
      /○ Everyone needs MFA \[on\]: not applied\n\s+test-awsadmin@contoso.example is excluded as a member of AWS-Account1-Administrators/,
    );
    expect(res.stdout).toMatch(/● Block outside the office \(trial\) \[report-only\]: applied → block/);
    const json = await cli(
      [
        'access',
        'what-if',
        '--user',
        ADMIN,
        '--target',
        `aws:${ACCOUNT}/Administrator`,
        '--mfa',
        'webauthn',
        '--ip',
        '203.0.113.5',
        '--json',
      ],
      undefined,
      adminEnv,
    );
    expect(json.code).toBe(0);
    const w = JSON.parse(json.stdout) as {
      result: string;
      sessionTags: Record<string, string>;
      policies: Array<{ policy: string; applied: boolean; why: string[] }>;
    };
    expect(w.result).toBe('allow');
    expect(w.sessionTags.MfaMethod).toBe('webauthn');
    expect(w.policies.find((p) => p.policy.startsWith('Block'))).toMatchObject({
      applied: false,
      why: ['203.0.113.5 is in the excluded location office'],
    });
  });

  it('ferry creds says exactly what to do when a policy wants more than the sign-in had', async () => {
    const login = await cli(['login', '--user', ADMIN], `${PASSWORD}\n${totpCode(secret, new Date())}\n`);
    expect(login.code, login.stderr).toBe(0);
    const refused = await cli(['creds', '--account', ACCOUNT, '--role', 'Administrator', '--no-cache']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`aws:${ACCOUNT}/Administrator needs phishing-resistant-mfa`);
    expect(refused.stderr).toContain(
      'Run `ferry login` (without --user) and sign in in the browser with your security key or passkey.',
    );

    const contractorEnv = { ...env, FERRY_CONFIG_DIR: join(home, 'contractor') };
    const pwdOnly = await cli(['login', '--user', CONTRACTOR], `${PASSWORD}\n`, contractorEnv);
    expect(pwdOnly.code, pwdOnly.stderr).toBe(0);
    const mfa = await cli(
      ['creds', '--account', ACCOUNT, '--role', 'Developer', '--no-cache'],
      undefined,
      contractorEnv,
    );
    expect(mfa.code).toBe(1);
    expect(mfa.stderr).toContain('needs mfa (policy Everyone needs MFA requires mfa');
    expect(mfa.stderr).toContain('Run `ferry login` again and complete multi-factor authentication');
  });
});
