import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { ensureDemoTenant } from '../../src/app/demo-tenant.js';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { DEMO_CONSOLE_PATH, demoConsole } from '../../src/aws/demo-console.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from './chromium.js';
import { startTestFerry, type TestFerry } from './ferry.js';
import { type LocalAws, startLocalAws } from './local-aws.js';

/**
 * The web console's browser tests share this world: a real Ferry (SQLite) with the demo tenant, moto
 * as the local AWS, Debian's Chromium, people who sign in with password and TOTP as a person would,
 * and axe-core run on the pages they visit at a laptop and a phone width. With FERRY_SCREENSHOTS set
 * (`npm run screenshots`), `check` also writes the main pages' screenshots there for docs/console.md.
 */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export const CONSOLE_PASSWORD = 'a long passphrase for the console test';
export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
const ctx: AuditContext = { actor: { type: 'operator', name: 'console-test' } };
const SCREENSHOTS = process.env.FERRY_SCREENSHOTS;

/**
 * The main pages get a screenshot (docs/console.md shows them); the rest are only checked. Each name is
 * checked in one test file only: the files run in parallel, and a name two files check would be
 * written by whichever came last.
 */
export const SCREENSHOT_PAGES = [
  // console.test.ts
  'My access',
  'AWS console stand-in',
  'Request access',
  'Approvals',
  'Account',
  'Users',
  'Group',
  'Audit',
  // console-account.test.ts
  'Account adding an authenticator app',
  // console-admin.test.ts
  'Eligible roles after a change',
  'Conditional access with a what-if answer',
  'SCIM with a new token',
  'Signing keys asking to confirm',
];
/** The file name of a page's screenshot (without .png), or null when the page gets none. */
export const screenshotName = (name: string) =>
  SCREENSHOT_PAGES.includes(name) ? name.toLowerCase().replace(/[^a-z0-9]+/g, '-') : null;

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Waits until the locator's text matches (the page updates by itself), then asserts it. */
export async function textOf(
  locator: Locator,
  pattern: string | RegExp,
  timeoutMs = 10_000,
): Promise<string> {
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

export interface AxeFinding {
  page: string;
  width: number;
  id: string;
  impact: string;
  nodes: string[];
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules). */
export async function axe(page: Page, name: string): Promise<AxeFinding[]> {
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

export interface ConsoleWorld {
  ferry: TestFerry;
  /** Ferry's public URL (http://<host>:<port>) */
  url: string;
  /** the local AWS (moto); null in a world started with `demo: false` */
  aws: LocalAws | null;
  browser: Browser;
  users: Awaited<ReturnType<typeof ensureDemoTenant>>['users'];
  /** axe findings of every page checked so far, and the names checked */
  findings: AxeFinding[];
  checked: string[];
  /** a new browser context (a person's own browser), closed with the world */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** a person's own browser, signed in at / (password, and TOTP when enrolled) */
  signedIn(userName: string): Promise<Page>;
  /** opens a console page by its menu link and checks it with axe at both widths */
  visit(page: Page, menu: string, heading: string): Promise<void>;
  /**
   * axe at both widths on the page as it is now; returns this check's findings (also kept in `findings`).
   * Writes the page's screenshots (laptop, full page, and `-phone`) when FERRY_SCREENSHOTS is set and the
   * name is in SCREENSHOT_PAGES.
   */
  check(page: Page, name: string): Promise<AxeFinding[]>;
  close(): Promise<void>;
}

export interface ConsoleWorldOptions {
  /**
   * false: a bare Ferry, with no demo tenant, no local AWS and no stand-in console (`users` is empty);
   * Ferry's AWS settings are then `aws`. Default true.
   */
  demo?: boolean;
  /** Ferry's AWS endpoint and region when `demo` is false */
  aws?: { endpoint: string; region: string };
  /** the host of Ferry's public URL; passkeys need a domain (localhost) as relying party. Default 127.0.0.1 */
  host?: string;
}

/**
 * Starts the world: Ferry with the demo tenant and the stand-in AWS console, the demo's SAML account in
 * moto, admin roles granted to groups, and extra people (`grants`: group, admin role, optional new user
 * with CONSOLE_PASSWORD).
 */
export async function startConsoleWorld(
  grants: Array<{ group: string; role: string; user?: string }> = [],
  options: ConsoleWorldOptions = {},
): Promise<ConsoleWorld> {
  const demo = options.demo ?? true;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-console-'));
  const port = await freePort();
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  const aws = demo ? await startLocalAws() : null;
  const awsConfig = aws
    ? { endpoint: aws.endpoint, region: aws.region }
    : (options.aws ?? { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1' });
  const [ferry, browser] = await Promise.all([
    startTestFerry('sqlite', {
      config: {
        listen: `127.0.0.1:${port}`,
        publicUrl: url,
        aws: awsConfig,
        // Ferry Administrator asks for a security key by default; this Chromium has none (webauthn.test.ts
        // covers keys). Conditional access still asks everyone for MFA on AWS (the demo's policy).
        adminRoles: { builtInRequirements: false },
      },
      demo: aws
        ? {
            awsConsoleSigninUrl: `${url}${DEMO_CONSOLE_PATH}`,
            extraRoutes: async (app) =>
              app.register(demoConsole, { endpoint: aws.endpoint, region: aws.region }),
          }
        : undefined,
    }),
    launchChromium(),
  ]);
  // The test Ferry records the address it listens on as its public URL; keep the one asked for.
  ferry.services.config.publicUrl = url;
  let users: ConsoleWorld['users'] = [];
  if (aws) {
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
  }
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  const s = ferry.services;
  for (const { group, role, user } of grants) {
    const g = await s.groups.get(group).catch(() => s.groups.create(ctx, { displayName: group }));
    if (user) {
      const u = await s.users.create(ctx, {
        userName: user,
        displayName: user.split('@')[0],
        password: CONSOLE_PASSWORD,
      });
      await s.groups.setMembership(ctx, g.id, u.id, true);
    }
    await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, role);
  }

  const findings: AxeFinding[] = [];
  const checked: string[] = [];
  const contexts: BrowserContext[] = [];
  const who = (prefix: string) =>
    users.find((u) => u.userName.startsWith(prefix)) ?? {
      userName: prefix,
      password: CONSOLE_PASSWORD,
      totpSecret: null,
    };
  const check = async (page: Page, name: string) => {
    const found: AxeFinding[] = [];
    const shot = SCREENSHOTS ? screenshotName(name) : null;
    for (const viewport of [LAPTOP, PHONE]) {
      await page.setViewportSize(viewport);
      found.push(...(await axe(page, name)));
      if (SCREENSHOTS && shot)
        await page.screenshot({
          path: join(SCREENSHOTS, `${shot}${viewport === PHONE ? '-phone' : ''}.png`),
          fullPage: viewport === LAPTOP,
        });
    }
    await page.setViewportSize(LAPTOP);
    findings.push(...found);
    checked.push(name);
    return found;
  };
  const newContext = async (contextOptions: BrowserContextOptions = { viewport: LAPTOP }) => {
    const context = await browser.newContext(contextOptions);
    contexts.push(context);
    return context;
  };
  return {
    ferry,
    url,
    aws,
    browser,
    users,
    findings,
    checked,
    check,
    newContext,
    async signedIn(prefix) {
      const person = who(prefix);
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(`${ferry.url}/`);
      expect(new URL(page.url()).pathname).toBe('/signin');
      await page.fill('input[autocomplete="username"]', person.userName);
      await page.fill('input[autocomplete="current-password"]', person.password);
      await page.click('button[type="submit"]');
      if (person.totpSecret) {
        await page.fill('input[autocomplete="one-time-code"]', totpCode(person.totpSecret, new Date()));
        await page.click('button[type="submit"]');
      }
      await page.waitForURL(`${ferry.url}/`);
      await page.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
      return page;
    },
    async visit(page, menu, heading) {
      await page.getByRole('navigation').getByRole('link', { name: menu, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      await page.locator('text=Loading…').first().waitFor({ state: 'detached' });
      await check(page, menu);
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close();
      await ferry.close();
      await aws?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
