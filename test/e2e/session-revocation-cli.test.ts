import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { copyDatabase, credentialProbe } from '../support/credential-probe.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const DEVELOPER = 'test-awsdeveloper@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

interface StoredLogin {
  accessToken: string;
  accessTokenExpiresAt: number;
  refreshToken: string;
}

/**
 * Issue 14, point 14: revoking a sign-in session ends what came from it. A person signs in twice with
 * the real CLI (`ferry login --user`, two config directories: a laptop and a build box) and gets AWS
 * credentials from moto; an admin revokes one sign-in with `ferry sessions revoke --end-aws-sessions`.
 * That sign-in's next `ferry creds --no-cache` is refused, with its still-fresh access token and after
 * a refresh, and says to sign in again; the other sign-in keeps working; the per-person deny lands.
 * Point 4 rides along: no audit event of the whole run holds a value accepted as a credential.
 */
describe.each(ENGINES)('revoking a sign-in session with the real CLI on %s', (engine) => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let home: string;
  let rp: { clientId: string; secret: string };
  const handedOut = new Map<string, string>();
  const envFor = (dir: string) => ({ HOME: home, FERRY_CONFIG_DIR: join(home, dir) });
  const ferryCli = (dir: string, args: string[], input?: string, extra: Record<string, string> = {}) =>
    runFerry(['--server', ferry.url, ...args], {
      cwd: home,
      env: { ...envFor(dir), ...extra },
      input,
      timeoutMs: 60_000,
    });
  const loginOf = (dir: string): { file: string; login: StoredLogin } => {
    const logins = join(home, dir, 'logins');
    const file = join(logins, readdirOne(logins));
    return { file, login: JSON.parse(readFileSync(file, 'utf8')) as StoredLogin };
  };
  const creds = (dir: string) =>
    ferryCli(dir, [
      'creds',
      '--account',
      'Account1',
      '--role',
      'Developer',
      '--no-cache',
      '--format',
      'credential_process',
    ]);

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-revoke-'));
    aws = await startLocalAws();
    ferry = await startTestFerry(engine, {
      config: { aws: { endpoint: aws.endpoint, accessKeyId: 'test', secretAccessKey: 'test' } },
    });
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
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
    const created = await s.oidcClients.create(ctx, {
      name: 'dashboard',
      kind: 'relying-party',
      redirectUris: ['http://127.0.0.1:9/callback'],
    });
    rp = { clientId: created.client.clientId, secret: created.secret! };
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: await (await fetch(`${ferry.url}/saml/metadata`)).text(),
      roles: [{ name: 'Developer' }],
    });
    handedOut.set(ferry.adminToken, 'admin API token');
  }, 180_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('the revoked sign-in’s next ferry creds --no-cache is refused with “sign in again”; the other sign-in and its tokens go on; the AWS deny lands', async () => {
    for (const dir of ['laptop', 'buildbox']) {
      const login = await ferryCli(dir, ['login', '--user', DEVELOPER], `${PASSWORD}\n`);
      expect(login.code, login.stderr).toBe(0);
      const issued = await creds(dir);
      expect(issued.code, issued.stderr).toBe(0);
      const keys = JSON.parse(issued.stdout) as { SecretAccessKey: string; SessionToken: string };
      handedOut.set(keys.SecretAccessKey, 'AWS secret access key');
      handedOut.set(keys.SessionToken, 'AWS session token');
      const { login: stored } = loginOf(dir);
      handedOut.set(stored.accessToken, `${dir} access token`);
      handedOut.set(stored.refreshToken, `${dir} refresh token`);
    }
    const sessions = (await (
      await ferry.api(`/api/v1/users/${encodeURIComponent(DEVELOPER)}/sessions`)
    ).json()) as { items: Array<{ id: string; createdAt: string }> };
    expect(sessions.items).toHaveLength(2);
    // Newest first: the build box signed in last; the laptop's sign-in is the older one.
    const laptopSession = sessions.items[1]!.id;

    const revoke = await ferryCli(
      'admin',
      ['sessions', 'revoke', laptopSession, '--end-aws-sessions'],
      undefined,
      {
        FERRY_TOKEN: ferry.adminToken,
      },
    );
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toContain(`revoked ${laptopSession}`);

    // Its access token is still fresh on the laptop, and refused.
    const refused = await creds('laptop');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/sign in again to \S+: run `ferry login --server /);
    // After a refresh attempt too: the refresh token died with the sign-in.
    const { file, login } = loginOf('laptop');
    writeFileSync(file, JSON.stringify({ ...login, accessTokenExpiresAt: Date.now() - 1000 }), {
      mode: 0o600,
    });
    const afterRefresh = await creds('laptop');
    expect(afterRefresh.code).toBe(1);
    expect(afterRefresh.stderr).toMatch(/your sign-in has ended .*run `ferry login/);

    // The build box's sign-in is another session: untouched.
    const other = await creds('buildbox');
    expect(other.code, other.stderr).toBe(0);

    const audit = (await (await ferry.api('/api/v1/audit/events?type=session.revoked')).json()) as {
      items: Array<{ data: Record<string, unknown> }>;
    };
    expect(audit.items.at(-1)?.data).toMatchObject({
      sessionId: laptopSession,
      grantsRevoked: 1,
      endAwsSessions: true,
    });

    // The per-person deny, through the outbox as offboarding does.
    await ferry.workers.drainOnce();
    const policy = await awsCli(aws, [
      'iam',
      'get-role-policy',
      '--role-name',
      'Developer',
      '--policy-name',
      'FerryRevokedSessions',
    ]);
    expect(policy.code, policy.stderr).toBe(0);
    expect(policy.stdout).toContain(DEVELOPER);
  }, 240_000);

  it('no audit event of the run holds a value accepted as a credential, nor any it handed out', async () => {
    const events = await ferry.services.store.db.selectFrom('audit_events').selectAll().execute();
    expect(events.length).toBeGreaterThan(10);
    const text = events.map((e) => `${e.actor}\n${e.subject ?? ''}\n${e.data}`).join('\n');
    for (const [secret, what] of handedOut) expect(text.includes(secret), what).toBe(false);

    const probe = credentialProbe(ferry, rp);
    const values = [...(await copyDatabase(ferry))].filter(([, where]) => where.startsWith('audit_events.'));
    const accepted: string[] = [];
    for (const [value, where] of values)
      for (const endpoint of await probe(value)) accepted.push(`${where} accepted by ${endpoint}`);
    expect(accepted).toEqual([]);
    // The probe recognises a live one.
    expect(await probe(ferry.adminToken)).toContain('admin API');
  }, 240_000);
});

function readdirOne(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (files.length !== 1) throw new Error(`expected one login in ${dir}, found ${files.join(', ')}`);
  return files[0]!;
}
