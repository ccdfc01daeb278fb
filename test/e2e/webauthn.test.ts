import type { Browser, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { generateTotpSecret, totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const USER = 'test-awsadmin@contoso.example';
const PASSWORD = 'admin-password-42';

/**
 * Phishing-resistant MFA in headless Chromium with the DevTools virtual authenticator: a policy
 * wants WebAuthn for the Administrator role, the person (signed in with TOTP) registers a security
 * key on the step-up page and lands in the console with MfaMethod=webauthn; the next sign-in uses
 * the key instead of a code. WebAuthn needs a domain as relying party, so the browser uses localhost.
 */
describe('WebAuthn security keys in a real browser', () => {
  let ferry: TestFerry;
  let browser: Browser;
  let base: string;
  let secret: string;

  beforeAll(async () => {
    [ferry, browser] = await Promise.all([startTestFerry('sqlite'), launchChromium()]);
    base = ferry.url.replace('127.0.0.1', 'localhost');
    ferry.services.config.publicUrl = base;
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Administrator', maxSessionDuration: 3600 });
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Administrators' });
    const user = await s.users.create(ctx, { userName: USER, password: PASSWORD });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Administrator',
    );
    secret = generateTotpSecret();
    await s.store.db
      .transaction()
      .execute((trx) => s.totp.enroll(trx, ctx, user, { confirmed: true, secret }));
    await s.policies.put(ctx, {
      name: 'Admins need phishing-resistant MFA',
      state: 'on',
      include: { groups: [group.displayName] },
      targets: ['aws:*/Administrator'],
      grant: { require: ['phishing-resistant-mfa'] },
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await ferry?.close();
  });

  const withAuthenticator = async (page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'usb',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  };

  const captureAws = async (page: Page) => {
    const posts: URLSearchParams[] = [];
    await page.route('https://signin.aws.amazon.com/saml', async (route) => {
      posts.push(new URLSearchParams(route.request().postData() ?? ''));
      await route.fulfill({
        status: 200,
        contentType: 'text/html',
        body: '<html><body>AWS console</body></html>',
      });
    });
    return posts;
  };

  const mfaTag = (post: URLSearchParams) =>
    /PrincipalTag:MfaMethod"[^>]*>\s*<saml:AttributeValue[^>]*>(\w+)</.exec(
      Buffer.from(post.get('SAMLResponse')!, 'base64').toString('utf8'),
    )?.[1];

  it('registers a security key at step-up, then signs in with it instead of a code', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const { cdp, authenticatorId } = await withAuthenticator(page);
    const posts = await captureAws(page);
    const consoleUrl = `${base}/apps/aws-console?account=${ACCOUNT}&role=Administrator`;
    const verifyBodies: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/signin/security-key/verify')) verifyBodies.push(r.postData() ?? '');
    });

    await page.goto(consoleUrl);
    await page.waitForURL(/\/signin\?return_to=/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/code/);
    await page.fill('input[autocomplete="one-time-code"]', totpCode(secret, new Date()));
    await page.click('button[type="submit"]');
    // TOTP is not phishing-resistant: the policy sends the person to register a security key.
    await page.waitForURL(/\/signin\/security-key\?return_to=/);
    expect(await page.textContent('h1')).toBe('Register a security key or passkey');
    await page.fill('#key-name', 'YubiKey 5');
    await page.click('#webauthn-start');
    await page.waitForURL('https://signin.aws.amazon.com/saml', { timeout: 15_000 });
    expect(posts).toHaveLength(1);
    expect(mfaTag(posts[0]!)).toBe('webauthn');

    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    const stored = await ferry.services.store.db.selectFrom('webauthn_credentials').selectAll().execute();
    expect(stored.map((c) => [c.id, c.name])).toEqual([
      [credentials[0]!.credentialId.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), 'YubiKey 5'],
    ]);

    // Next sign-in: password, then the security key (offered on the code page), straight into the console.
    await page.context().clearCookies();
    await page.goto(consoleUrl);
    await page.waitForURL(/\/signin\?return_to=/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/code/);
    await page.click('#use-security-key');
    await page.waitForURL(/\/signin\/security-key/);
    expect(await page.textContent('h1')).toBe('Use your security key');
    await page.click('#webauthn-start');
    await page.waitForURL('https://signin.aws.amazon.com/saml', { timeout: 15_000 });
    expect(posts).toHaveLength(2);
    expect(mfaTag(posts[1]!)).toBe('webauthn');
    expect(errors).toEqual([]);

    const after = await ferry.services.store.db
      .selectFrom('webauthn_credentials')
      .select('counter')
      .executeTakeFirstOrThrow();
    const steps = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'data'])
      .where('subject', '=', USER)
      .where('type', 'in', ['signin', 'mfa.webauthn.registered'])
      .orderBy('seq')
      .execute();
    expect(steps.map((e) => [e.type, JSON.parse(e.data).step ?? null])).toEqual([
      ['signin', 'password'],
      ['signin', 'totp'],
      ['mfa.webauthn.registered', null],
      ['signin', 'webauthn-registration'],
      ['signin', 'password'],
      ['signin', 'webauthn'],
    ]);
    expect(Number(after.counter)).toBeGreaterThanOrEqual(0);

    // The same signed assertion, replayed: its challenge was used up, so it proves nothing now.
    const replay = await page.request.post(`${base}/signin/security-key/verify`, {
      data: JSON.parse(verifyBodies.at(-1)!),
    });
    expect(replay.status()).toBe(401);
    const rejected = await ferry.services.store.db
      .selectFrom('audit_events')
      .select('data')
      .where('type', '=', 'signin')
      .where('outcome', '=', 'failure')
      .execute();
    expect(rejected.map((e) => JSON.parse(e.data).step)).toContain('webauthn');
    await page.close();
  }, 90_000);

  it('refuses an assertion from a key the person never registered', async () => {
    const page = await browser.newPage();
    await withAuthenticator(page); // a different, empty authenticator
    await page.goto(`${base}/signin`);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/code/);
    await page.click('#use-security-key');
    await page.waitForURL(/\/signin\/security-key/);
    await page.click('#webauthn-start');
    await page.waitForSelector('#webauthn-error:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#webauthn-error')).toMatch(/did not answer|not accepted/);
    expect(page.url()).toContain('/signin/security-key');
    await page.close();
  }, 90_000);
});
