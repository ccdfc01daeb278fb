import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ManualClock } from '../../src/clock.js';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const USER = 'step-up@contoso.example';
const PASSWORD = 'step-up-password-42';

/**
 * Conditional access in a real browser: a person who signed in with a password only opens the AWS
 * console, a policy asks for MFA, Ferry has them set up an authenticator on the step-up page, and the
 * console opens where they were going, with MfaMethod=totp in the SAML assertion. Later the sign-in
 * frequency runs out and the same link asks for a fresh sign-in before continuing.
 */
describe('step-up in the browser', () => {
  let ferry: TestFerry;
  let browser: Browser;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');

  beforeAll(async () => {
    [ferry, browser] = await Promise.all([
      startTestFerry('sqlite', {
        clock,
        config: { sessions: { idleTimeout: '12h', absoluteTimeout: '24h' } },
      }),
      launchChromium(),
    ]);
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const user = await s.users.create(ctx, { userName: USER, password: PASSWORD });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Developer',
    );
    const res = await ferry.api('/api/v1/policies/Developers need MFA', {
      method: 'PUT',
      body: JSON.stringify({
        state: 'on',
        include: { groups: ['AWS-Account1-Developers'] },
        targets: ['aws:*/Developer'],
        grant: { require: ['mfa'] },
        session: { maxCredentialLifetime: '2h', signInFrequency: '4h' },
      }),
    });
    expect(res.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await ferry?.close();
  });

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

  it('asks for the missing MFA (enrolling an authenticator), then continues to the console', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const posts = await captureAws(page);
    const consoleUrl = `${ferry.url}/apps/aws-console?account=${ACCOUNT}&role=Developer`;

    await page.goto(consoleUrl);
    await page.waitForURL(/\/signin\?return_to=/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    // Password only: the policy sends the browser to the step-up page, which enrolls an authenticator.
    await page.waitForURL(/\/signin\/step-up\?require=mfa/);
    expect(await page.textContent('#step-up-reason')).toContain('requires multi-factor authentication');
    const secret = (await page.textContent('#totp-secret'))!.trim();
    await page.fill('input[autocomplete="one-time-code"]', '000000');
    await page.click('button[type="submit"]');
    expect(await page.textContent('[role="alert"]')).toContain('did not match');
    errors.length = 0; // the wrong code's page is a 401, which the console reports
    await page.fill('input[autocomplete="one-time-code"]', totpCode(secret, clock.now()));
    await page.click('button[type="submit"]');
    await page.waitForURL('https://signin.aws.amazon.com/saml', { timeout: 15_000 });
    expect(posts).toHaveLength(1);
    const xml = Buffer.from(posts[0]!.get('SAMLResponse')!, 'base64').toString('utf8');
    expect(xml).toMatch(/PrincipalTag:MfaMethod"[^>]*>\s*<saml:AttributeValue[^>]*>totp</);
    // The policy's credential lifetime caps the console session.
    expect(xml).toMatch(/SessionDuration"[^>]*>\s*<saml:AttributeValue[^>]*>7200</);
    expect(errors).toEqual([]);

    const stepUps = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'data', 'outcome'])
      .where('subject', '=', USER)
      .where('type', 'in', ['signin', 'mfa.totp.enrolled'])
      .orderBy('seq')
      .execute();
    expect(stepUps.map((e) => [e.type, JSON.parse(e.data).step, e.outcome])).toEqual([
      ['signin', 'password', 'success'],
      ['signin', 'totp', 'failure'],
      ['mfa.totp.enrolled', 'totp-enrollment', 'success'],
      ['signin', 'step-up', 'success'],
    ]);

    // Five hours later the sign-in is older than the policy's sign-in frequency: sign in again, then continue.
    clock.advance(5 * 3600_000);
    await page.goto(consoleUrl);
    await page.waitForURL(/\/signin\?prompt=login&return_to=/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/code/);
    await page.fill('input[autocomplete="one-time-code"]', totpCode(secret, clock.now()));
    await page.click('button[type="submit"]');
    await page.waitForURL('https://signin.aws.amazon.com/saml', { timeout: 15_000 });
    expect(posts).toHaveLength(2);
    await page.close();
  }, 60_000);
});
