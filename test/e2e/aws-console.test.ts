import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { generateTotpSecret, totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const USER = 'test-awsdeveloper@contoso.example';
const PASSWORD = 'developer-password-42';

/**
 * The guide's whole promise in one test: a person signs in with password and TOTP in a real browser,
 * opens the AWS console from Ferry, and the SAML response posted to AWS's sign-in endpoint gives
 * STS credentials for the mapped role (moto as AWS, the AWS CLI as the client).
 */
describe('AWS console sign-in through Ferry', () => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let browser: Browser;
  let secret: string;

  beforeAll(async () => {
    [aws, ferry, browser] = await Promise.all([
      startLocalAws(),
      startTestFerry('sqlite', { config: { signin: { requireMfa: true } } }),
      launchChromium(),
    ]);
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const user = await s.users.create(ctx, {
      userName: USER,
      password: PASSWORD,
      attributes: { department: 'Engineering' },
    });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Developer',
    );
    secret = generateTotpSecret();
    await s.store.db
      .transaction()
      .execute((trx) => s.totp.enroll(trx, ctx, user, { confirmed: true, secret }));
    // What `ferry aws setup-account` does: the IAM SAML provider from Ferry's metadata, the role's trust.
    const metadata = await (await fetch(`${ferry.url}/saml/metadata`)).text();
    const report = await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: metadata,
      roles: [{ name: 'Developer', maxSessionDurationSeconds: 43200 }],
    });
    expect(report.changes.map((c) => c.action)).toContain('created');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await ferry?.close();
    await aws?.stop();
  });

  it('signs in with password and TOTP, posts a SAML response to AWS, and AWS STS turns it into role credentials', async () => {
    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    // The browser never reaches AWS: the POST to the sign-in endpoint is captured here.
    let posted: URLSearchParams | null = null;
    await page.route('https://signin.aws.amazon.com/saml', async (route) => {
      posted = new URLSearchParams(route.request().postData() ?? '');
      await route.fulfill({
        status: 200,
        contentType: 'text/html',
        body: '<html><body>AWS console</body></html>',
      });
    });

    await page.goto(`${ferry.url}/apps/aws-console`);
    await page.waitForURL(/\/signin\?return_to=/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/signin\/code/);
    await page.fill('input[autocomplete="one-time-code"]', totpCode(secret, new Date()));
    await page.click('button[type="submit"]');
    // Ferry's auto-post page submits itself (its one script is allowed by the page's CSP).
    await page.waitForURL('https://signin.aws.amazon.com/saml', { timeout: 15_000 });
    expect(await page.textContent('body')).toContain('AWS console');
    expect(consoleErrors).toEqual([]);
    await page.close();

    expect(posted).not.toBeNull();
    const samlResponse = (posted as unknown as URLSearchParams).get('SAMLResponse')!;
    const assumed = await awsCli(aws, [
      'sts',
      'assume-role-with-saml',
      '--role-arn',
      `arn:aws:iam::${ACCOUNT}:role/Developer`,
      '--principal-arn',
      `arn:aws:iam::${ACCOUNT}:saml-provider/Ferry`,
      '--saml-assertion',
      samlResponse,
    ]);
    expect(assumed.code, assumed.stderr).toBe(0);
    const out = JSON.parse(assumed.stdout) as {
      Credentials: { AccessKeyId: string; Expiration: string };
      AssumedRoleUser: { Arn: string };
    };
    expect(out.AssumedRoleUser.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/Developer/${USER}`);
    expect(out.Credentials.AccessKeyId).toMatch(/^ASIA/);

    // The issuance is in the ledger and the audit trail, and the chain still verifies.
    const issued = await ferry.services.store.db.selectFrom('issued_credentials').selectAll().execute();
    expect(issued.map((i) => [i.kind, i.subject, i.target])).toEqual([
      ['saml-assertion', USER, `aws:${ACCOUNT}/Developer`],
    ]);
    const verify = (await (await ferry.api('/api/v1/audit/verify')).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  }, 60_000);
});
