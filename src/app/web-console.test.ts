import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, inputValue } from '../../test/support/browserless.js';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { CONSOLE_CSP, webConsole } from './web-console.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'console-test' } };

describe('the web console files', () => {
  let dir: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>',
    );
    writeFileSync(join(dir, 'assets', 'app-1a2b.js'), 'console.log(1)');
    app = Fastify();
    // The session check is the server's own (sessions.resolve) in server.ts; here a header stands in.
    await app.register(webConsole, { dir, signedIn: async (req) => req.headers['x-test-session'] === 'yes' });
  });
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a person without a session to sign in and back to the page they asked for', async () => {
    const res = await app.inject({ url: '/admin/users?q=ann' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/signin?return_to=%2Fadmin%2Fusers%3Fq%3Dann');
  });

  it('serves the app shell on every console path under the strict CSP, revalidated on each visit', async () => {
    for (const url of ['/', '/portal/request', '/admin', '/admin/groups/AWS-Account1-Developers']) {
      const res = await app.inject({ url, headers: { 'x-test-session': 'yes' } });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(res.body).toContain('/assets/app-1a2b.js');
    }
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
  });

  it('caches hashed assets for a year and refuses anything outside the assets folder', async () => {
    const js = await app.inject({ url: '/assets/app-1a2b.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    for (const url of ['/assets/..%2Findex.html', '/assets/missing-0000.js', '/assets/app.exe']) {
      expect((await app.inject({ url })).statusCode, url).toBe(404);
    }
  });
});

describe.each(ENGINES)('my access on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('lists the apps decide() lets the person open and their groups’ SSH logins, nothing of others', async () => {
    const s = ferry.services;
    const ops = await s.groups.create(ctx, { displayName: 'Ops' });
    const other = await s.groups.create(ctx, { displayName: 'Finance' });
    const user = await s.users.create(ctx, {
      userName: 'ann@contoso.example',
      password: 'a long passphrase 42',
    });
    await s.groups.setMembership(ctx, ops.id, user.id, true);
    const ref = (g: { id: string; displayName: string }) => ({
      type: 'group' as const,
      id: g.id,
      name: g.displayName,
    });
    await s.proxyApps.set(ctx, 'grafana', {
      upstream: 'http://127.0.0.1:9',
      url: 'https://grafana.example',
      groups: [ref(ops)],
    });
    await s.proxyApps.set(ctx, 'ledger', {
      upstream: 'http://127.0.0.1:9',
      url: 'https://ledger.example',
      groups: [ref(other)],
    });
    await s.sshLogins.set(ctx, ref(ops), { hosts: '*.ops.internal', logins: ['ec2-user'] });
    await s.sshLogins.set(ctx, ref(other), { hosts: '*', logins: ['finance'] });

    expect((await ferry.api('/api/v1/access/mine', { auth: false })).status).toBe(401);
    const browser = new Browser(ferry.url);
    const form = await browser.get('/signin');
    const signedIn = await browser.post('/signin', {
      csrf: inputValue(form.text, 'csrf')!,
      username: 'ann@contoso.example',
      password: 'a long passphrase 42',
    });
    expect(signedIn.status).toBe(303);
    const res = await browser.get('/api/v1/access/mine', { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      apps: [{ kind: 'proxy', name: 'grafana', label: 'grafana', launchUrl: 'https://grafana.example' }],
      ssh: [
        { hosts: '*.ops.internal', logins: ['ec2-user'], portForwarding: false, maxDurationSeconds: null },
      ],
    });
    // The portal opens for the signed-in person (200 once `npm run build` made dist/web, else 503 saying so).
    const portal = await browser.get('/');
    expect(portal.location).toBeNull();
    expect([200, 503]).toContain(portal.status);
    expect((await new Browser(ferry.url).get('/')).location).toBe('/signin?return_to=%2F');
  });
});
