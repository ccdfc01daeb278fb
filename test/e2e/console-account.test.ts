import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { TOTP_STEP_SECONDS, totpCode } from '../../src/identity/totp.js';
import { axe, type ConsoleWorld, LAPTOP, startConsoleWorld, textOf } from '../support/console.js';
import type { TestFerry } from '../support/ferry.js';

/**
 * The console's Account page as a person uses it, in Chromium against a real Ferry: a local user
 * lands on My access after signing in, adds an authenticator app (the next sign-in asks for it) and
 * removes it, registers a passkey with the DevTools virtual authenticator and signs in with it, and
 * changes their password (the old one stops working). axe-core checks the page at a laptop and a
 * phone width; the console's CSP stays strict (no inline script). WebAuthn needs a domain as relying
 * party, so Ferry's public URL is http://localhost:<port>.
 */
const ctx: AuditContext = { actor: { type: 'operator', name: 'console-account-test' } };
const USER = 'pat@contoso.example';
const PASSWORD = 'a long passphrase for the account test';
const NEW_PASSWORD = 'another long passphrase, changed in the console';

describe('the console’s Account page in Chromium', () => {
  let w: ConsoleWorld;
  let ferry: TestFerry;
  let browser: Browser;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  const cspViolations: string[] = [];
  let userId: string;

  beforeAll(async () => {
    w = await startConsoleWorld([], {
      // No demo tenant and no local AWS: nothing listens at this AWS endpoint, so Identity Center's
      // start URL cannot be read, which the page says.
      demo: false,
      aws: { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1' },
      host: 'localhost',
    });
    ({ ferry, browser, url: base } = w);
    userId = (
      await ferry.services.users.create(ctx, { userName: USER, displayName: 'Pat', password: PASSWORD })
    ).id;
    // A permission set in IAM Identity Center assigned to Pat (declared through the admin API).
    await ferry.services.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
    const admin = (method: string, path: string, body: unknown) =>
      fetch(`${ferry.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ferry.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => expect(r.status, await r.text()).toBe(200));
    await admin('PUT', '/identity-center/permission-sets/ReadOnly', { description: 'read only' });
    await admin('POST', '/identity-center/permission-set-assignments', {
      user: USER,
      account: '123456789012',
      permissionSet: 'ReadOnly',
    });
    context = await w.newContext({ viewport: LAPTOP });
    page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    }));
  }, 60_000);

  afterAll(async () => {
    await w?.close();
  });

  /** The sign-in form from Ferry's sign-in page, with no return path (the plain sign-in). */
  async function signInWithPassword(password: string) {
    await page.goto(`${base}/signin`);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', password);
    await page.click('button[type="submit"]');
  }

  async function openAccount() {
    await page.getByRole('navigation').getByRole('link', { name: 'Account', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    await page.getByRole('heading', { level: 2, name: 'Authenticator app' }).waitFor();
  }

  const factors = () => ferry.services.signin.factorsOf(ferry.services.store.db, userId);

  it('a plain sign-in lands on My access at /, served under the strict CSP with no inline script', async () => {
    await signInWithPassword(PASSWORD);
    await page.waitForURL(`${base}/`);
    await page.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
    const res = await page.request.get(`${base}/portal/account`);
    const csp = res.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.$$eval('script:not([src])', (s) => s.length)).toBe(0);
  }, 60_000);

  it('My access lists the permission sets the person may use, each with a copyable AWS CLI sso profile', async () => {
    const section = page.getByRole('region', { name: 'IAM Identity Center permission sets' });
    const card = section.getByRole('listitem').filter({ hasText: 'ReadOnly' });
    await textOf(card, 'in Account1 (123456789012)');
    await card.getByRole('button', { name: /AWS CLI profile/ }).click();
    const profile = await textOf(card.locator('pre').first(), 'sso_role_name = ReadOnly');
    expect(profile).toContain('sso_session = ferry');
    expect(profile).toContain('sso_account_id = 123456789012');
    expect(profile).toContain('[sso-session ferry]');
    expect(profile).toContain('sso_region = eu-west-1');
    expect(profile).toMatch(/^\[profile ferry-sso-account1-readonly\]/);
    // The start URL could not be read from Identity Center: the page says so instead of a broken link.
    await textOf(section.getByRole('note'), 'could not read the access portal address');
    expect(await axe(page, 'My access with permission sets')).toEqual([]);
  }, 60_000);

  it('the Account page has no serious or critical axe violations at laptop and phone width', async () => {
    await openAccount();
    await page.getByRole('table', { name: 'Where you are signed in' }).waitFor();
    expect(await w.check(page, 'Account of a local user')).toEqual([]);
  }, 60_000);

  it('adds an authenticator app in the console; the next sign-in asks for its code and lands on /; then removes it', async () => {
    await page.getByRole('button', { name: 'Add an authenticator app' }).click();
    const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const qrWidth = await page
      .locator('#totp-qr')
      .evaluate((img) =>
        (img as unknown as { complete: boolean }).complete
          ? (img as unknown as { naturalWidth: number }).naturalWidth
          : 0,
      );
    expect(qrWidth).toBeGreaterThan(0);
    expect(
      await w.check(page, 'Account adding an authenticator app'),
      'with the QR code and the code form',
    ).toEqual([]);
    // A wrong code is refused with words a person understands.
    const form = page.getByRole('form', { name: 'Confirm the authenticator app' });
    const wrong = String((Number(totpCode(secret, new Date())) + 500_000) % 1_000_000).padStart(6, '0');
    await form.getByLabel('Verification code').fill(wrong);
    await form.getByRole('button', { name: 'Verify and add' }).click();
    await textOf(page.getByRole('alert'), 'that code did not match');
    const enrolledAt = new Date();
    await form.getByLabel('Verification code').fill(totpCode(secret, enrolledAt));
    await form.getByRole('button', { name: 'Verify and add' }).click();
    await textOf(page.getByRole('status').first(), 'Authenticator app added');
    await textOf(page.locator('#totp-state'), 'An authenticator app gives your verification codes');
    expect(await factors()).toEqual(['totp']);

    // Sign in again: the password, then the code (the next step's: each step's code works once).
    await context.clearCookies();
    await signInWithPassword(PASSWORD);
    await page.waitForURL(/\/signin\/code\?return_to=%2F$/);
    const next = new Date(enrolledAt.getTime() + TOTP_STEP_SECONDS * 1000);
    await page.fill('input[autocomplete="one-time-code"]', totpCode(secret, next));
    await page.click('button[type="submit"]');
    await page.waitForURL(`${base}/`);
    await page.getByRole('heading', { level: 1, name: 'My access' }).waitFor();

    await openAccount();
    await page.getByRole('button', { name: 'Remove authenticator app' }).click();
    await textOf(page.getByRole('status').filter({ hasText: 'removed' }), 'Authenticator app removed');
    await textOf(page.locator('#totp-state'), 'No authenticator app');
    expect(await factors()).toEqual([]);
    const audit = await ferry.services.store.db
      .selectFrom('audit_events')
      .select('type')
      .where('subject', '=', USER)
      .where('type', 'like', 'mfa.%')
      .execute();
    expect(audit.map((a) => a.type)).toEqual(['mfa.totp.enrolled', 'mfa.totp.removed']);
  }, 90_000);

  it('registers a passkey with the browser’s authenticator and signs in with it', async () => {
    const form = page.getByRole('form', { name: 'Add a passkey' });
    await form.getByLabel('Name for the new passkey').fill('Work laptop');
    await form.getByRole('button', { name: 'Add a passkey' }).click();
    await textOf(page.getByRole('status').filter({ hasText: 'Added' }), 'Added Work laptop', 15_000);
    await textOf(page.getByRole('table', { name: 'Your passkeys and security keys' }), 'Work laptop');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(await axe(page, 'Account with a passkey'), 'with a passkey listed').toEqual([]);
    expect(await factors()).toEqual(['webauthn']);

    await context.clearCookies();
    await signInWithPassword(PASSWORD);
    await page.waitForURL(/\/signin\/security-key\?return_to=%2F$/);
    await page.click('#webauthn-start');
    await page.waitForURL(`${base}/`, { timeout: 15_000 });
    await page.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
    const session = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
    expect((session as { amr: string[] }).amr).toEqual(expect.arrayContaining(['hwk', 'mfa']));
  }, 90_000);

  it('changes the password: a wrong current one is refused, the new one signs in, the old one no longer does', async () => {
    await openAccount();
    const form = page.getByRole('form', { name: 'Change your password' });
    await form.getByLabel('Current password').fill('not my password');
    await form.getByLabel('New password').fill(NEW_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    await textOf(page.getByRole('alert'), 'that is not your current password');
    await form.getByLabel('Current password').fill(PASSWORD);
    await form.getByLabel('New password').fill('short');
    await form.getByRole('button', { name: 'Change password' }).click();
    await textOf(page.getByRole('alert'), 'password must be at least 8 characters');
    await form.getByLabel('New password').fill(NEW_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    await textOf(page.getByRole('status').filter({ hasText: 'Password changed' }), 'Password changed');

    // Every session ended: the link signs in again, and only the new password works.
    await page.getByRole('link', { name: 'sign in again with your new password' }).click();
    await page.waitForURL(/\/signin\?return_to=%2Fportal%2Faccount$/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await textOf(page.getByRole('alert'), 'Sign-in failed');
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', NEW_PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/security-key\?return_to=%2Fportal%2Faccount$/);
    await page.click('#webauthn-start');
    await page.waitForURL(`${base}/portal/account`, { timeout: 15_000 });
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
  }, 90_000);

  it('says clearly when passkeys cannot work on the address the console is opened at', async () => {
    // Ferry's relying party is localhost; the same Ferry opened at 127.0.0.1 cannot use passkeys.
    const other = await browser.newContext({ viewport: LAPTOP });
    try {
      const p = await other.newPage();
      const ip = base.replace('localhost', '127.0.0.1');
      await ferry.services.users.create(ctx, { userName: 'sam@contoso.example', password: PASSWORD });
      await p.goto(`${ip}/signin?return_to=%2Fportal%2Faccount`);
      await p.fill('input[autocomplete="username"]', 'sam@contoso.example');
      await p.fill('input[autocomplete="current-password"]', PASSWORD);
      await p.click('button[type="submit"]');
      await p.waitForURL(`${ip}/portal/account`);
      await p.getByRole('heading', { level: 2, name: 'Passkeys and security keys' }).waitFor();
      await textOf(
        p.locator('#passkey-obstacle'),
        'Passkeys cannot work on this address: they are bound to localhost',
      );
      expect(await p.getByRole('form', { name: 'Add a passkey' }).count()).toBe(0);
    } finally {
      await other.close();
    }
    expect(cspViolations).toEqual([]);
  }, 60_000);
});
