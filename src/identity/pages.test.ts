import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Browser,
  inputs,
  inputValue,
  type PageResponse,
  type SetCookie,
} from '../../test/support/browserless.js';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { ManualClock } from '../clock.js';
import { escapeHtml } from './pages/html.js';
import { GENERIC_SIGNIN_ERROR } from './pages/routes.js';
import { totpCode } from './totp.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'pages-test' } };
const PASSWORD = 'correct horse battery staple';
const COOKIE = 'ferry_session';

const sessionCookie = (res: PageResponse): SetCookie | undefined =>
  res.setCookies.find((c) => c.name === COOKIE);

/** The alert paragraph of a page (where sign-in errors are shown). */
const alertOf = (html: string): string | undefined =>
  /<p class="error" role="alert">([^<]*)<\/p>/.exec(html)?.[1];

describe.each(ENGINES)('sign-in pages on %s', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let seq = 0;
  const uniqueName = (prefix: string) => `${prefix}-${++seq}@contoso.example`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const createUser = (userName: string, extra: { displayName?: string; active?: boolean } = {}) =>
    ferry.services.users.create(ADMIN, { userName, password: PASSWORD, ...extra });

  const enrollTotp = async (user: { id: string; userName: string }): Promise<string> =>
    (
      await ferry.services.store.db
        .transaction()
        .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, user, { confirmed: true }))
    ).secret;

  /** Opens the sign-in page and submits the password form. */
  const submitPassword = async (
    browser: Browser,
    userName: string,
    password: string,
    returnTo?: string,
  ): Promise<PageResponse> => {
    const form = await browser.get(
      returnTo === undefined ? '/signin' : `/signin?return_to=${encodeURIComponent(returnTo)}`,
    );
    expect(form.status).toBe(200);
    return browser.post('/signin', {
      csrf: inputValue(form.text, 'csrf')!,
      return_to: returnTo ?? inputValue(form.text, 'return_to')!,
      username: userName,
      password,
    });
  };

  /** A browser signed in (password only) as a new user. */
  const signedInBrowser = async (userName: string): Promise<Browser> => {
    const browser = new Browser(ferry.url);
    const res = await submitPassword(browser, userName, PASSWORD);
    expect(res.status).toBe(303);
    expect(res.location).toBe('/');
    return browser;
  };

  it('serves a password form password managers understand, under a CSP that runs nothing', async () => {
    const browser = new Browser(ferry.url);
    const res = await browser.get('/signin');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const fields = inputs(res.text);
    expect(fields.find((f) => f.name === 'username')).toMatchObject({ autocomplete: 'username' });
    expect(fields.find((f) => f.name === 'password')).toMatchObject({
      type: 'password',
      autocomplete: 'current-password',
    });
    const csrf = fields.find((f) => f.name === 'csrf');
    expect(csrf).toMatchObject({ type: 'hidden' });
    expect(csrf?.value).toMatch(/^[\w-]{43}$/);
    expect(browser.cookie('ferry_csrf')).toBe(csrf?.value);

    const csp = res.headers.get('content-security-policy');
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.text).not.toMatch(/<script/i);
    expect(res.text).not.toMatch(/\son\w+=/i); // no inline event handlers either
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses a password post without the form token, or with a wrong one, and starts no session', async () => {
    const name = uniqueName('csrf');
    await createUser(name);
    const browser = new Browser(ferry.url);
    const form = await browser.get('/signin');
    const token = inputValue(form.text, 'csrf')!;

    const missing = await browser.post('/signin', { username: name, password: PASSWORD });
    const wrong = await browser.post('/signin', {
      csrf: `${token.slice(1)}x`,
      username: name,
      password: PASSWORD,
    });
    // A cross-site form has no csrf cookie: the field alone is not enough.
    const noCookie = await new Browser(ferry.url).post('/signin', {
      csrf: token,
      username: name,
      password: PASSWORD,
    });
    for (const res of [missing, wrong, noCookie]) {
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(sessionCookie(res)).toBeUndefined();
    }
    expect(browser.cookie(COOKIE)).toBeUndefined();
    const user = await ferry.services.users.get(name);
    expect(await ferry.services.sessions.listForUser(user.id)).toEqual([]);
  });

  it('walks password → code → return_to, setting an HttpOnly, SameSite=Lax session cookie', async () => {
    const name = uniqueName('walk');
    const user = await createUser(name, { displayName: 'Walk Er' });
    const secret = await enrollTotp(user);
    const browser = new Browser(ferry.url);

    const afterPassword = await submitPassword(browser, name, PASSWORD, '/account?tab=sessions');
    expect(afterPassword.status).toBe(303);
    expect(afterPassword.location).toBe(
      `/signin/code?return_to=${encodeURIComponent('/account?tab=sessions')}`,
    );
    const pendingCookie = browser.cookie(COOKIE);
    expect(pendingCookie).toBeDefined();
    // The password alone opens nothing.
    expect((await browser.get('/account')).status).toBe(303);

    const codePage = await browser.get(afterPassword.location!);
    expect(codePage.status).toBe(200);
    const codeField = inputs(codePage.text).find((f) => f.name === 'code');
    expect(codeField).toMatchObject({ autocomplete: 'one-time-code', inputmode: 'numeric' });

    const done = await browser.post('/signin/code', {
      csrf: inputValue(codePage.text, 'csrf')!,
      return_to: inputValue(codePage.text, 'return_to')!,
      code: totpCode(secret, clock.now()),
    });
    expect(done.status).toBe(303);
    expect(done.location).toBe('/account?tab=sessions');
    const cookie = sessionCookie(done);
    expect(cookie).toBeDefined();
    expect(cookie?.value).not.toBe(pendingCookie); // a fresh value after MFA: no fixation
    expect(cookie?.attributes.get('httponly')).toBe(true);
    expect(String(cookie?.attributes.get('samesite')).toLowerCase()).toBe('lax');
    expect(cookie?.attributes.get('path')).toBe('/');
    expect(cookie?.attributes.has('secure')).toBe(false);

    const account = await browser.get('/account');
    expect(account.status).toBe(200);
    expect(account.text).toContain(`<code id="user-name">${escapeHtml(name)}</code>`);
    expect(account.text).toContain('Walk Er');
  });

  it('shows the account: user, groups and sessions', async () => {
    const name = uniqueName('acct');
    await createUser(name);
    for (const group of ['Pages-Developers', 'Pages-Administrators']) {
      await ferry.services.groups.create(ADMIN, { displayName: `${group}-${seq}` });
      await ferry.services.groups.setMembership(ADMIN, `${group}-${seq}`, name, true);
    }
    const first = await signedInBrowser(name);
    await signedInBrowser(name);
    const page = await first.get('/account');
    expect(page.status).toBe(200);
    expect(page.text).toContain(`<code id="user-name">${escapeHtml(name)}</code>`);
    expect(page.text).toContain(
      `<span id="groups">Pages-Administrators-${seq}, Pages-Developers-${seq}</span>`,
    );
    const rows = page.text.match(/<tr><td>/g) ?? [];
    expect(rows).toHaveLength(2);
    expect(page.text).toContain('this session');
    expect(page.text.match(/action="\/account\/sessions\/[0-9a-f-]+\/revoke"/g)).toHaveLength(1);
  });

  it('shows the same words and status for a wrong password, an unknown user, a disabled or locked account', async () => {
    const wrongPassword = uniqueName('same');
    const disabled = uniqueName('same');
    const locked = uniqueName('same');
    const unknown = uniqueName('same');
    await createUser(wrongPassword);
    await createUser(disabled, { active: false });
    await createUser(locked);
    for (let i = 0; i < 5; i++) {
      await ferry.services.signin.password(locked, 'wrong-password', { ip: '203.0.113.7' });
    }

    const browser = new Browser(ferry.url);
    const attempts = [
      [wrongPassword, 'not-the-password'],
      [unknown, PASSWORD],
      [disabled, PASSWORD],
      [locked, PASSWORD],
    ] as const;
    const pages: PageResponse[] = [];
    for (const [user, password] of attempts) pages.push(await submitPassword(browser, user, password));
    const normalised = pages.map((p, i) =>
      p.text.replace(`value="${escapeHtml(attempts[i]![0])}"`, 'value="USER"'),
    );
    for (const [i, p] of pages.entries()) {
      expect(p.status).toBe(401);
      expect(alertOf(p.text)).toBe(escapeHtml(GENERIC_SIGNIN_ERROR));
      expect(sessionCookie(p)).toBeUndefined();
      expect(normalised[i]).toBe(normalised[0]);
    }
    // The person typed the name: it is kept in the form (escaped), the password is not.
    expect(inputValue(pages[0]!.text, 'username')).toBe(wrongPassword);
    expect(pages[0]!.text).not.toContain('not-the-password');
  });

  it('shows the same words for a wrong one-time code', async () => {
    const name = uniqueName('badcode');
    const secret = await enrollTotp(await createUser(name));
    const browser = new Browser(ferry.url);
    const step = await submitPassword(browser, name, PASSWORD);
    const codePage = await browser.get(step.location!);
    const right = totpCode(secret, clock.now());
    const res = await browser.post('/signin/code', {
      csrf: inputValue(codePage.text, 'csrf')!,
      return_to: '/account',
      code: right === '123456' ? '654321' : '123456',
    });
    expect(res.status).toBe(401);
    expect(alertOf(res.text)).toBe(escapeHtml(GENERIC_SIGNIN_ERROR));
    expect((await browser.get('/account')).status).toBe(303);
  });

  it.each([
    '//evil.example',
    'https://evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    '/\t/evil.example',
    '/\n/evil.example',
    '/\r/evil.example',
    '/\u0000/evil.example',
  ])('does not redirect off-site to return_to %j', async (returnTo) => {
    const name = uniqueName('redirect');
    await createUser(name);
    const browser = new Browser(ferry.url);
    const form = await browser.get(`/signin?return_to=${encodeURIComponent(returnTo)}`);
    expect(inputValue(form.text, 'return_to')).toBe('/');
    const res = await submitPassword(browser, name, PASSWORD, returnTo);
    expect(res.status).toBe(303);
    expect(res.location).toBe('/');
    // and how a browser would read the Location header
    expect(new URL(res.location!, ferry.url).origin).toBe(new URL(ferry.url).origin);
    // signed in already: the sign-in page forwards to return_to, just as safely
    const again = await browser.get(`/signin?return_to=${encodeURIComponent(returnTo)}`);
    expect(again.status).toBe(302);
    expect(again.location).toBe('/');
  });

  it('percent-encodes a non-ASCII return_to instead of failing', async () => {
    const name = uniqueName('unicode');
    await createUser(name);
    const res = await submitPassword(new Browser(ferry.url), name, PASSWORD, '/account/日本?q=ü');
    expect(res.status).toBe(303);
    expect(res.location).toBe('/account/%E6%97%A5%E6%9C%AC?q=%C3%BC');
  });

  it('keeps a same-site return_to with its query', async () => {
    const name = uniqueName('return');
    await createUser(name);
    const res = await submitPassword(new Browser(ferry.url), name, PASSWORD, '/account?x=1&y=%2F');
    expect(res.location).toBe('/account?x=1&y=%2F');
  });

  it("lets a user end their own other session, but not someone else's", async () => {
    const name = uniqueName('revoker');
    const other = uniqueName('victim');
    await createUser(name);
    await createUser(other);
    const laptop = await signedInBrowser(name);
    const phone = await signedInBrowser(name);
    const victim = await signedInBrowser(other);

    const page = await laptop.get('/account');
    const csrf = inputValue(page.text, 'csrf')!;
    const ids = [...page.text.matchAll(/action="\/account\/sessions\/([0-9a-f-]+)\/revoke"/g)].map(
      (m) => m[1]!,
    );
    expect(ids).toHaveLength(1);
    const phoneSession = await ferry.services.sessions.resolve(phone.cookie(COOKIE)!);
    expect(ids[0]).toBe(phoneSession?.id);

    const victimSession = await ferry.services.sessions.resolve(victim.cookie(COOKIE)!);
    const foreign = await laptop.post(`/account/sessions/${victimSession!.id}/revoke`, { csrf });
    expect(foreign.status).toBe(404);
    expect((await victim.get('/account')).status).toBe(200);

    const forged = await laptop.post(`/account/sessions/${ids[0]}/revoke`, { csrf: 'forged' });
    expect(forged.status).toBe(403);
    expect((await phone.get('/account')).status).toBe(200);

    const revoked = await laptop.post(`/account/sessions/${ids[0]}/revoke`, { csrf });
    expect(revoked.status).toBe(303);
    expect(revoked.location).toBe('/account');
    const phoneAfter = await phone.get('/account');
    expect(phoneAfter.status).toBe(303);
    expect(phoneAfter.location).toMatch(/^\/signin/);
    expect((await laptop.get('/account')).status).toBe(200);
  });

  it('signing out ends the session: the old cookie no longer opens the account', async () => {
    const name = uniqueName('signout');
    await createUser(name);
    const browser = await signedInBrowser(name);
    const page = await browser.get('/account');
    const oldCookie = browser.cookie(COOKIE)!;
    const csrfCookie = browser.cookie('ferry_csrf')!;

    const res = await browser.post('/signout', { csrf: inputValue(page.text, 'csrf')! });
    expect(res.status).toBe(303);
    expect(res.location).toBe('/signin');
    expect(browser.cookie(COOKIE)).toBeUndefined();

    // Someone who kept a copy of the cookie gets nowhere with it.
    const replay = await new Browser(ferry.url).get('/account', {
      cookie: `${COOKIE}=${oldCookie}; ferry_csrf=${csrfCookie}`,
    });
    expect(replay.status).toBe(303);
    expect(replay.location).toMatch(/^\/signin/);
    expect(await ferry.services.sessions.resolve(oldCookie)).toBeNull();
  });
});

describe.each(ENGINES)('sign-in pages behind https on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { publicUrl: 'https://ferry.example' } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('marks the session and form cookies Secure', async () => {
    const name = `secure-${engine}@contoso.example`;
    await ferry.services.users.create(ADMIN, { userName: name, password: PASSWORD });
    const browser = new Browser(ferry.url);
    const form = await browser.get('/signin');
    expect(form.setCookies.find((c) => c.name === 'ferry_csrf')?.attributes.get('secure')).toBe(true);
    const res = await browser.post('/signin', {
      csrf: inputValue(form.text, 'csrf')!,
      return_to: '/account',
      username: name,
      password: PASSWORD,
    });
    expect(res.status).toBe(303);
    const cookie = sessionCookie(res);
    expect(cookie?.attributes.get('secure')).toBe(true);
    expect(cookie?.attributes.get('httponly')).toBe(true);
    expect(String(cookie?.attributes.get('samesite')).toLowerCase()).toBe('lax');
  });
});
