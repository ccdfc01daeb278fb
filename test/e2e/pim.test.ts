import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, createRevocationUser, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry, waitFor } from '../support/process.js';
import {
  CookieJar,
  csrfTokenOf,
  getPage,
  inputValue,
  postForm,
  signInWithPassword,
} from '../support/web-form.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const DEV = 'test-awsdeveloper@contoso.example';
const ADMIN = 'test-awsadmin@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}
interface ActivationJson {
  id: string;
  state: string;
  approvals: Array<{ userName: string }>;
  expiresAt: string | null;
}

/**
 * Just-in-time elevation end to end, the demo's way: a developer requests Administrator with `ferry
 * request`, an administrator approves with `ferry approve`, the role appears in `ferry aws config` and
 * `ferry creds` gives STS credentials (moto, AWS CLI). `ferry activations revoke` ends it: the worker
 * puts the per-person deny on the role in IAM, and with moto's enforcement on those credentials are refused.
 */
describe('PIM: request, approve, use, revoke — with the CLI, moto and the AWS CLI', () => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let ferryKeys: Keys;
  let home: string;
  const envOf: Record<'dev' | 'admin', Record<string, string>> = { dev: {}, admin: {} };
  const ferryCli = (
    who: 'dev' | 'admin',
    args: string[],
    input?: string,
    extra: Record<string, string> = {},
  ) =>
    runFerry(['--server', ferry.url, ...args], {
      cwd: home,
      env: { ...envOf[who], ...extra },
      input,
      timeoutMs: 60_000,
    });
  const cli = (args: string[], keys?: Keys) => awsCli(aws, args, keys);
  const cliJson = async (args: string[], keys?: Keys) => {
    const r = await cli(args, keys);
    expect(r.code, `aws ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-pim-'));
    aws = await startLocalAws();
    ferryKeys = await createRevocationUser(aws);
    ferry = await startTestFerry('sqlite', {
      config: {
        aws: {
          endpoint: aws.endpoint,
          accessKeyId: ferryKeys.accessKeyId,
          secretAccessKey: ferryKeys.secretAccessKey,
        },
      },
    });
    const s = ferry.services;
    for (const [userName, group] of [
      [DEV, 'AWS-Account1-Developers'],
      [ADMIN, 'AWS-Account1-Administrators'],
    ] as const) {
      const u = await s.users.create(ctx, { userName, password: PASSWORD });
      const g = await s.groups.create(ctx, { displayName: group });
      await s.groups.setMembership(ctx, g.id, u.id, true);
    }
    // The demo's tenant file, applied the way an operator does, plus an Auditor role that asks for MFA.
    const tenant = join(home, 'tenant.yaml');
    writeFileSync(
      tenant,
      readFileSync(new URL('../../examples/tenant.yaml', import.meta.url), 'utf8')
        // This test signs in with a password only: leave out the example's conditional access policies.
        .replace(/^policies:\n(?:[ #].*\n|\n)*/m, '')
        // Identity Center permission sets are tested in permission-set-sync.test.ts and saml-cli.test.ts.
        .replace(/^permissionSets:\n(?:[ #].*\n)*permissionSetAssignments:\n(?:[ #].*\n)*/m, '')
        // ... and so the example's eligibility for its AdministratorAccess permission set (which checks
        // the set's SessionDuration): permission-set PIM is tested in beyond-roles.test.ts,
        // ou-eligibility.test.ts and demo.test.ts. The two role eligibilities stay.
        .replace(/^ {2}# \.\.\. and the AdministratorAccess[\s\S]*?approvalsRequired: 1\n/m, '')
        .replace(
          'roles:\n',
          `endpointUrl: ${aws.endpoint}\n    roles:\n      - name: Auditor\n        maxSessionDuration: 1h\n`,
        )
        .replace(
          'eligibilities:\n',
          'eligibilities:\n  - group: AWS-Account1-Developers\n    account: Account1\n    role: Auditor\n    maxDuration: 1h\n    requireMfa: true\n    approvers: { groups: [AWS-Account1-Administrators] }\n',
        ),
    );
    const applied = await runFerry(['--server', ferry.url, 'apply', tenant], {
      cwd: home,
      env: { FERRY_TOKEN: ferry.adminToken },
    });
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain(
      '+ eligibility group:AWS-Account1-Developers → aws:123456789012/Administrator',
    );

    const metadata = await (await fetch(`${ferry.url}/saml/metadata`)).text();
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: metadata,
      roles: ['Administrator', 'Developer', 'Auditor'].map((name) => ({
        name,
        maxSessionDurationSeconds: 3600,
      })),
    });
    await cliJson([
      'iam',
      'put-role-policy',
      '--role-name',
      'Administrator',
      '--policy-name',
      'ReadIam',
      '--policy-document',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: ['iam:ListRoles', 'iam:GetRole'], Resource: '*' }],
      }),
    ]);
    for (const [who, userName] of [
      ['dev', DEV],
      ['admin', ADMIN],
    ] as const) {
      envOf[who] = {
        HOME: home,
        FERRY_CONFIG_DIR: join(home, `ferry-${who}`),
        AWS_CONFIG_FILE: join(home, `aws-config-${who}`),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      };
      const login = await ferryCli(who, ['login', '--user', userName], `${PASSWORD}\n`);
      expect(login.stderr).toBe('');
      expect(login.code).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('refuses what the rules forbid: a password-only sign-in for an MFA role (step-up), a duration over the maximum, no justification', async () => {
    const mfa = await ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Auditor',
      '--duration',
      '30m',
    ]);
    expect(mfa.code).toBe(1);
    expect(mfa.stderr).toContain('Step-up required');
    expect(mfa.stderr).toContain('hint: sign in again with your one-time code');
    const long = await ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '2h',
      '--reason',
      'x',
    ]);
    expect(long.code).toBe(1);
    expect(long.stderr).toContain('at most 3600 seconds');
    const why = await ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '1h',
    ]);
    expect(why.stderr).toContain('needs a justification');
    const admin = await ferryCli('admin', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '1h',
      '--reason',
      'x',
    ]);
    expect(admin.stderr).toContain('is not eligible');

    // The same over HTTP: RFC 7807 problems a script can read.
    const jar = new CookieJar();
    expect((await signInWithPassword(jar, ferry.url, DEV, PASSWORD)).status).toBe(303);
    const res = await fetch(`${ferry.url}/api/v1/pim/activations`, {
      method: 'POST',
      headers: {
        cookie: jar.header(),
        'content-type': 'application/json',
        'x-csrf-token': await csrfTokenOf(ferry.url, jar),
      },
      body: JSON.stringify({ account: ACCOUNT, role: 'Auditor', durationSeconds: 1800 }),
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.json()).toMatchObject({
      type: expect.stringMatching(/step-up-required$/),
      effect: 'step-up',
      require: ['mfa'],
    });
    const anonymous = await fetch(`${ferry.url}/api/v1/pim/activations`, {
      method: 'POST',
      body: JSON.stringify({
        account: ACCOUNT,
        role: 'Administrator',
        durationSeconds: 1800,
        justification: 'x',
      }),
      headers: { 'content-type': 'application/json' },
    });
    expect(anonymous.status).toBe(401);
  });

  it('the approve/deny link of a notification opens a page where an approver denies; answering again is a conflict', async () => {
    const req = await ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '30m',
      '--reason',
      'try the page',
      '--json',
    ]);
    expect(req.code, req.stderr).toBe(0);
    const { id } = JSON.parse(req.stdout) as ActivationJson;
    const anonymous = await getPage(ferry.url, `/pim/activations/${id}?action=deny`, new CookieJar());
    expect(anonymous.status).toBe(303);
    expect(anonymous.location).toContain('/signin?return_to=');
    const jar = new CookieJar();
    await signInWithPassword(jar, ferry.url, ADMIN, PASSWORD);
    const page = await getPage(ferry.url, `/pim/activations/${id}?action=deny`, jar);
    expect(page.status).toBe(200);
    expect(page.body).toContain('try the page');
    expect(page.body).toContain(`action="/pim/activations/${id}/deny"`);
    const denied = await postForm(ferry.url, `/pim/activations/${id}/deny`, jar, {
      csrf: inputValue(page.body, 'csrf'),
      reason: 'use the page test',
    });
    expect(denied.status).toBe(303);
    const shown = await ferryCli('dev', ['activations', 'show', id, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, state: 'denied', endReason: 'use the page test' });
    const again = await ferryCli('admin', ['approve', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`activation ${id} is denied: it cannot be approved`);
    const forged = await postForm(ferry.url, `/pim/activations/${id}/approve`, jar, {
      csrf: 'forged',
      reason: '',
    });
    expect(forged.status).toBe(400);
  });

  it('request --wait, approve by an administrator, creds during the activation, revoke: the deny lands in IAM and the credentials are refused', async () => {
    const waiting = ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '1h',
      '--reason',
      'INC-1234 restore the orders table',
      '--ticket',
      'INC-1234',
      '--wait',
      '--poll',
      '1s',
      '--json',
    ]);
    const pending = await waitFor(
      'the request to reach the approver',
      async () => {
        const r = await ferryCli('admin', ['activations', '--pending', '--json']);
        const items = JSON.parse(r.stdout || '[]') as ActivationJson[];
        return items.length > 0 ? items : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    expect(pending).toHaveLength(1);
    const id = pending[0]!.id;

    const self = await ferryCli('dev', ['approve', id]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('nobody may approve their own request');

    const approved = await ferryCli('admin', ['approve', id, '--reason', 'go ahead', '--json']);
    expect(approved.code, approved.stderr).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({
      id,
      state: 'active',
      approvals: [{ userName: ADMIN }],
    });
    const waited = await waiting;
    expect(waited.code, waited.stderr).toBe(0);
    const activation = JSON.parse(waited.stdout) as ActivationJson;
    expect(activation).toMatchObject({ id, state: 'active' });

    // While active the role is one of the developer's entitlements: console sign-in, creds, aws config.
    const browser = new CookieJar();
    expect((await signInWithPassword(browser, ferry.url, DEV, PASSWORD)).status).toBe(303);
    const console_ = await getPage(
      ferry.url,
      `/apps/aws-console?account=${ACCOUNT}&role=Administrator`,
      browser,
    );
    expect(console_.status).toBe(200);
    expect(inputValue(console_.body, 'SAMLResponse')).toBeTruthy();
    const config = await ferryCli('dev', ['aws', 'config']);
    expect(config.code, config.stderr).toBe(0);
    expect(config.stdout).toContain('+ ferry-account1-administrator');
    const creds = await ferryCli('dev', [
      'creds',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--format',
      'json',
    ]);
    expect(creds.code, creds.stderr).toBe(0);
    const issued = JSON.parse(creds.stdout) as {
      accessKeyId: string;
      secretAccessKey: string;
      sessionToken: string;
      expiration: string;
      sourceIdentity: string;
    };
    expect(issued.sourceIdentity).toBe(DEV);
    // Never beyond the activation's end.
    expect(Date.parse(issued.expiration)).toBeLessThanOrEqual(Date.parse(activation.expiresAt!) + 1000);
    const keys = {
      accessKeyId: issued.accessKeyId,
      secretAccessKey: issued.secretAccessKey,
      sessionToken: issued.sessionToken,
    };

    const reset = await fetch(`${aws.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(reset.status).toBe(200);
    expect((await cli(['iam', 'list-roles'], keys)).code).toBe(0);

    // An admin token may revoke too; here the person ends it early themself.
    const revoked = await ferryCli('dev', ['activations', 'revoke', id, '--reason', 'done', '--json']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id, state: 'revoked' });
    await ferry.workers.drainOnce();

    const policy = await cli(
      ['iam', 'get-role-policy', '--role-name', 'Administrator', '--policy-name', 'FerryRevokedSessions'],
      ferryKeys,
    );
    expect(policy.code, policy.stderr).toBe(0);
    expect(
      (JSON.parse(policy.stdout) as { PolicyDocument: { Statement: unknown[] } }).PolicyDocument.Statement,
    ).toEqual([
      {
        Sid: 'Revoked1',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: {
          StringEquals: { 'aws:SourceIdentity': DEV },
          DateLessThan: { 'aws:TokenIssueTime': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
        },
      },
    ]);
    // moto applies the Deny without evaluating its conditions (see docs/offboarding.md): this proves the
    // policy is on the role and enforced; that it spares others and later sessions is iam-simulate's part.
    const refused = await cli(['iam', 'list-roles'], keys);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/AccessDenied/);

    // New issuance stopped: no console sign-in, the role is gone from the entitlements, no credentials.
    const noConsole = await getPage(
      ferry.url,
      `/apps/aws-console?account=${ACCOUNT}&role=Administrator`,
      browser,
    );
    expect(noConsole.status).toBe(403);
    const after = await ferryCli('dev', ['aws', 'config']);
    expect(after.stdout).not.toContain('+ ferry-account1-administrator');
    const fresh = await ferryCli('dev', [
      'creds',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--no-cache',
    ]);
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toContain('Access denied');

    const again = await ferryCli('dev', ['activations', 'revoke', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is revoked: it cannot be revoked');

    const audit = (await (
      await ferry.api(`/api/v1/audit/events?subject=${encodeURIComponent(DEV)}&limit=500`)
    ).json()) as {
      items: Array<{
        type: string;
        actor: { name?: string };
        data: { activationId: string; reason: string | null };
      }>;
    };
    const trail = audit.items
      .filter((e) => e.data.activationId === id)
      .map((e) => [e.type, e.actor.name, e.data.reason]);
    expect(trail).toEqual(
      expect.arrayContaining([
        ['pim.activation.requested', DEV, 'INC-1234 restore the orders table'],
        ['pim.activation.approved', ADMIN, 'go ahead'],
        ['pim.activation.active', ADMIN, null],
        ['pim.activation.revoked', DEV, 'done'],
      ]),
    );
    const revocations = (await (
      await ferry.api('/api/v1/audit/events?type=aws.sessions-revoked')
    ).json()) as {
      items: Array<{ subject: string; data: { target: string } }>;
    };
    expect(revocations.items.map((e) => [e.subject, e.data.target])).toEqual([
      [DEV, `aws:${ACCOUNT}/Administrator`],
    ]);
    const verify = (await (await ferry.api('/api/v1/audit/verify')).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  }, 120_000);
  it('an access review run from the CLI: a reviewer denies the eligibility, closing removes it', async () => {
    const admin = { FERRY_TOKEN: ferry.adminToken };
    const created = await ferryCli(
      'admin',
      [
        'reviews',
        'create',
        '--name',
        'Q1 Account1',
        '--group',
        'AWS-Account1-Developers',
        '--eligibilities',
        '--reviewer-group',
        'AWS-Account1-Administrators',
        '--deadline',
        '14d',
        '--json',
      ],
      undefined,
      admin,
    );
    expect(created.code, created.stderr).toBe(0);
    const campaign = JSON.parse(created.stdout) as { id: string; progress: { total: number } };
    expect(campaign.progress.total).toBe(3); // the developer's membership, two eligibilities
    const shown = await ferryCli('admin', ['reviews', 'show', campaign.id, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const items = (JSON.parse(shown.stdout) as { items: Array<{ id: string; kind: string; label: string }> })
      .items;
    const membership = items.find((i) => i.kind === 'membership')!;
    const adminElig = items.find((i) => i.label.endsWith('/Administrator'))!;
    expect(membership.label).toBe(`${DEV} in AWS-Account1-Developers`);
    const own = await ferryCli('dev', ['reviews', 'decide', campaign.id, membership.id, 'approve']);
    expect(own.code).toBe(1); // the developer is no reviewer (and could not review themself)
    const denied = await ferryCli('admin', [
      'reviews',
      'decide',
      campaign.id,
      adminElig.id,
      'deny',
      '--reason',
      'use break-glass instead',
    ]);
    expect(denied.code, denied.stderr).toBe(0);
    expect((await ferryCli('admin', ['reviews', 'decide', campaign.id, membership.id, 'approve'])).code).toBe(
      0,
    );
    const closed = await ferryCli('admin', ['reviews', 'close', campaign.id], undefined, admin);
    expect(closed.stdout).toContain('1 approved, 1 denied, 1 not reviewed of 3; 1 removed');
    await ferry.workers.drainOnce();
    const eligible = await ferryCli('dev', ['eligible', '--json']);
    expect((JSON.parse(eligible.stdout) as Array<{ target: string }>).map((e) => e.target)).toEqual([
      `aws:${ACCOUNT}/Auditor`,
    ]);
    const request = await ferryCli('dev', [
      'request',
      '--account',
      'Account1',
      '--role',
      'Administrator',
      '--duration',
      '1h',
      '--reason',
      'x',
    ]);
    expect(request.stderr).toContain('is not eligible');
  });
});
