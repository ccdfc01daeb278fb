import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/identity/totp.js';
import { type ApacheOpenidc, apachePort, startApacheOpenidc } from '../support/apache-openidc.js';
import { launchChromium } from '../support/chromium.js';
import {
  type FerryProcess,
  freePort,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
} from '../support/process.js';

const USER = 'heidi@contoso.example';
const PASSWORD = 'heidi-password-42';
const ACR_MFA = 'https://refeds.org/profile/mfa';

/**
 * Apache httpd with mod_auth_openidc (Debian's 2.4.12) as a relying party of a real `ferry serve`,
 * driven by headless Chromium: code + PKCE sign-in with MFA, the claims the app receives, logout
 * started from the app, and the bearer-token (introspection) mode.
 */
describe('Apache mod_auth_openidc against ferry serve', () => {
  let dir: string;
  let server: FerryProcess;
  let apache: ApacheOpenidc;
  let browser: Browser;
  let client: { clientId: string; secret: string };
  let userId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-apache-'));
    const env: Record<string, string> = {
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_REQUIRE_MFA: 'true',
    };
    // Ferry's public URL (its issuer) is where it listens: discovery and tokens must agree.
    const ferryPort = await freePort();
    Object.assign(env, {
      FERRY_LISTEN: `127.0.0.1:${ferryPort}`,
      FERRY_PUBLIC_URL: `http://127.0.0.1:${ferryPort}`,
    });
    const [created, launched, port] = await Promise.all([
      runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env }),
      launchChromium(),
      apachePort(),
    ]);
    browser = launched;
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    server = await startFerryProcess({ cwd: dir, env, readyTimeoutMs: 60_000 });
    const api = (path: string, body: unknown, method = 'POST') =>
      fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const user = await api('/users', {
      userName: USER,
      displayName: 'Heidi Example',
      password: PASSWORD,
      emails: [{ value: 'heidi@contoso.example', primary: true }],
    });
    expect(user.status).toBe(201);
    userId = ((await user.json()) as { id: string }).id;
    expect((await api('/groups', { displayName: 'Wiki-Editors' })).status).toBe(201);
    expect((await api(`/groups/Wiki-Editors/members/${userId}`, undefined, 'PUT')).status).toBe(200);

    // Registered the way an operator does, with the CLI.
    const origin = `http://localhost:${port}`;
    const registered = await runFerry(
      [
        '--server',
        server.url,
        'oidc',
        'clients',
        'create',
        '--name',
        'apache-wiki',
        '--redirect-uri',
        `${origin}/app/redirect_uri`,
        '--post-logout-redirect-uri',
        `${origin}/loggedout.html`,
        '--json',
      ],
      { cwd: dir, env: { FERRY_TOKEN: token, HOME: dir } },
    );
    expect(registered.stderr).toBe('');
    const answer = JSON.parse(registered.stdout) as { client: { clientId: string }; clientSecret: string };
    client = { clientId: answer.client.clientId, secret: answer.clientSecret };
    apache = await startApacheOpenidc({
      issuer: server.url,
      clientId: client.clientId,
      clientSecret: client.secret,
      host: 'localhost',
      port,
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await apache?.stop();
    await stopAllFerryProcesses();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const whoami = async (page: Page) =>
    JSON.parse((await page.locator('body').textContent()) ?? '{}') as Record<string, string>;

  it('signs in with code + PKCE and MFA, passes the claims, accepts introspected bearer tokens, and logs out from the app', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const authorizeRequests: string[] = [];
      page.on('request', (req) => {
        if (req.url().startsWith(`${server.url}/oidc/auth?`)) authorizeRequests.push(req.url());
      });

      // Sign-in: the app sends the browser to Ferry; password, then the first authenticator.
      await page.goto(`${apache.origin}/app/whoami`);
      await page.waitForURL(/\/signin\?/);
      const auth = new URL(authorizeRequests[0]!);
      expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
      expect(auth.searchParams.get('client_id')).toBe(client.clientId);
      await page.locator('input[autocomplete="username"]').fill(USER);
      await page.locator('input[autocomplete="current-password"]').fill(PASSWORD);
      await page.locator('button[type="submit"]').click();
      await page.waitForURL(/\/signin\/enroll\?/);
      const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
      await page.locator('input[autocomplete="one-time-code"]').fill(totpCode(secret, new Date()));
      await page.locator('button[type="submit"]').click();
      await page.waitForURL(`${apache.origin}/app/whoami`, { timeout: 15_000 });

      // What the app received from mod_auth_openidc.
      const seen = await whoami(page);
      expect(seen).toMatchObject({
        AUTH_TYPE: 'openid-connect',
        REMOTE_USER: USER,
        OIDC_CLAIM_sub: userId,
        OIDC_CLAIM_preferred_username: USER,
        OIDC_CLAIM_email: 'heidi@contoso.example',
        OIDC_CLAIM_groups: 'Wiki-Editors',
        OIDC_CLAIM_acr: ACR_MFA,
      });
      expect(seen.OIDC_CLAIM_amr?.split(',')).toEqual(expect.arrayContaining(['pwd', 'otp']));

      // Bearer mode: a token Ferry issued to this client (the browser's Ferry session answers the
      // authorization request at once; the code is taken before Apache sees it) opens /api.
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.secret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const verifier = oidc.randomPKCECodeVerifier();
      const authorize = oidc.buildAuthorizationUrl(config, {
        redirect_uri: apache.redirectUri,
        scope: 'openid',
        state: 'bearer',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      // Apache refuses the answer (the state is not one it issued) without redeeming the code.
      let callback = '';
      const capture = (req: { url(): string }) => {
        if (req.url().startsWith(`${apache.redirectUri}?`)) callback = req.url();
      };
      page.on('request', capture);
      await page.goto(authorize.href);
      page.off('request', capture);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
        pkceCodeVerifier: verifier,
        expectedState: 'bearer',
      });
      const bearer = await fetch(`${apache.origin}/api/whoami`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(bearer.status, apache.log()).toBe(200);
      expect(await bearer.json()).toMatchObject({ AUTH_TYPE: 'oauth20', REMOTE_USER: userId });
      for (const headers of [{}, { authorization: 'Bearer not-a-ferry-token-0123456789' }] as Array<
        Record<string, string>
      >) {
        expect((await fetch(`${apache.origin}/api/whoami`, { headers })).status).toBe(401);
      }
      // Logout started from the app: Ferry confirms, the browser comes back to the app's page.
      await page.goto(apache.logoutUrl);
      await page.waitForURL(/\/oidc\/session\/end/);
      await page.locator('#logout').click();
      await page.waitForURL(apache.loggedOutUri, { timeout: 15_000 });
      await expect(page.locator('#apache-bye').textContent()).resolves.toBe('Signed out of the app');
      // Signed out of both: the app sends the browser to Ferry's sign-in again.
      await page.goto(`${apache.origin}/app/whoami`);
      await page.waitForURL(/\/signin\?/);
    } finally {
      await context.close();
    }
  }, 120_000);
});
