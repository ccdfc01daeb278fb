import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';
import { totpStep, waitForNextTotpStep } from '../support/web-form.js';

const SCREENSHOT = '/tmp/ferry-signin.png';
const ENROLL_SCREENSHOT = '/tmp/ferry-enroll.png';

/** The one DOM function used inside the page (the test tsconfig has no DOM lib). */
interface BrowserWindow {
  getComputedStyle(element: unknown): { backgroundColor: string };
}
interface ImageElement {
  complete: boolean;
  naturalWidth: number;
}

/**
 * A person in a real (headless) Chromium: the server-rendered pages, their strict CSP, the forms
 * found by their autocomplete attributes, MFA enrollment and a later sign-in with a code.
 */
describe('sign-in in a browser', () => {
  let dir: string;
  let server: FerryProcess;
  let browser: Browser;
  const userName = 'erin@contoso.example';
  const password = 'erin-password-42';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-browser-'));
    const env = {
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_REQUIRE_MFA: 'true',
    };
    const [created, launched] = await Promise.all([
      runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env }),
      launchChromium(),
    ]);
    browser = launched;
    expect(created.code, created.stderr).toBe(0);
    server = await startFerryProcess({ cwd: dir, env });
    const res = await fetch(`${server.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.stdout.trim()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userName, displayName: 'Erin Example', password }),
    });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryProcesses();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Console errors (CSP violations among them) and uncaught page errors, by page URL. */
  const watch = (page: Page) => {
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`${page.url()}: console error: ${msg.text()}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`${page.url()}: ${res.status()} for ${res.url()}`);
    });
    page.on('pageerror', (err) => problems.push(`${page.url()}: page error: ${err.message}`));
    return problems;
  };

  const signInWithPassword = async (page: Page) => {
    await page.locator('input[autocomplete="username"]').fill(userName);
    await page.locator('input[autocomplete="current-password"]').fill(password);
    await page.locator('button[type="submit"]').click();
  };

  it('enrolls an authenticator at first sign-in, signs out, and signs in again with a code', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const problems = watch(page);

      // Going to the account page leads to the sign-in form.
      await page.goto(`${server.url}/account`);
      await page.waitForURL(/\/signin\?return_to=%2Faccount$/);
      await expect(page.title()).resolves.toBe('Sign in · Ferry');
      // The stylesheet loaded under the CSP: the button has the accent colour, not the default.
      const buttonColour = await page
        .locator('button[type="submit"]')
        .evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).backgroundColor);
      expect(buttonColour).toBe('rgb(11, 107, 203)');
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // First sign-in: the policy requires MFA and Erin has no authenticator yet.
      await signInWithPassword(page);
      await page.waitForURL(/\/signin\/enroll\?/);
      const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      // The QR code (a data: image, allowed by the CSP) decoded and can be scanned.
      const qrWidth = await page
        .locator('#totp-qr')
        .evaluate((img) =>
          (img as unknown as ImageElement).complete ? (img as unknown as ImageElement).naturalWidth : 0,
        );
      expect(qrWidth).toBeGreaterThan(0);
      await page.screenshot({ path: ENROLL_SCREENSHOT, fullPage: true });
      const enrolledAt = new Date();
      await page.locator('input[autocomplete="one-time-code"]').fill(totpCode(secret, enrolledAt));
      await page.locator('button[type="submit"]').click();
      await page.waitForURL(/\/account$/);
      await expect(page.locator('h1').textContent()).resolves.toBe('Erin Example');
      await expect(page.locator('#user-name').textContent()).resolves.toBe(userName);
      await expect(page.locator('main').textContent()).resolves.toContain('Signed in with pwd + otp + mfa');

      // Sign out: the session is over, the account page asks for a sign-in again.
      await page.locator('form[action="/signout"] button').click();
      await page.waitForURL(/\/signin$/);
      await page.goto(`${server.url}/account`);
      await page.waitForURL(/\/signin\?return_to=%2Faccount$/);

      // Second sign-in: password, then the code the app shows now (a fresh one: each is accepted once).
      await signInWithPassword(page);
      await page.waitForURL(/\/signin\/code\?/);
      await waitForNextTotpStep(totpStep(enrolledAt));
      await page.locator('input[autocomplete="one-time-code"]').fill(totpCode(secret, new Date()));
      await page.locator('button[type="submit"]').click();
      await page.waitForURL(/\/account$/);
      await expect(page.locator('#user-name').textContent()).resolves.toBe(userName);

      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 75_000);
});
