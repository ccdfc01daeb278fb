import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERIC_SIGNIN_ERROR } from '../../src/identity/pages/routes.js';
import { totpCode } from '../../src/identity/totp.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';
import {
  CookieJar,
  getPage,
  inputValue,
  postForm,
  signInWithPassword,
  submitForm,
  totpSecretOf,
  totpStep,
  waitForNextTotpStep,
} from '../support/web-form.js';

/**
 * Two `ferry serve` processes on one PostgreSQL database, as behind a load balancer: whatever one
 * instance decides (a session, a revocation, a lockout, a used one-time code) holds on the other.
 */
describe('two instances on one PostgreSQL database', () => {
  let db: TestDatabase;
  let dir: string;
  let a: FerryProcess;
  let b: FerryProcess;
  let token: string;

  const api = (on: FerryProcess, path: string, init: RequestInit = {}) =>
    fetch(new URL(path, on.url), {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      signal: AbortSignal.timeout(20_000),
    });

  const createUser = async (userName: string, password: string) => {
    const res = await api(a, '/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName, displayName: userName.split('@')[0], password }),
    });
    expect(res.status).toBe(201);
  };

  /** Password, then the forced authenticator enrollment (the default policy requires MFA). */
  const enroll = async (jar: CookieJar, userName: string, password: string, showKeyOn: FerryProcess) => {
    const first = await signInWithPassword(jar, a.url, userName, password);
    expect(first.status).toBe(303);
    // without a return path, sign-in lands on the portal at /
    expect(first.location).toBe('/signin/enroll?return_to=%2F');
    const page = await getPage(showKeyOn.url, first.location!, jar);
    expect(page.status).toBe(200);
    const secret = totpSecretOf(page.body);
    const now = new Date();
    const done = await postForm(a.url, '/signin/enroll', jar, {
      csrf: inputValue(page.body, 'csrf'),
      return_to: '/',
      code: totpCode(secret, now),
    });
    expect(done.status).toBe(303);
    expect(done.location).toBe('/');
    return { secret, usedStep: totpStep(now) };
  };

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-two-'));
    const env = {
      FERRY_DATABASE_URL: db.url,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_REQUIRE_MFA: 'true',
    };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    [a, b] = await Promise.all([startFerryProcess({ cwd: dir, env }), startFerryProcess({ cwd: dir, env })]);
  });

  afterAll(async () => {
    await stopAllFerryProcesses();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let carol: { secret: string; usedStep: number };
  const carolName = 'carol@contoso.example';
  const carolPassword = 'carol-password-42';

  it('enrollment spans instances: password on A, the key shown by B, the code confirmed on A', async () => {
    await createUser(carolName, carolPassword);
    carol = await enroll(new CookieJar(), carolName, carolPassword, b);
  });

  it('a session started on A opens /account on B; revoked through B, A refuses it', async () => {
    const alice = 'alice@contoso.example';
    await createUser(alice, 'alice-password-42');
    const jar = new CookieJar();
    await enroll(jar, alice, 'alice-password-42', a);

    const onB = await getPage(b.url, '/account', jar);
    expect(onB.status).toBe(200);
    expect(onB.body).toContain(`<code id="user-name">${alice}</code>`);

    const list = await api(b, `/api/v1/users/${alice}/sessions`);
    const { items } = (await list.json()) as { items: Array<{ id: string }> };
    expect(items).toHaveLength(1);
    const revoked = await api(b, `/api/v1/sessions/${items[0]!.id}`, { method: 'DELETE' });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { revokedAt: string | null }).revokedAt).not.toBeNull();

    const onA = await getPage(a.url, '/account', jar);
    expect(onA.status).toBe(303);
    expect(onA.location).toBe('/signin?return_to=%2Faccount');
  });

  it('a lockout counted on A holds on B', async () => {
    const bob = 'bob@contoso.example';
    const password = 'bob-password-42';
    await createUser(bob, password);
    // The right password works on B (it leads on to enrollment)…
    const works = await signInWithPassword(new CookieJar(), b.url, bob, password);
    expect(works.status).toBe(303);
    expect(works.location).toMatch(/^\/signin\/enroll/);

    // …then five wrong ones on A…
    for (let i = 0; i < 5; i++) {
      const wrong = await signInWithPassword(new CookieJar(), a.url, bob, `wrong-password-${i}`);
      expect(wrong.status).toBe(401);
      expect(wrong.body).toContain(GENERIC_SIGNIN_ERROR);
    }
    // …and the right one on B now fails, with the same words as any failure.
    const locked = await signInWithPassword(new CookieJar(), b.url, bob, password);
    expect(locked.status).toBe(401);
    expect(locked.body).toContain(GENERIC_SIGNIN_ERROR);
    expect(locked.res.headers.getSetCookie().some((c) => c.startsWith('ferry_session='))).toBe(false);

    const audit = await api(
      b,
      `/api/v1/audit/events?type=signin&subject=${encodeURIComponent(bob)}&since=1970-01-01T00:00:00Z`,
    );
    const events = ((await audit.json()) as { items: Array<{ outcome: string; data: { reason?: string } }> })
      .items;
    expect(events.map((e) => e.data.reason ?? e.outcome)).toEqual([
      'success',
      'bad-password',
      'bad-password',
      'bad-password',
      'bad-password',
      'bad-password',
    ]);
    // The refusal by the lock was not evaluated: it is counted on the lock, summarised when it ends.
  });

  it('TOTP sign-in spans instances: password on A, code on B; the used code is refused on A', async () => {
    const jar = new CookieJar();
    const password = await signInWithPassword(jar, a.url, carolName, carolPassword);
    expect(password.status).toBe(303);
    expect(password.location).toBe('/signin/code?return_to=%2F');

    // Ferry accepts each code once: wait (at most one 30 s step) for a code not used at enrollment.
    await waitForNextTotpStep(carol.usedStep);
    const code = totpCode(carol.secret, new Date());
    const verified = await submitForm(
      jar,
      { base: b.url, path: password.location! },
      { base: b.url, action: '/signin/code' },
      { code },
    );
    expect(verified.status).toBe(303);
    expect(verified.location).toBe('/');
    const account = await getPage(a.url, '/account', jar);
    expect(account.status).toBe(200);
    expect(account.body).toContain(`<code id="user-name">${carolName}</code>`);
    expect(account.body).toContain('Signed in with pwd + otp + mfa');

    // The same code, replayed in another sign-in on the other instance, is refused.
    const replayJar = new CookieJar();
    const again = await signInWithPassword(replayJar, a.url, carolName, carolPassword);
    expect(again.status).toBe(303);
    const replay = await submitForm(
      replayJar,
      { base: a.url, path: again.location! },
      { base: a.url, action: '/signin/code' },
      { code },
    );
    expect(replay.status).toBe(401);
    expect(replay.body).toContain(GENERIC_SIGNIN_ERROR);
  });
});
