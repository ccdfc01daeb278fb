import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAML_AUTHN_CLASS } from '../../src/authn/amr.js';
import { totpCode } from '../../src/identity/totp.js';
import { launchChromium } from '../support/chromium.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import {
  type FerryProcess,
  freePort,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
} from '../support/process.js';
import { type Pysaml2Sp, startPysaml2Sp } from '../support/pysaml2-sp.js';

const USER = 'saml-interop@contoso.example';
const PASSWORD = 'saml-interop-password-42';

interface SpResult {
  ok: boolean;
  relayState: string | null;
  nameId?: string;
  inResponseTo?: string | null;
  authnContext?: string[];
  attributes?: Record<string, string[]>;
  status?: string;
  signed?: boolean;
  signatureError?: string;
  error?: string;
}

/**
 * pysaml2 (Debian python3-pysaml2, with xmlsec1) as a real SAML service provider, against a real
 * `ferry serve`, driven by headless Chromium: signed HTTP-Redirect AuthnRequests, HTTP-POST responses
 * that pysaml2 verifies with Ferry's published metadata, ForceAuthn, IsPassive with and without a
 * session, RequestedAuthnContext for REFEDS MFA (step-up, then success), an impossible class
 * (NoAuthnContext, signed), and IdP-initiated sign-in with RelayState.
 */
describe('pysaml2 SP against ferry serve, in Chromium', () => {
  let db: TestDatabase;
  let dir: string;
  let ferry: FerryProcess;
  let sp: Pysaml2Sp;
  let browser: Browser;
  let token: string;
  let totpSecret = '';
  let env: Record<string, string>;

  const api = (path: string, init: RequestInit = {}) =>
    fetch(new URL(path, ferry.url), {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      signal: AbortSignal.timeout(20_000),
    });

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-pysaml2-'));
    const port = await freePort();
    env = {
      FERRY_DATABASE_URL: db.url,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_LISTEN: `127.0.0.1:${port}`,
      FERRY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      // MFA only where an SP or a policy asks for it: the step-up flow is what is under test.
      FERRY_REQUIRE_MFA: 'false',
    };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    [ferry, browser] = await Promise.all([
      startFerryProcess({ cwd: dir, env, readyTimeoutMs: 150_000 }),
      launchChromium(),
    ]);
    const metadata = await (await fetch(`${ferry.url}/saml/metadata`)).text();
    sp = await startPysaml2Sp(metadata);

    // A group with the person in it; then the SP, registered with the CLI from its own metadata and
    // assigned to that group (a new SP reaches nobody until then).
    const group = await api('/api/v1/groups', {
      method: 'POST',
      body: JSON.stringify({ displayName: 'SAML-App-Users' }),
    });
    expect(group.status).toBe(201);
    const user = await api('/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: USER, password: PASSWORD, emails: [{ value: USER, primary: true }] }),
    });
    expect(user.status).toBe(201);
    const groupId = ((await group.json()) as { id: string }).id;
    const userId = ((await user.json()) as { id: string }).id;
    const member = await api(`/api/v1/groups/${groupId}/members/${userId}`, { method: 'PUT' });
    expect(member.status).toBeLessThan(300);
    const cli = (args: string[]) =>
      runFerry(args, {
        cwd: dir,
        env: { ...env, FERRY_SERVER: ferry.url, FERRY_TOKEN: token },
        timeoutMs: 60_000,
      });
    const added = await cli([
      'sp',
      'add',
      '--name',
      'pysaml2 app',
      '--metadata-url',
      sp.entityId,
      '--attribute',
      'mail=email',
      '--group',
      'SAML-App-Users',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const groups = await cli(['sp', 'groups', sp.entityId]);
    expect(groups.stdout.trim()).toBe('SAML-App-Users');
    const registered = await api(`/api/v1/saml/service-providers/${encodeURIComponent(sp.entityId)}`);
    expect(await registered.json()).toMatchObject({ requireSignedRequests: true, openToAll: false });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await sp?.stop();
    await stopAllFerryProcesses();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const resultOf = async (page: Page): Promise<SpResult> => {
    await page.waitForURL(`${sp.acsUrl}`, { timeout: 15_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nstuck at ${page.url()}:\n${(await page.content()).slice(0, 2000)}`);
    });
    const text = await page.textContent('#result');
    return JSON.parse(text ?? '{}') as SpResult;
  };
  const signInOn = async (page: Page) => {
    await page.waitForURL(/\/signin\?/);
    await page.fill('input[autocomplete="username"]', USER);
    await page.fill('input[autocomplete="current-password"]', PASSWORD);
    await page.click('button[type="submit"]');
  };
  const login = (query: string) => `${sp.url}/login?${query}`;

  let context: BrowserContext;

  it('IsPassive without a session: NoPassive, signed, and no sign-in page shown', async () => {
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(login('passive=1&relay=passive-1'));
    const r = await resultOf(page);
    expect(r).toMatchObject({ ok: false, status: 'StatusNoPassive', signed: true, relayState: 'passive-1' });
  });

  it('signed HTTP-Redirect request, sign-in, HTTP-POST response pysaml2 verifies with the metadata', async () => {
    const page = await context.newPage();
    await page.goto(login('relay=first'));
    await signInOn(page);
    const r = await resultOf(page);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({
      ok: true,
      nameId: USER,
      relayState: 'first',
      authnContext: [SAML_AUTHN_CLASS.passwordProtectedTransport],
    });
    expect(r.inResponseTo).toMatch(/^id-/);
    expect(r.attributes?.mail).toEqual([USER]);
  });

  it('IsPassive with a session: signed in without a page', async () => {
    const page = await context.newPage();
    await page.goto(login('passive=1'));
    expect(await resultOf(page)).toMatchObject({ ok: true, nameId: USER });
  });

  it('ForceAuthn asks for the password again even with a live session', async () => {
    const page = await context.newPage();
    await page.goto(login('force=1'));
    await signInOn(page);
    expect(await resultOf(page)).toMatchObject({ ok: true, nameId: USER });
  });

  it('RequestedAuthnContext REFEDS MFA: step-up (enrolling TOTP), then the assertion says MFA', async () => {
    const page = await context.newPage();
    await page.goto(login(`ctx=${encodeURIComponent(SAML_AUTHN_CLASS.mfa)}&cmp=minimum&relay=mfa`));
    await page.waitForURL(/\/signin\/step-up/);
    totpSecret = ((await page.textContent('#totp-secret')) ?? '').trim();
    await page.fill('input[autocomplete="one-time-code"]', totpCode(totpSecret, new Date()));
    await page.click('button[type="submit"]');
    const r = await resultOf(page);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, relayState: 'mfa', authnContext: [SAML_AUTHN_CLASS.mfa] });
  });

  it('an impossible class gets a signed Responder/NoAuthnContext', async () => {
    const page = await context.newPage();
    await page.goto(login(`ctx=${encodeURIComponent('urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos')}`));
    const r = await resultOf(page);
    expect(r).toMatchObject({ ok: false, status: 'StatusNoAuthnContext', signed: true });
  });

  it('IdP-initiated from a portal link, with RelayState', async () => {
    const page = await context.newPage();
    await page.goto(
      `${ferry.url}/saml/launch?sp=${encodeURIComponent(sp.entityId)}&RelayState=${encodeURIComponent('/welcome')}`,
    );
    const r = await resultOf(page);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, nameId: USER, relayState: '/welcome' });
    expect(r.inResponseTo ?? null).toBeNull();
    await context.close();
  });
});
