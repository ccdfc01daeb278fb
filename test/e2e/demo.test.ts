import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoCredentials } from '../../src/app/demo-tenant.js';
import { generateEd25519KeyPair } from '../../src/cli/ssh-keys.js';
import { totpCode } from '../../src/identity/totp.js';
import { awsCli } from '../support/local-aws.js';
import { csrfTokenOf } from '../support/web-form.js';

const DEMO = new URL('../../dist/app/demo.js', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface RunningDemo {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `npm run demo`'s program the way the README runs it, in its own working directory. */
async function startDemo(cwd: string, port: number): Promise<RunningDemo> {
  const child = spawn(process.execPath, [DEMO], {
    cwd,
    env: { ...process.env, FERRY_LISTEN: `127.0.0.1:${port}`, FERRY_PUBLIC_URL: `http://127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!out.includes('Press Ctrl-C')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`demo did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, output: () => out, exited };
}

/** A browser-less sign-in: GET the form for its CSRF token, POST the password, POST the code. */
async function signIn(base: string, userName: string, password: string, secret: string): Promise<string> {
  const form = await fetch(`${base}/signin`);
  const csrfCookie = /ferry_csrf=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const post = (path: string, fields: Record<string, string>, cookie: string) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ csrf, return_to: '/account', ...fields }),
    });
  const step1 = await post('/signin', { username: userName, password }, `ferry_csrf=${csrfCookie}`);
  expect(step1.status).toBe(303);
  expect(step1.headers.get('location')).toMatch(/^\/signin\/code/);
  const pending = /ferry_session=([^;]+)/.exec(step1.headers.get('set-cookie') ?? '')![1]!;
  const step2 = await post(
    '/signin/code',
    { code: totpCode(secret, new Date()) },
    `ferry_csrf=${csrfCookie}; ferry_session=${pending}`,
  );
  expect(step2.status).toBe(303);
  expect(step2.headers.get('location')).toBe('/account');
  return /ferry_session=([^;]+)/.exec(step2.headers.get('set-cookie') ?? '')![1]!;
}

describe('npm run demo', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  let port: number;
  let demo: RunningDemo;
  let credentials: DemoCredentials;

  beforeAll(async () => {
    port = await freePort();
    demo = await startDemo(cwd, port);
    credentials = JSON.parse(
      readFileSync(join(cwd, 'data', 'demo-credentials.json'), 'utf8'),
    ) as DemoCredentials;
  }, 90_000);

  afterAll(async () => {
    if (demo?.child.exitCode === null) demo.child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('prints the URLs, every demo user with password and TOTP secret, and what to try next', () => {
    const out = demo.output();
    expect(out).toContain(`http://127.0.0.1:${port}/signin`);
    for (const user of credentials.users) {
      expect(out).toContain(user.userName);
      expect(out).toContain(user.password);
      expect(out).toContain(user.totpSecret);
    }
    expect(out).toContain('Next, try:');
    expect(credentials.users.map((u) => u.displayName)).toEqual([
      'Test-AWSAdmin',
      'Test-AWSDeveloper',
      'Test-Helpdesk',
      'Test-Auditor',
    ]);
  });

  it('serves an internal app behind the identity-aware proxy, which sends a browser to Ferry’s sign-in', async () => {
    expect(credentials.proxiedApp).toMatch(/^http:\/\/localhost:\d+\/$/);
    expect(demo.output()).toContain(`Proxied app    ${credentials.proxiedApp}`);
    const page = await fetch(credentials.proxiedApp!, {
      redirect: 'manual',
      headers: { accept: 'text/html' },
    });
    expect(page.status).toBe(302);
    const location = new URL(page.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`http://127.0.0.1:${port}/oidc/auth`);
    expect(location.searchParams.get('client_id')).toBe('ferry-proxy');
  });

  it('keeps the tenant in SQLite under ./data and writes the credentials file owner-only', () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    expect(mode(join(cwd, 'data', 'demo-credentials.json'))).toBe(0o600);
    expect(mode(join(cwd, 'data', 'master.key'))).toBe(0o600);
    expect(
      readFileSync(join(cwd, 'data', 'ferry.db'))
        .subarray(0, 15)
        .toString(),
    ).toBe('SQLite format 3');
  });

  it('lets a demo user sign in with password and TOTP and see their group', async () => {
    const dev = credentials.users.find((u) => u.displayName === 'Test-AWSDeveloper')!;
    const session = await signIn(`http://127.0.0.1:${port}`, dev.userName, dev.password, dev.totpSecret);
    const account = await fetch(`http://127.0.0.1:${port}/account`, {
      headers: { cookie: `ferry_session=${session}` },
    });
    expect(account.status).toBe(200);
    const html = await account.text();
    expect(html).toContain(dev.userName);
    expect(html).toContain('AWS-Account1-Developers');

    // The demo maps the developers to ec2-user on every host: one session, one SSH certificate.
    const ssh = await fetch(`http://127.0.0.1:${port}/api/v1/ssh/certificates`, {
      method: 'POST',
      headers: {
        cookie: `ferry_session=${session}`,
        'content-type': 'application/json',
        'x-csrf-token': await csrfTokenOf(`http://127.0.0.1:${port}`, `ferry_session=${session}`),
      },
      body: JSON.stringify({
        publicKey: generateEd25519KeyPair('demo').publicKeyLine,
        host: 'ip-10-0-0-5.ec2.internal',
      }),
    });
    expect(ssh.status).toBe(201);
    const cert = (await ssh.json()) as { principals: string[]; keyId: string };
    expect(cert.principals).toEqual(['ec2-user']);
    expect(cert.keyId).toMatch(new RegExp(`^${dev.userName} serial \\d+$`));
  });

  it('answers the admin API with the printed token', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/groups/AWS-Account1-Administrators`, {
      headers: { authorization: `Bearer ${credentials.adminToken}` },
    });
    expect(res.status).toBe(200);
    const group = (await res.json()) as { members: Array<{ userName: string }> };
    expect(group.members.map((m) => m.userName)).toEqual(['test-awsadmin@contoso.example']);
  });

  it('makes Developers eligible for Administrator, and the AdministratorAccess permission set, for an hour, with justification and an Administrator’s approval', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/pim/eligibilities`, {
      headers: { authorization: `Bearer ${credentials.adminToken}` },
    });
    expect(res.status).toBe(200);
    const { items } = (await res.json()) as { items: Array<Record<string, unknown>> };
    expect(items).toEqual([
      expect.objectContaining({
        target: 'aws:123456789012/Administrator',
        principalType: 'group',
        maxDuration: 3600,
        requireJustification: true,
        approvalsRequired: 1,
        approvers: [expect.objectContaining({ type: 'group', name: 'AWS-Account1-Administrators' })],
      }),
      expect.objectContaining({
        target: 'aws:123456789012/permission-set/AdministratorAccess',
        kind: 'permission-set',
        principalType: 'group',
        maxDuration: 3600,
        requireJustification: true,
        approvalsRequired: 1,
        approvers: [expect.objectContaining({ type: 'group', name: 'AWS-Account1-Administrators' })],
      }),
    ]);
  });

  it('created the demo account roles in the local AWS', async () => {
    expect(credentials.aws).not.toBeNull();
    const aws = credentials.aws!;
    expect(aws.accountId).toBe('123456789012');
    const admin = await awsCli(aws as { endpoint: string; region: string }, [
      'iam',
      'list-attached-role-policies',
      '--role-name',
      'Administrator',
    ]);
    expect(admin.code).toBe(0);
    expect(admin.stdout).toContain('arn:aws:iam::aws:policy/AdministratorAccess');
    const dev = await awsCli(aws as { endpoint: string; region: string }, [
      'iam',
      'list-attached-role-policies',
      '--role-name',
      'Developer',
    ]);
    expect(dev.stdout).toContain('AmazonS3FullAccess');
    expect(dev.stdout).not.toContain('AdministratorAccess');
  });

  it('stops Ferry and the local AWS on Ctrl-C, and a second start keeps the same tenant', async () => {
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    await expect(fetch(credentials.aws!.endpoint!)).rejects.toThrow();

    const again = await startDemo(cwd, port);
    try {
      const second = JSON.parse(
        readFileSync(join(cwd, 'data', 'demo-credentials.json'), 'utf8'),
      ) as DemoCredentials;
      expect(second.users.map((u) => [u.userName, u.password, u.totpSecret])).toEqual(
        credentials.users.map((u) => [u.userName, u.password, u.totpSecret]),
      );
      expect(second.adminToken).toBe(credentials.adminToken);
      const users = await fetch(`http://127.0.0.1:${port}/api/v1/users`, {
        headers: { authorization: `Bearer ${second.adminToken}` },
      });
      // the same people as the first start: no one was created twice
      expect(((await users.json()) as { total: number }).total).toBe(credentials.users.length);
    } finally {
      again.child.kill('SIGINT');
      expect(await again.exited).toBe(0);
    }
  }, 90_000);
});
