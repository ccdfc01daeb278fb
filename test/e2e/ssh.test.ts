import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { localLogin, newKeyPair, sshWithCertificate, startSshd, type TestSshd } from '../support/sshd.js';
import { csrfTokenOf } from '../support/web-form.js';

const operator = { actor: { type: 'operator' as const, name: 'test' } };
const PASSWORD = 'correct horse battery staple 42';

/** Real time plus an offset the test can move: issue certificates "an hour ago". */
class OffsetClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/** Signs in on Ferry's own form pages (password only: the test config does not require MFA). */
async function signIn(base: string, userName: string): Promise<string> {
  const form = await fetch(`${base}/signin`);
  const csrfCookie = /ferry_csrf=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${base}/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `ferry_csrf=${csrfCookie}` },
    body: new URLSearchParams({ csrf, return_to: '/account', username: userName, password: PASSWORD }),
  });
  expect(res.status).toBe(303);
  return `ferry_session=${/ferry_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!}`;
}

describe.each(ENGINES)('SSH certificate authority against a real sshd (%s)', (engine) => {
  const clock = new OffsetClock();
  const work = mkdtempSync(join(tmpdir(), 'ferry-ssh-e2e-'));
  const login = localLogin();
  let ferry: TestFerry;
  let sshd: TestSshd;
  let developer: string;
  let outsider: string;
  let developerId: string;
  let knownHosts: string;

  const requestCertificate = async (
    cookie: string,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => {
    // A browser whose session has ended (or never began) has no CSRF token to send either.
    const csrf = await csrfTokenOf(ferry.url, cookie).catch(() => null);
    return fetch(new URL('/api/v1/ssh/certificates', ferry.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie,
        ...(csrf ? { 'x-csrf-token': csrf } : {}),
        ...headers,
      },
      body: JSON.stringify(body),
    });
  };

  /** A fresh key pair and a certificate for it, saved where ssh looks for it. */
  async function certified(cookie: string, name: string, body: Record<string, unknown> = {}, headers = {}) {
    const pair = newKeyPair(work, name);
    const res = await requestCertificate(
      cookie,
      { publicKey: pair.publicKey, host: '127.0.0.1', login, ...body },
      headers,
    );
    const json = (await res.json()) as {
      certificate: string;
      serial: string;
      keyId: string;
      validBefore: string;
    };
    expect(res.status, JSON.stringify(json)).toBe(201);
    const certificate = `${pair.key}-cert.pub`;
    writeFileSync(certificate, `${json.certificate}\n`);
    return { ...json, ...pair, certificate };
  }

  const ssh = (c: { key: string; certificate: string }, as = login) =>
    sshWithCertificate({
      port: sshd.port,
      login: as,
      key: c.key,
      certificate: c.certificate,
      knownHosts,
      command: ['echo', 'ok'],
    });

  const refreshKrl = async () => {
    const res = await ferry.api('/api/v1/ssh/krl', { auth: false });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    sshd.setRevokedKeys(Buffer.from(await res.arrayBuffer()));
  };

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      clock,
      // trustProxy lets the test present another client address through X-Forwarded-For.
      config: { ssh: { bindSourceAddress: true }, http: { trustProxy: true } },
    });
    const { services } = ferry;
    const devs = await services.groups.create(operator, { displayName: 'AWS-Account1-Developers' });
    const dev = await services.users.create(operator, {
      userName: 'dev@contoso.example',
      password: PASSWORD,
    });
    developerId = dev.id;
    await services.groups.setMembership(operator, devs.id, dev.id, true);
    await services.users.create(operator, { userName: 'outsider@contoso.example', password: PASSWORD });
    // The developers may log in as the local login (and as `deploy`, which this server does not accept).
    const mapping = await ferry.api('/api/v1/ssh/logins', {
      method: 'POST',
      body: JSON.stringify({
        group: 'AWS-Account1-Developers',
        hosts: '127.0.0.*',
        logins: [login, 'deploy'],
      }),
    });
    expect(mapping.status).toBe(201);
    const other = await ferry.api('/api/v1/ssh/logins', {
      method: 'POST',
      body: JSON.stringify({ group: 'AWS-Account1-Developers', hosts: '*.prod.internal', logins: ['root'] }),
    });
    expect(other.status).toBe(201);

    const caPub = await (await ferry.api('/api/v1/ssh/ca.pub', { auth: false })).text();
    expect(caPub).toMatch(/^ssh-ed25519 \S+ ferry-user-ca-current\nssh-rsa \S+ ferry-user-ca-current\n$/);
    const krl = Buffer.from(await (await ferry.api('/api/v1/ssh/krl', { auth: false })).arrayBuffer());
    sshd = await startSshd({
      trustedUserCaKeys: caPub,
      revokedKeys: krl,
      principals: { [login]: [login] },
      hostCertificate: async (hostPublicKey) => {
        const res = await ferry.api('/api/v1/ssh/host-certificates', {
          method: 'POST',
          body: JSON.stringify({ publicKey: hostPublicKey, hostnames: ['127.0.0.1', 'localhost'] }),
        });
        expect(res.status).toBe(201);
        return ((await res.json()) as { certificate: string }).certificate;
      },
    });
    knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, await (await ferry.api('/api/v1/ssh/known_hosts', { auth: false })).text());
    developer = await signIn(ferry.url, 'dev@contoso.example');
    outsider = await signIn(ferry.url, 'outsider@contoso.example');
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await ferry?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("a developer's certificate logs in, and sshd logs the key id that names the person and serial", async () => {
    const cert = await certified(developer, 'dev-ok');
    expect(cert.keyId).toBe(`dev@contoso.example serial ${cert.serial}`);
    const res = await ssh(cert);
    expect(res.stderr).not.toContain('Host key verification failed');
    expect(res.stdout.trim(), res.stderr).toBe('ok');
    expect(res.status).toBe(0);
    expect(sshd.log()).toContain(`ID dev@contoso.example serial ${cert.serial} (serial ${cert.serial})`);

    const listing = execFileSync('ssh-keygen', ['-L', '-f', cert.certificate], { encoding: 'utf8' });
    expect(listing).toMatch(new RegExp(`Principals:\\s*\\n\\s+${login}\\n\\s+Critical Options:`));
    expect(listing).toContain('source-address 127.0.0.1');
    expect(listing).toMatch(/Extensions:\s*\n\s+permit-pty\n\s*$/);
    // 15 minutes from now at most (the default ceiling), whatever was asked.
    const long = await certified(developer, 'dev-long', { duration: 86_400 });
    expect(Date.parse(long.validBefore) - Date.now()).toBeLessThanOrEqual(15 * 60_000 + 1000);
    expect(Date.parse(long.validBefore) - Date.now()).toBeGreaterThan(14 * 60_000);

    // Audited and in the issued ledger under the serial sshd logs.
    const issued = (await (await ferry.api(`/api/v1/ssh/certificates?user=${developerId}`)).json()) as {
      items: Array<{ serial: string; target: string }>;
    };
    expect(issued.items.map((i) => i.serial)).toContain(cert.serial);
    expect(issued.items.find((i) => i.serial === cert.serial)!.target).toBe(`ssh:${login}@127.0.0.1`);
  });

  it('a certificate signed by the RSA CA (for servers without Ed25519) logs in too', async () => {
    const cert = await certified(developer, 'dev-rsa-ca', { caAlgorithm: 'rsa-sha2-512' });
    const res = await ssh(cert);
    expect(res.stdout.trim(), res.stderr).toBe('ok');
  });

  it('a certificate whose principal the server does not list is refused by sshd', async () => {
    const cert = await certified(developer, 'dev-deploy', { login: 'deploy' });
    const res = await ssh(cert, login);
    expect(res.status).toBe(255);
    expect(res.stderr).toContain('Permission denied');
    expect(res.stdout).toBe('');
  });

  it('an expired certificate is refused by sshd', async () => {
    clock.offsetMs = -3_600_000;
    let cert: Awaited<ReturnType<typeof certified>>;
    try {
      cert = await certified(developer, 'dev-expired');
    } finally {
      clock.offsetMs = 0;
    }
    expect(Date.parse(cert.validBefore)).toBeLessThan(Date.now());
    const res = await ssh(cert);
    expect(res.status).toBe(255);
    expect(res.stderr).toContain('Permission denied');
    expect(sshd.log()).toMatch(/expired|Certificate invalid/);
  });

  it('a certificate bound to another source address is refused by sshd', async () => {
    const cert = await certified(developer, 'dev-elsewhere', {}, { 'x-forwarded-for': '10.9.9.9' });
    expect(execFileSync('ssh-keygen', ['-L', '-f', cert.certificate], { encoding: 'utf8' })).toContain(
      'source-address 10.9.9.9',
    );
    const res = await ssh(cert);
    expect(res.status).toBe(255);
    expect(res.stderr).toContain('Permission denied');
  });

  it('a revoked serial is refused once the server has the KRL; deactivation revokes every live certificate', async () => {
    const cert = await certified(developer, 'dev-revoke');
    const kept = await certified(developer, 'dev-kept');
    expect((await ssh(cert)).stdout.trim()).toBe('ok');
    const revoke = await ferry.api(`/api/v1/ssh/certificates/${cert.serial}/revoke`, {
      method: 'POST',
      body: JSON.stringify({ reason: 'laptop lost' }),
    });
    expect(revoke.status).toBe(200);
    expect(((await revoke.json()) as { revokedAt: string | null }).revokedAt).not.toBeNull();
    await refreshKrl();
    const refused = await ssh(cert);
    expect(refused.status).toBe(255);
    expect(sshd.log()).toMatch(/revoked/i);
    expect((await ssh(kept)).stdout.trim()).toBe('ok');
    const missing = await ferry.api('/api/v1/ssh/certificates/999999/revoke', { method: 'POST' });
    expect(missing.status, await missing.clone().text()).toBe(404);

    // Offboarding: deactivating the person puts their other certificates into the KRL.
    const patch = await ferry.api(`/api/v1/users/${developerId}`, {
      method: 'PATCH',
      body: JSON.stringify({ active: false }),
    });
    expect(patch.status).toBe(200);
    await ferry.workers.drainOnce();
    await refreshKrl();
    expect((await ssh(kept)).status).toBe(255);
    const krlFile = join(work, 'current.krl');
    writeFileSync(
      krlFile,
      Buffer.from(await (await ferry.api('/api/v1/ssh/krl', { auth: false })).arrayBuffer()),
    );
    const query = spawnSync('ssh-keygen', ['-Q', '-f', krlFile, kept.certificate], { encoding: 'utf8' });
    expect(query.stdout).toContain('REVOKED');
    // And Ferry issues them nothing more.
    const after = await requestCertificate(developer, {
      publicKey: newKeyPair(work, 'dev-gone').publicKey,
      host: '127.0.0.1',
      login,
    });
    expect([401, 403]).toContain(after.status);
    // Deactivation also ended their sessions: back in, they sign in again.
    await ferry.api(`/api/v1/users/${developerId}`, {
      method: 'PATCH',
      body: JSON.stringify({ active: true }),
    });
    developer = await signIn(ferry.url, 'dev@contoso.example');
  });

  it('Ferry refuses a person without an entitlement, a login not mapped, and anonymous callers', async () => {
    const pair = newKeyPair(work, 'outsider');
    const res = await requestCertificate(outsider, { publicKey: pair.publicKey, host: '127.0.0.1', login });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { detail: string; reasons: Array<{ message: string }> };
    expect(problem.reasons[0]!.message).toContain(
      'no SSH login mapping gives outsider@contoso.example any login on 127.0.0.1',
    );

    const root = await requestCertificate(developer, {
      publicKey: pair.publicKey,
      host: '127.0.0.1',
      login: 'root',
    });
    expect(root.status).toBe(403);
    expect(((await root.json()) as { detail: string }).detail).toContain('may use: deploy');

    const anon = await requestCertificate('', { publicKey: pair.publicKey, host: '127.0.0.1', login });
    expect(anon.status).toBe(401);

    const audit = (await (await ferry.api('/api/v1/audit/events?type=ssh-certificate.denied')).json()) as {
      items: Array<{ subject: string; outcome: string }>;
    };
    expect(audit.items.some((e) => e.subject === 'outsider@contoso.example' && e.outcome === 'failure')).toBe(
      true,
    );
  });

  it('bad input is a 400 problem, never a certificate', async () => {
    const pair = newKeyPair(work, 'bad-input');
    const cases: Array<Record<string, unknown>> = [
      { publicKey: 'ssh-ed25519 AAAA', host: '127.0.0.1', login },
      { publicKey: pair.publicKey, host: 'bad host!', login },
      { publicKey: pair.publicKey, host: '127.0.0.1', login: 'Bad Login' },
      { publicKey: pair.publicKey, host: '127.0.0.1', login, duration: 0 },
      { publicKey: pair.publicKey, host: '127.0.0.1', login, extra: 1 },
    ];
    for (const body of cases) {
      const res = await requestCertificate(developer, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});
