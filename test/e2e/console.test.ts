import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoTenant } from '../../src/app/demo-tenant.js';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { DEMO_CONSOLE_PATH, demoConsole } from '../../src/aws/demo-console.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';

/**
 * The web console as people use it, in Chromium against a real Ferry and moto as the local AWS:
 * the demo tenant's developer and administrator sign in with password and TOTP and do the issue's
 * tasks by clicking. axe-core checks every page visited, at a laptop and a phone width.
 * `npm run screenshots` runs this file with FERRY_SCREENSHOTS set to write docs/screenshots/.
 */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SCREENSHOTS = process.env.FERRY_SCREENSHOTS;
const PASSWORD = 'a long passphrase for the console test';
const ctx: AuditContext = { actor: { type: 'operator', name: 'console-test' } };
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Waits until the locator's text matches (the page updates by itself), then asserts it. */
async function textOf(locator: Locator, pattern: string | RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const ok = (t: string) => (typeof pattern === 'string' ? t.includes(pattern) : pattern.test(t));
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.textContent({ timeout: deadline - Date.now() }).catch(() => null)) ?? '';
    if (ok(text)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(ok(text), `waited ${timeoutMs} ms for ${String(pattern)}; the text is: ${text}`).toBe(true);
  return text;
}

interface AxeFinding {
  page: string;
  width: number;
  id: string;
  impact: string;
  nodes: string[];
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules). */
async function axe(page: Page, name: string): Promise<AxeFinding[]> {
  // page.evaluate runs over the DevTools protocol, which Ferry's CSP (no inline script) does not block.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const w = window as unknown as {
      axe: {
        run: (
          ctx: Document,
          opts: object,
        ) => Promise<{
          violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>;
        }>;
      };
    };
    const r = await w.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  const width = page.viewportSize()?.width ?? 0;
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ page: name, width, ...v }));
}

describe('web console', () => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let browser: Browser;
  let dir: string;
  let users: Awaited<ReturnType<typeof ensureDemoTenant>>['users'];
  const findings: AxeFinding[] = [];
  const checked: string[] = [];
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-console-'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    aws = await startLocalAws();
    [ferry, browser] = await Promise.all([
      startTestFerry('sqlite', {
        config: {
          listen: `127.0.0.1:${port}`,
          publicUrl: url,
          aws: { endpoint: aws.endpoint, region: aws.region },
          // Ferry Administrator asks for a security key by default; this Chromium has none (webauthn.test.ts
          // covers keys). Conditional access still asks everyone for MFA on AWS (the demo's policy).
          adminRoles: { builtInRequirements: false },
        },
        demo: {
          awsConsoleSigninUrl: `${url}${DEMO_CONSOLE_PATH}`,
          extraRoutes: async (app) =>
            app.register(demoConsole, { endpoint: aws.endpoint, region: aws.region }),
        },
      }),
      launchChromium(),
    ]);
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    ({ users } = await ensureDemoTenant(ferry.services, join(dir, 'demo-credentials.json')));
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: '123456789012',
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: await (await fetch(`${url}/saml/metadata`)).text(),
      roles: [{ name: 'Administrator' }, { name: 'Developer' }],
    });
    // Admin rights are Ferry's own access decisions, granted to groups (issue 18, point 3).
    const s = ferry.services;
    const grant = async (groupName: string, role: string, userName?: string) => {
      const g = await s.groups.get(groupName).catch(() => s.groups.create(ctx, { displayName: groupName }));
      if (userName) {
        const u = await s.users.create(ctx, {
          userName,
          displayName: userName.split('@')[0],
          password: PASSWORD,
        });
        await s.groups.setMembership(ctx, g.id, u.id, true);
      }
      await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, role);
    };
    await grant('AWS-Account1-Administrators', 'ferry-administrator');
    await grant('Helpdesk', 'helpdesk', 'helen-helpdesk@contoso.example');
    await grant('Auditors', 'auditor', 'otto-auditor@contoso.example');
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await ferry?.close();
    await aws?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const user = (prefix: string) =>
    users.find((u) => u.userName.startsWith(prefix)) ?? {
      userName: prefix,
      password: PASSWORD,
      totpSecret: null,
    };

  /** A person's own browser: signs in at / as the redirect asks (password, and TOTP when enrolled). */
  async function signedIn(prefix: string): Promise<Page> {
    const who = user(prefix);
    const context = await browser.newContext({ viewport: LAPTOP });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${ferry.url}/`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await page.fill('input[autocomplete="username"]', who.userName);
    await page.fill('input[autocomplete="current-password"]', who.password);
    await page.click('button[type="submit"]');
    if (who.totpSecret) {
      await page.fill('input[autocomplete="one-time-code"]', totpCode(who.totpSecret, new Date()));
      await page.click('button[type="submit"]');
    }
    await page.waitForURL(`${ferry.url}/`);
    await page.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
    return page;
  }

  /** Opens a console page by its menu link, checks it with axe at both widths, and screenshots it. */
  async function visit(page: Page, menu: string, heading: string, shot?: string) {
    await page.getByRole('navigation').getByRole('link', { name: menu, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await page.locator('text=Loading…').first().waitFor({ state: 'detached' });
    await check(page, shot ?? menu);
  }

  async function check(page: Page, name: string) {
    for (const viewport of [LAPTOP, PHONE]) {
      await page.setViewportSize(viewport);
      findings.push(...(await axe(page, name)));
      if (SCREENSHOTS && shotName(name))
        await page.screenshot({
          path: join(SCREENSHOTS, `${shotName(name)}${viewport === PHONE ? '-phone' : ''}.png`),
          fullPage: viewport === LAPTOP,
        });
    }
    await page.setViewportSize(LAPTOP);
    checked.push(name);
  }
  /** The main pages get a screenshot (docs/console.md shows them); the rest are only checked. */
  const SHOTS = [
    'My access',
    'AWS console stand-in',
    'Request access',
    'Approvals',
    'Account',
    'Users',
    'Group',
    'Audit',
    'Conditional access',
  ];
  const shotName = (name: string) =>
    SHOTS.includes(name) ? name.toLowerCase().replace(/[^a-z0-9]+/g, '-') : null;

  let developer: Page;
  let admin: Page;

  it('a developer opens the AWS console for Developer and lands on the stand-in page showing the role session', async () => {
    developer = await signedIn('test-awsdeveloper');
    await check(developer, 'My access');
    const card = developer
      .getByRole('listitem')
      .filter({ hasText: 'Developer' })
      .filter({ hasText: 'Account1' });
    await card.getByRole('button', { name: /Command line/ }).click();
    await textOf(card.locator('pre').first(), 'ferry creds --account 123456789012 --role Developer');
    await textOf(card.locator('pre').nth(1), 'credential_process = ferry');
    await card.getByRole('link', { name: /Open console/ }).click();
    await developer.waitForURL(`${ferry.url}${DEMO_CONSOLE_PATH}`);
    await textOf(developer.locator('#assumed-role'), 'arn:aws:sts::123456789012:assumed-role/Developer/');
    expect(await developer.locator('#access-key-id').textContent()).toMatch(/^[A-Z0-9]{16,}$/);
    await check(developer, 'AWS console stand-in');
    await developer.goto(`${ferry.url}/`);
    await developer.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
  }, 60_000);

  it('the developer requests Administrator, an administrator approves it from the queue, the developer sees it active and ends it', async () => {
    await visit(developer, 'Request access', 'Request access');
    const form = developer.getByRole('form', { name: 'Request aws:123456789012/Administrator' });
    await form.getByLabel('Duration').selectOption({ label: '30 minutes' });
    await form.getByLabel('Reason (required)').fill('INC-42: rotate the broken KMS key');
    await form.getByRole('button', { name: 'Request Administrator' }).click();
    await textOf(form.getByRole('status'), 'waiting for approval');
    const mine = developer.getByRole('table', { name: /activations/ });
    await textOf(mine.getByRole('row').filter({ hasText: 'Administrator' }).first(), 'requested');

    admin = await signedIn('test-awsadmin');
    await visit(admin, 'Approvals', 'Approvals');
    const request = admin
      .getByRole('listitem')
      .filter({ hasText: 'test-awsdeveloper@contoso.example requests' });
    await textOf(request, 'INC-42: rotate the broken KMS key');
    await request.getByLabel('Your reason (optional)').fill('looked at INC-42');
    await request.getByRole('button', { name: /^Approve/ }).click();
    await textOf(admin.getByRole('status'), 'Approved');
    await admin.getByText('No request is waiting for you.').waitFor();

    // The developer's page updates by itself (it polls): active, with time left, then ended.
    const row = mine.getByRole('row').filter({ hasText: 'Administrator' }).first();
    await textOf(row, 'active', 15_000);
    await textOf(row, /\d+ min/);
    await check(developer, 'Request access');
    await row.getByRole('button', { name: /End now/ }).click();
    await developer.getByRole('status').filter({ hasText: 'Administrator ended.' }).waitFor();
    await textOf(mine.getByRole('row').filter({ hasText: 'Administrator' }).first(), 'revoked');
    const [activation] = (await ferry.services.activations.list({})).filter(
      (a) => a.roleName === 'Administrator',
    );
    expect(activation?.state).toBe('revoked');
    expect(activation?.approvals.map((a) => a.userName)).toEqual(['test-awsadmin@contoso.example']);
  }, 90_000);

  it('the account page lists the person’s sessions and sign-in methods, and links to sign-out', async () => {
    await visit(developer, 'Account', 'Account');
    await textOf(developer.getByRole('table', { name: 'Where you are signed in' }), 'this browser');
    await developer.getByRole('heading', { level: 2, name: 'Authenticator app' }).waitFor();
    expect(await developer.getByRole('link', { name: 'Sign out of this browser' }).getAttribute('href')).toBe(
      '/account',
    );
  }, 30_000);

  it('an administrator creates a user and adds them to a group, and every admin page opens', async () => {
    const held = await admin.evaluate(async () => (await fetch('/api/v1/session')).json());
    expect(held.permissions, JSON.stringify(held.adminRoles)).toContain('users:write');
    await admin.reload();
    await admin.getByRole('heading', { level: 1 }).first().waitFor();
    await visit(admin, 'Users', 'Users');
    const create = admin.getByRole('form', { name: 'Create a user' });
    await create.getByLabel('User name (UPN)').fill('new-dev@contoso.example');
    await create.getByLabel('Display name').fill('New Developer');
    await create.getByRole('button', { name: 'Create user' }).click();
    await create.getByRole('status').filter({ hasText: 'Created new-dev@contoso.example.' }).waitFor();
    await textOf(admin.getByRole('table'), 'new-dev@contoso.example');

    await visit(admin, 'Groups', 'Groups');
    await admin.getByRole('link', { name: 'AWS-Account1-Developers' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Group AWS-Account1-Developers' }).waitFor();
    await admin.getByLabel('Add a member (user name)').fill('new-dev@contoso.example');
    await admin.getByRole('button', { name: 'Add member' }).click();
    await admin.getByRole('status').filter({ hasText: 'Added new-dev@contoso.example' }).waitFor();
    await textOf(admin.getByRole('table', { name: 'Members' }), 'new-dev@contoso.example');
    await check(admin, 'Group');
    expect(
      await ferry.services.groups.namesOf((await ferry.services.users.get('new-dev@contoso.example')).id),
    ).toEqual(['AWS-Account1-Developers']);

    // The group grants the role the new member now has.
    await textOf(
      admin.getByRole('table', { name: 'AWS roles this group grants' }),
      'aws:123456789012/Developer',
    );
    for (const [menu, heading] of [
      ['Assignments', 'Assignments'],
      ['Approvals queue', 'Approvals queue'],
      ['Audit', 'Audit'],
      ['Conditional access', 'Conditional access'],
      ['AWS accounts', 'AWS accounts'],
      ['Eligible roles', 'Eligible roles'],
      ['SSH logins', 'SSH logins'],
      ['SAML apps', 'SAML service providers'],
      ['OpenID clients', 'OpenID clients and workloads'],
      ['Proxied apps', 'Proxied apps'],
      ['SCIM', 'SCIM connections'],
      ['Access reviews', 'Access reviews'],
      ['Signing keys', 'Signing keys'],
    ] as const) {
      await visit(admin, menu, heading);
      await admin
        .locator('main [role="alert"]')
        .waitFor({ state: 'detached', timeout: 1000 })
        .catch(async () => {
          throw new Error(`${menu}: ${await admin.locator('main [role="alert"]').first().textContent()}`);
        });
    }
  }, 300_000);

  it('who can reach what shows the new member’s access and the group it comes through', async () => {
    await visit(admin, 'Who can reach what', 'Who can reach what');
    await admin.getByLabel('Person (user name)').fill('new-dev@contoso.example');
    await admin.getByRole('button', { name: 'Show their access' }).click();
    const answer = admin.getByRole('table', { name: 'What new-dev@contoso.example can reach, and why' });
    const row = answer.getByRole('row').filter({ hasText: 'aws:123456789012/Developer' });
    await textOf(row, 'group: AWS-Account1-Developers');
    await check(admin, 'Who can reach what');

    // The same question the other way round: the new member is among those who reach the role.
    await admin.getByLabel('Target (aws:123456789012/Developer)').fill('aws:123456789012/Developer');
    await admin.getByRole('button', { name: 'Show who' }).click();
    await textOf(
      admin.getByRole('table', { name: 'Who can reach aws:123456789012/Developer' }),
      'new-dev@contoso.example',
    );
  }, 60_000);

  it('a helpdesk user manages users but cannot open conditional access, and the server refuses it too', async () => {
    const helpdesk = await signedIn('helen-helpdesk@contoso.example');
    const menu = helpdesk.getByRole('navigation');
    await menu.getByRole('link', { name: 'Users', exact: true }).waitFor();
    expect(await menu.getByRole('link', { name: 'Conditional access' }).count()).toBe(0);
    await helpdesk.goto(`${ferry.url}/admin/policies`);
    await helpdesk.getByRole('heading', { level: 1, name: 'Not available' }).waitFor();
    await check(helpdesk, 'Not available');
    const status = await helpdesk.evaluate(async () => (await fetch('/api/v1/policies')).status);
    expect(status).toBe(403);
  }, 60_000);

  it('an auditor reads users and the audit trail but is offered no change, and a change is refused', async () => {
    const auditor = await signedIn('otto-auditor@contoso.example');
    await visit(auditor, 'Users', 'Users');
    await textOf(auditor.getByRole('table'), 'new-dev@contoso.example');
    expect(await auditor.getByRole('form', { name: 'Create a user' }).count()).toBe(0);
    expect(await auditor.getByRole('button', { name: /^Disable/ }).count()).toBe(0);
    await visit(auditor, 'Audit', 'Audit');
    await textOf(auditor.getByRole('table'), 'user.created');
    const refused = await auditor.evaluate(async () => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const res = await fetch('/api/v1/users', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ userName: 'sneaky@contoso.example' }),
      });
      return res.status;
    });
    expect(refused).toBe(403);
  }, 60_000);

  it('every page visited has no serious or critical axe-core violation at laptop and phone widths', () => {
    expect(checked.length).toBeGreaterThanOrEqual(20);
    expect(findings).toEqual([]);
  });
});
