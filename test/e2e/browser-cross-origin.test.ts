import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type RelyingParty, startRelyingParty } from '../support/oidc-rp.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { totpStep, waitForNextTotpStep } from '../support/web-form.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const PASSWORD = 'cross-origin-password-42';

/**
 * Chromium applies a page's CSP `form-action` to every redirect that follows a form submission. Ferry's
 * sign-in forms end in a redirect chain to another origin (an OpenID client's redirect_uri, a
 * post_logout_redirect_uri, a proxied app): these journeys must arrive on the first try, in a real
 * browser, with the sign-in pages' CSP still naming exactly the destination.
 */
describe('cross-origin journeys in Chromium', () => {
  let ferry: TestFerry;
  let rp: RelyingParty;
  let upstream: Upstream;
  let browser: Browser;
  let appUrl: string;

  beforeAll(async () => {
    const [started, launched, party, up] = await Promise.all([
      startTestFerry('sqlite', {
        config: { signin: { requireMfa: true }, proxy: { listen: '127.0.0.1:0', auditSampleRate: 0 } },
      }),
      launchChromium(),
      startRelyingParty('localhost'),
      startUpstream(),
    ]);
    ferry = started;
    browser = launched;
    rp = party;
    upstream = up;
    const s = ferry.services;
    const group = await s.groups.create(ctx, { displayName: 'App-Users' });
    for (const userName of ['erin@contoso.example', 'frank@contoso.example']) {
      const user = await s.users.create(ctx, {
        userName,
        password: PASSWORD,
        emails: [{ value: userName, primary: true }],
      });
      await s.groups.setMembership(ctx, group.id, user.id, true);
    }
    const created = await s.oidcClients.create(ctx, {
      name: 'cross-origin-app',
      kind: 'relying-party',
      redirectUris: [rp.redirectUri],
      postLogoutRedirectUris: [rp.postLogoutRedirectUri],
    });
    await rp.configure(ferry.url, created.client.clientId, created.secret!);
    // The proxied app at localhost (Ferry is at 127.0.0.1, on another port too).
    appUrl = `http://localhost:${new URL(ferry.proxyUrl!).port}`;
    await s.proxyApps.set(ctx, 'wiki', {
      upstream: upstream.url,
      url: appUrl,
      groups: [{ type: 'group', id: group.id, name: 'App-Users' }],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await ferry?.close();
    await rp?.close();
    await upstream?.close();
  });

  /** CSP violations show as console errors; a cancelled navigation leaves the page where it was. */
  const watch = (page: Page) => {
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`${page.url()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`${page.url()}: ${err.message}`));
    return problems;
  };

  const password = async (page: Page, userName: string) => {
    await page.locator('input[autocomplete="username"]').fill(userName);
    await page.locator('input[autocomplete="current-password"]').fill(PASSWORD);
    await page.locator('button[type="submit"]').click();
  };

  /** Enrolls the authenticator on the first-sign-in page; returns its secret and when it was used. */
  const enroll = async (page: Page) => {
    await page.waitForURL(/\/signin\/enroll\?/);
    const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
    const at = new Date();
    await page.locator('input[autocomplete="one-time-code"]').fill(totpCode(secret, at));
    await page.locator('button[type="submit"]').click();
    return { secret, at };
  };

  it('signs in to an OpenID app on another origin on the first try, logs out back to it, and signs in again with a code', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const problems = watch(page);
      await page.goto(`${rp.origin}/login`);
      await page.waitForURL(/\/signin\?/);
      expect(new URL(page.url()).origin).toBe(ferry.url);
      await password(page, 'erin@contoso.example');
      const { secret, at } = await enroll(page);
      // The enrollment form's submission ends at the app's redirect_uri, not on Ferry's page.
      await page.waitForURL(`${rp.origin}/callback?**`, { timeout: 10_000 });
      const claims = JSON.parse((await page.locator('#claims').textContent()) ?? '{}') as Record<
        string,
        unknown
      >;
      expect(claims.preferred_username).toBe('erin@contoso.example');
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));

      // Logout started from the app: Ferry asks to confirm, then the browser is back at the app.
      await page.goto(`${rp.origin}/logout`);
      await page.waitForURL(/\/oidc\/session\/end/);
      await page.locator('#logout').click();
      await page.waitForURL(`${rp.origin}/bye**`, { timeout: 10_000 });
      await expect(page.locator('#bye').textContent()).resolves.toBe('Signed out of the app');

      // Signed out of Ferry too: the next sign-in asks for the password and the code.
      await page.goto(`${rp.origin}/login`);
      await page.waitForURL(/\/signin\?/);
      await password(page, 'erin@contoso.example');
      await page.waitForURL(/\/signin\/code\?/);
      await waitForNextTotpStep(totpStep(at));
      await page.locator('input[autocomplete="one-time-code"]').fill(totpCode(secret, new Date()));
      await page.locator('button[type="submit"]').click();
      await page.waitForURL(`${rp.origin}/callback?**`, { timeout: 10_000 });
      await expect(page.locator('h1').textContent()).resolves.toBe('Signed in');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('signs in to a proxied app on another origin on the first try', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const problems = watch(page);
      await page.goto(`${appUrl}/echo?first=1`);
      await page.waitForURL(/\/signin\?/);
      expect(new URL(page.url()).origin).toBe(ferry.url);
      await password(page, 'frank@contoso.example');
      await enroll(page);
      await page.waitForURL(`${appUrl}/echo?first=1`, { timeout: 10_000 });
      // The page itself reached the upstream as the person (Chromium may ask for /favicon.ico after it).
      const seen = upstream.seen.findLast((r) => r.url === '/echo?first=1');
      expect(seen?.url).toBe('/echo?first=1');
      expect(seen?.headers['x-ferry-user']).toBe('frank@contoso.example');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('names exactly the registered destination in the sign-in pages’ form-action, never a wildcard', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const policies: string[] = [];
      page.on('response', (res) => {
        const csp = res.headers()['content-security-policy'];
        if (csp && new URL(res.url()).pathname.startsWith('/signin')) policies.push(csp);
      });
      await page.goto(`${rp.origin}/login`);
      await page.waitForURL(/\/signin\?/);
      const formAction = policies.at(-1)?.match(/form-action ([^;]*)/)?.[1];
      expect(formAction).toBe(`'self' ${rp.origin}`);
    } finally {
      await context.close();
    }
  }, 30_000);
});
