import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createProxy } from '../../src/app/proxy.js';
import type { AuditContext } from '../../src/audit/actor.js';
import { listAudit } from '../../src/audit/ledger.js';
import { Browser, inputValue } from '../support/browserless.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { runFerry } from '../support/process.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const DEVELOPER = 'test-awsdeveloper@contoso.example';
const ADMIN = 'test-awsadmin@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP request to the proxy with a chosen Host header (the app is chosen by host). */
function viaProxy(
  proxyUrl: string,
  host: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const target = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        hostname: target.hostname,
        port: target.port,
        path,
        method: init.method ?? 'GET',
        headers: { host, ...init.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

describe.each(ENGINES)('identity-aware proxy on %s', (engine) => {
  let ferry: TestFerry;
  let upstream: Upstream;
  let proxyUrl: string;
  /** the app for developers, at the proxy's 127.0.0.1 address */
  let dashHost: string;
  /** an app only administrators may use, at the proxy's localhost address */
  let adminHost: string;
  let home: string;
  let developerToken: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    ferry = await startTestFerry(engine, {
      config: { proxy: { listen: '127.0.0.1:0', auditSampleRate: 0 } },
    });
    proxyUrl = ferry.proxyUrl!;
    const port = new URL(proxyUrl).port;
    dashHost = `127.0.0.1:${port}`;
    adminHost = `localhost:${port}`;
    const s = ferry.services;
    for (const [groupName, userName] of [
      ['AWS-Account1-Developers', DEVELOPER],
      ['AWS-Account1-Administrators', ADMIN],
    ] as const) {
      const group = await s.groups.create(ctx, { displayName: groupName });
      const user = await s.users.create(ctx, {
        userName,
        password: PASSWORD,
        emails: [{ value: userName.replace('@', '.mail@'), primary: true }],
      });
      await s.groups.setMembership(ctx, group.id, user.id, true);
    }
    // Registered the way an operator does: the CLI against the admin API.
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-proxy-'));
    const admin = { FERRY_TOKEN: ferry.adminToken, HOME: home };
    const dash = await runFerry(
      [
        '--server',
        ferry.url,
        'proxy',
        'apps',
        'add',
        'dash',
        '--upstream',
        upstream.url,
        '--url',
        `http://${dashHost}/`,
        '--group',
        'AWS-Account1-Developers',
      ],
      { cwd: home, env: admin },
    );
    expect(dash.stderr).toBe('');
    expect(dash.stdout).toContain(
      `dash: http://${dashHost} → ${upstream.url} (groups AWS-Account1-Developers)`,
    );
    const adminApp = await runFerry(
      [
        '--server',
        ferry.url,
        'proxy',
        'apps',
        'add',
        'ops',
        '--upstream',
        upstream.url,
        '--url',
        `http://${adminHost}`,
        '--group',
        'AWS-Account1-Administrators',
      ],
      { cwd: home, env: admin },
    );
    expect(adminApp.code).toBe(0);
    // A bearer token the way a person gets one: `ferry login` with the password on standard input.
    const env = { HOME: home, FERRY_CONFIG_DIR: join(home, 'ferry') };
    const login = await runFerry(['login', '--server', ferry.url, '--user', DEVELOPER], {
      cwd: home,
      env,
      input: `${PASSWORD}\n`,
      timeoutMs: 60_000,
    });
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    const [file] = (await import('node:fs')).readdirSync(join(home, 'ferry', 'logins'));
    developerToken = (
      JSON.parse(readFileSync(join(home, 'ferry', 'logins', file!), 'utf8')) as { accessToken: string }
    ).accessToken;
  }, 120_000);

  afterAll(async () => {
    await ferry?.close();
    await upstream?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const lastSeen = () => upstream.seen.at(-1)!;

  it('lists the registered apps with their groups (CLI, admin API)', async () => {
    const res = await runFerry(['--server', ferry.url, 'proxy', 'apps', 'list'], {
      cwd: home,
      env: { FERRY_TOKEN: ferry.adminToken, HOME: home },
    });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      /dash\s+http:\/\/127\.0\.0\.1:\d+\s+http:\/\/127\.0\.0\.1:\d+\s+AWS-Account1-Developers/,
    );
    const bad = await ferry.api('/api/v1/proxy/apps/bad', {
      method: 'PUT',
      body: JSON.stringify({ upstream: 'ftp://x', url: 'http://bad.example' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toContain('not an http(s) URL');
    const clash = await ferry.api('/api/v1/proxy/apps/other', {
      method: 'PUT',
      body: JSON.stringify({ upstream: upstream.url, url: `http://${dashHost}` }),
    });
    expect(clash.status).toBe(409);
    const unknownGroup = await ferry.api('/api/v1/proxy/apps/other', {
      method: 'PUT',
      body: JSON.stringify({ upstream: upstream.url, url: 'http://other.example', groups: ['Nobody'] }),
    });
    expect(unknownGroup.status).toBe(404);
  });

  it('sends an unauthenticated browser to Ferry’s sign-in and back, then through to the app', async () => {
    const browser = new Browser(ferry.url);
    const first = await browser.get(`http://${dashHost}/reports?week=48`);
    expect(first.status).toBe(302);
    const auth = new URL(first.location!);
    expect(auth.origin).toBe(ferry.url);
    expect(auth.pathname).toBe('/oidc/auth');
    expect(auth.searchParams.get('client_id')).toBe('ferry-proxy');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('redirect_uri')).toBe(`http://${dashHost}/.ferry/callback`);

    // Through Ferry's own pages: sign in, come back with a code.
    let next = first.location!;
    for (let hop = 0; hop < 10 && new URL(next, ferry.url).origin === ferry.url; hop++) {
      const url = new URL(next, ferry.url);
      if (url.pathname === '/signin') {
        const form = await browser.get(url.pathname + url.search);
        const res = await browser.post('/signin', {
          csrf: inputValue(form.text, 'csrf') ?? '',
          return_to: inputValue(form.text, 'return_to') ?? '',
          username: DEVELOPER,
          password: PASSWORD,
        });
        expect(res.status).toBe(303);
        next = res.location!;
        continue;
      }
      const res = await browser.get(url.pathname + url.search);
      expect(res.location, `GET ${url.pathname} answered ${res.status}`).toBeTruthy();
      next = res.location!;
    }
    const callback = new URL(next);
    expect(`${callback.host}${callback.pathname}`).toBe(`${dashHost}/.ferry/callback`);
    const back = await browser.get(callback.href);
    expect(back.status).toBe(303);
    expect(back.location).toBe('/reports?week=48');
    const session = back.setCookies.find((c) => c.name === 'ferry_proxy_session');
    expect(session?.attributes.get('httponly')).toBe(true);
    expect(session?.attributes.get('samesite')).toBe('Lax');

    const page = await browser.get(`http://${dashHost}/reports?week=48`);
    expect(page.status).toBe(200);
    const seen = lastSeen();
    expect(seen.url).toBe('/reports?week=48');
    expect(seen.headers['x-ferry-user']).toBe(DEVELOPER);
    expect(seen.headers['x-ferry-email']).toBe('test-awsdeveloper.mail@contoso.example');
    expect(seen.headers['x-ferry-groups']).toBe('AWS-Account1-Developers');
    // Ferry's cookies (its session, the proxy's own) never reach the app.
    expect(seen.headers.cookie ?? '').not.toMatch(/ferry_/);
    expect(page.headers.get('set-cookie')).toContain('app_pref=dark');

    // The first request of the session was audited even though sampling is off.
    const events = await listAudit(ferry.services.store.db, { type: 'proxy.request.allowed', limit: 50 });
    expect(
      events.some(
        (e) =>
          e.actor.type === 'user' &&
          e.actor.name === DEVELOPER &&
          e.data.sampled === 'first-in-session' &&
          e.data.client === 'browser',
      ),
    ).toBe(true);

    // The session says who the person is, not what they may use: another app decides for itself.
    // (This jar sends every cookie to every host; a real browser keeps the cookie on its app's origin.)
    const other = await browser.get(`http://${adminHost}/`);
    expect(other.status).toBe(403);
    expect(other.headers.get('content-type')).toContain('text/html');
    expect(other.text).toContain('app:ops is assigned to AWS-Account1-Administrators');

    // Signing out of the proxy clears its cookie; the next page load goes back to Ferry.
    const out = await browser.get(`http://${dashHost}/.ferry/signout`);
    expect(out.status).toBe(303);
    const again = await browser.get(`http://${dashHost}/reports`);
    expect(again.status).toBe(302);
    expect(again.location).toContain(`${ferry.url}/oidc/auth?`);
  });

  it('refuses a callback it did not start, with the wrong state, a made-up code or another app’s cookie', async () => {
    const browser = new Browser(ferry.url);
    const bare = await browser.get(`http://${dashHost}/.ferry/callback?code=abc&state=xyz`);
    expect(bare.status).toBe(400);
    expect(bare.text).toContain('not started here');

    const start = await browser.get(`http://${dashHost}/`);
    expect(start.status).toBe(302);
    const state = new URL(start.location!).searchParams.get('state')!;
    const wrongState = await browser.get(`http://${dashHost}/.ferry/callback?code=abc&state=${state}x`);
    expect(wrongState.status).toBe(400);
    expect(wrongState.text).toContain('state mismatch');
    const madeUp = await browser.get(`http://${dashHost}/.ferry/callback?code=made-up-code&state=${state}`);
    expect(madeUp.status).toBe(400);
    expect(madeUp.text).toContain('refused the code');
    expect(madeUp.setCookies.some((c) => c.name === 'ferry_proxy_session')).toBe(false);
    // The sealed sign-in state is bound to the app's origin.
    const elsewhere = await browser.get(`http://${adminHost}/.ferry/callback?code=abc&state=${state}`);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.text).toContain('not valid for this app');
    const denied = await browser.get(`http://${dashHost}/.ferry/callback?error=access_denied&state=${state}`);
    expect(denied.status).toBe(400);
  });

  it('answers a non-browser request without credentials with 401, not a redirect', async () => {
    const res = await viaProxy(proxyUrl, dashHost, '/api/data', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.headers['content-type']).toBe('application/problem+json');
    const forged = await viaProxy(proxyUrl, dashHost, '/api/data', {
      headers: { authorization: 'Bearer not-a-token-but-long-enough-000000' },
    });
    expect(forged.status).toBe(401);
    expect(forged.headers['www-authenticate']).toContain('invalid_token');
  });

  it('lets a bearer token from ferry login through, and never passes the token upstream', async () => {
    const res = await viaProxy(proxyUrl, dashHost, '/api/data', {
      headers: { authorization: `Bearer ${developerToken}`, accept: 'application/json' },
    });
    expect(res.status).toBe(200);
    const seen = lastSeen();
    expect(seen.headers['x-ferry-user']).toBe(DEVELOPER);
    expect(seen.headers.authorization).toBeUndefined();
  });

  it('refuses a person the app is not assigned to with 403 and a reason, and audits the denial', async () => {
    const before = upstream.seen.length;
    const res = await viaProxy(proxyUrl, adminHost, '/', {
      headers: { authorization: `Bearer ${developerToken}`, accept: 'application/json' },
    });
    expect(res.status).toBe(403);
    const problem = JSON.parse(res.body) as { detail: string };
    expect(problem.detail).toContain('app:ops is assigned to AWS-Account1-Administrators');
    expect(upstream.seen.length).toBe(before);
    const denied = await listAudit(ferry.services.store.db, { type: 'proxy.request.denied', limit: 10 });
    expect(denied.at(-1)).toMatchObject({
      outcome: 'failure',
      subject: 'app:ops',
      actor: { name: DEVELOPER },
    });
    const unknownHost = await viaProxy(proxyUrl, 'nothing.example', '/', {
      headers: { authorization: `Bearer ${developerToken}` },
    });
    expect(unknownHost.status).toBe(404);
  });

  it('refuses everyone an app added with no group, until it is added open (CLI)', async () => {
    const host = `closed.example:${new URL(proxyUrl).port}`;
    const admin = { FERRY_TOKEN: ferry.adminToken, HOME: home };
    const add = (...flags: string[]) =>
      runFerry(
        [
          '--server',
          ferry.url,
          'proxy',
          'apps',
          'add',
          'closed',
          '--upstream',
          upstream.url,
          '--url',
          `http://${host}`,
          ...flags,
        ],
        { cwd: home, env: admin },
      );
    const added = await add();
    expect(added.stderr).toBe('');
    expect(added.stdout).toContain('(nobody (no group assigned; not open))');
    const before = upstream.seen.length;
    const res = await viaProxy(proxyUrl, host, '/', {
      headers: { authorization: `Bearer ${developerToken}`, accept: 'application/json' },
    });
    expect(res.status).toBe(403);
    expect((JSON.parse(res.body) as { detail: string }).detail).toBe(
      'you may not use closed: app:closed is assigned to no group and is not open to all users; an administrator must assign it',
    );
    expect(upstream.seen.length).toBe(before);
    const denied = await listAudit(ferry.services.store.db, {
      type: 'proxy.request.denied',
      subject: 'app:closed',
    });
    expect(denied.at(-1)).toMatchObject({ outcome: 'failure', actor: { name: DEVELOPER } });
    expect(JSON.stringify(denied.at(-1)!.data)).toContain('assigned to no group');

    const opened = await add('--open');
    expect(opened.stdout).toContain('(every active user)');
    const allowed = await viaProxy(proxyUrl, host, '/open', {
      headers: { authorization: `Bearer ${developerToken}` },
    });
    expect(allowed.status).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    await ferry.services.proxyApps.remove(ctx, 'closed');
  });

  it('signs the identity header so it verifies with Ferry’s JWKS, and only for this app', async () => {
    await viaProxy(proxyUrl, dashHost, '/whoami', { headers: { authorization: `Bearer ${developerToken}` } });
    const jwt = lastSeen().headers['x-ferry-identity'] as string;
    const jwks = jose.createRemoteJWKSet(new URL(`${ferry.url}/oidc/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, {
      issuer: ferry.url,
      audience: `http://${dashHost}`,
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ preferred_username: DEVELOPER, groups: ['AWS-Account1-Developers'] });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    await expect(
      jose.jwtVerify(jwt, jwks, { issuer: ferry.url, audience: `http://${adminHost}` }),
    ).rejects.toThrow(/aud/);
    // A header signed by anyone else does not verify.
    const { privateKey } = await jose.generateKeyPair('ES256');
    const forged = await new jose.SignJWT({ preferred_username: ADMIN })
      .setProtectedHeader({ alg: 'ES256', kid: protectedHeader.kid! })
      .setIssuer(ferry.url)
      .setAudience(`http://${dashHost}`)
      .setExpirationTime('1m')
      .sign(privateKey);
    await expect(jose.jwtVerify(forged, jwks, { issuer: ferry.url })).rejects.toThrow();
  });

  it('strips identity headers a client makes up; the app sees only what Ferry vouches for', async () => {
    await viaProxy(proxyUrl, dashHost, '/spoof', {
      headers: {
        authorization: `Bearer ${developerToken}`,
        'x-ferry-user': ADMIN,
        'x-ferry-email': 'admin@contoso.example',
        'x-ferry-groups': 'AWS-Account1-Administrators',
        'x-ferry-identity': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
        'x-ferry-anything': 'yes',
        'x-forwarded-for': '10.9.9.9',
        'x-forwarded-host': 'evil.example',
        cookie: 'ferry_session=stolen; ferry_proxy_session=other; theme=dark',
      },
    });
    const h = lastSeen().headers;
    expect(h['x-ferry-user']).toBe(DEVELOPER);
    expect(h['x-ferry-groups']).toBe('AWS-Account1-Developers');
    expect(h['x-ferry-email']).toBe('test-awsdeveloper.mail@contoso.example');
    expect(h['x-ferry-identity']).not.toContain('eyJhbGciOiJub25lIn0');
    expect(h['x-ferry-anything']).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-host']).toBe(dashHost);
    expect(h.cookie).toBe('theme=dark');
  });

  it('streams a large upload: the app receives the first bytes before the client has sent the rest', async () => {
    const target = new URL(proxyUrl);
    const chunk = Buffer.alloc(1024 * 1024, 3);
    const total = 32;
    const hash = createHash('sha256');
    const answer = new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(
        {
          hostname: target.hostname,
          port: target.port,
          path: '/upload',
          method: 'POST',
          headers: {
            host: dashHost,
            authorization: `Bearer ${developerToken}`,
            'content-type': 'application/octet-stream',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        },
      );
      req.on('error', reject);
      // One chunk, then wait: a proxy that buffered the body would never let the app see it.
      req.write(chunk);
      hash.update(chunk);
      void upstream.uploadStarted.then(() => {
        for (let i = 1; i < total; i++) {
          req.write(chunk);
          hash.update(chunk);
        }
        req.end();
      });
    });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: total * chunk.length, sha256: hash.digest('hex') });
  }, 60_000);

  it('streams a large download: the client reads the first bytes before the app has sent the rest', async () => {
    const target = new URL(proxyUrl);
    const size = 48 * 1024 * 1024;
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          hostname: target.hostname,
          port: target.port,
          path: `/download?bytes=${size}`,
          headers: { host: dashHost, authorization: `Bearer ${developerToken}` },
        },
        (res) => {
          expect(res.headers['content-length']).toBe(String(size));
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            // The app holds the rest back until this first chunk has reached the client.
            if (bytes === 0) upstream.releaseDownload();
            bytes += c.length;
          });
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(size);
  }, 60_000);

  it('passes websockets through after the same checks', async () => {
    const open = (headers: Record<string, string>) =>
      new WebSocket(`${proxyUrl.replace('http', 'ws')}/ws`, { headers: { host: dashHost, ...headers } });
    const ws = open({ authorization: `Bearer ${developerToken}`, 'x-ferry-user': ADMIN });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (data) => resolve(data.toString()));
      ws.on('error', reject);
    });
    expect(reply).toBe('echo: hello');
    ws.close();
    const seen = upstream.seen.filter((s) => s.method === 'UPGRADE').at(-1)!;
    expect(seen.headers['x-ferry-user']).toBe(DEVELOPER);

    const anonymous = open({});
    const refused = await new Promise<number>((resolve) => {
      anonymous.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      anonymous.on('error', () => resolve(-1));
    });
    expect(refused).toBe(401);
    const notEntitled = new WebSocket(`${proxyUrl.replace('http', 'ws')}/ws`, {
      headers: { host: adminHost, authorization: `Bearer ${developerToken}` },
    });
    const status = await new Promise<number>((resolve) => {
      notEntitled.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      notEntitled.on('error', () => resolve(-1));
    });
    expect(status).toBe(403);
  });

  it('answers 502 when the app does not answer, and samples allowed requests at the configured rate', async () => {
    const s = ferry.services;
    const port = new URL(proxyUrl).port;
    await s.proxyApps.set(ctx, 'gone', {
      upstream: 'http://127.0.0.1:9',
      url: `http://[::1]:${port}`,
      groups: [],
      openToAll: true,
    });
    const res = await viaProxy(proxyUrl, `[::1]:${port}`, '/', {
      headers: { authorization: `Bearer ${developerToken}` },
    });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ title: 'Bad Gateway', detail: 'gone did not answer' });
    // auditSampleRate 0 in this server: after the first request of a session, allowed ones go unrecorded.
    const count = async () =>
      (await listAudit(s.store.db, { type: 'proxy.request.allowed', subject: 'app:gone', limit: 100 }))
        .length;
    const before = await count();
    for (let i = 0; i < 3; i++)
      await viaProxy(proxyUrl, `[::1]:${port}`, '/', {
        headers: { authorization: `Bearer ${developerToken}` },
      });
    expect(before).toBe(1);
    expect(await count()).toBe(1);
  });

  it('believes X-Forwarded-For only from proxies http.trustProxy names', async () => {
    const s = ferry.services;
    const behindBalancer = createProxy(
      { ...s, config: { ...s.config, http: { ...s.config.http, trustProxy: ['127.0.0.1'] } } },
      { warn: () => {}, info: () => {} },
    );
    const { port } = await behindBalancer.listen('127.0.0.1', 0);
    try {
      await viaProxy(`http://127.0.0.1:${port}`, dashHost, '/trusted', {
        headers: { authorization: `Bearer ${developerToken}`, 'x-forwarded-for': '203.0.113.9' },
      });
      expect(lastSeen().headers['x-forwarded-for']).toBe('203.0.113.9');
    } finally {
      await behindBalancer.close();
    }
    // The test server trusts nobody: the same header is replaced by the TCP peer.
    await viaProxy(proxyUrl, dashHost, '/untrusted', {
      headers: { authorization: `Bearer ${developerToken}`, 'x-forwarded-for': '203.0.113.9' },
    });
    expect(lastSeen().headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('ends access when the person is disabled, at the next request', async () => {
    const dev = await ferry.services.users.get(DEVELOPER);
    await ferry.services.users.update(ctx, dev.id, { active: false });
    const res = await viaProxy(proxyUrl, dashHost, '/after', {
      headers: { authorization: `Bearer ${developerToken}` },
    });
    expect(res.status).toBe(401);
    await ferry.services.users.update(ctx, dev.id, { active: true });
  });
});
