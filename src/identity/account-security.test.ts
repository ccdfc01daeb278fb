import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, inputValue } from '../../test/support/browserless.js';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { totpCode } from './totp.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'account-security-test' } };
const PASSWORD = 'correct horse battery staple';
const COOKIE = 'ferry_session';

interface Answer {
  status: number;
  body: Record<string, unknown> | null;
}

/**
 * The Account page's API (/api/v1/me/…) against a real Ferry whose sign-in policy requires MFA: the
 * browser-session rules (CSRF, step-up when a factor exists, the last factor kept) and the answers a
 * person sees when they get something wrong. The browser journeys are test/e2e/console-account.test.ts.
 */
describe.each(ENGINES)('account self-service API on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const uniqueName = (prefix: string) => `${prefix}-${++seq}@contoso.example`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { signin: { requireMfa: true } } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  /** A person with a browser session (as the sign-in pages would leave it) and its CSRF token. */
  const person = async (amr: string[] = ['pwd'], userName = uniqueName('me')) => {
    const s = ferry.services;
    const user = await s.users.create(ADMIN, { userName, password: PASSWORD });
    const { token } = await s.store.db
      .transaction()
      .execute((trx) => s.sessions.start(trx, { userId: user.id, state: 'active', amr }));
    const csrf = s.csrf.tokenFor(token);
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      opts: { csrf?: boolean } = {},
    ): Promise<Answer> => {
      const headers: Record<string, string> = { cookie: `${COOKIE}=${token}` };
      if (opts.csrf !== false) headers['x-csrf-token'] = csrf;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(new URL(`/api/v1${path}`, ferry.url), {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
    };
    return { user, token, call };
  };

  const auditTypes = async (userName: string) =>
    (
      await ferry.services.store.db
        .selectFrom('audit_events')
        .select(['type', 'outcome'])
        .where('subject', '=', userName)
        .orderBy('seq')
        .execute()
    ).map((e) => `${e.type}:${e.outcome}`);

  /** A fake passkey row, so a person has a second method without a browser (the e2e test registers real ones). */
  const addKeyRow = (userId: string, id: string) =>
    ferry.services.store.db
      .insertInto('webauthn_credentials')
      .values({
        id,
        user_id: userId,
        public_key: 'AAAA',
        counter: 0,
        transports: '[]',
        name: 'Key on the desk',
        created_at: new Date().toISOString(),
        last_used_at: null,
      })
      .execute();

  it('refuses unsafe calls without the CSRF token (403), but reads without one', async () => {
    const me = await person();
    const start = await me.call('POST', '/me/totp', {}, { csrf: false });
    expect(start.status).toBe(403);
    expect(start.body?.type).toBe('https://ferry.dev/problems/csrf-token-invalid');
    for (const [method, path, body] of [
      ['DELETE', '/me/totp', undefined],
      ['POST', '/me/password', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }],
      ['POST', '/me/passkeys/options', {}],
      ['POST', '/me/recovery-codes', {}],
    ] as const) {
      expect((await me.call(method, path, body, { csrf: false })).status, `${method} ${path}`).toBe(403);
    }
    const status = await me.call('GET', '/me/security', undefined, { csrf: false });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      hasPassword: true,
      totp: { enrolled: false },
      passkeys: [],
      mfaRequired: true,
      sessionHasMfa: false,
      // no factor yet and a fresh sign-in: a change may go ahead; were it old, a new sign-in would renew it
      stepUpRequired: false,
      stepUpUrl: '/signin/step-up?require=reauthentication&return_to=%2Fportal%2Faccount',
    });
    // Without a session there is nothing to change.
    const anonymous = await fetch(new URL('/api/v1/me/security', ferry.url));
    expect(anonymous.status).toBe(401);
  });

  it('adds an authenticator app: a wrong code is refused with a clear problem, the right one confirms it (audited)', async () => {
    const me = await person();
    const started = await me.call('POST', '/me/totp', {});
    expect(started.status).toBe(200);
    const secret = String(started.body?.secret);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(String(started.body?.uri)).toMatch(/^otpauth:\/\/totp\//);
    expect(String(started.body?.qr)).toMatch(/^data:image\/svg\+xml;base64,/);

    const wrongCode = String((Number(totpCode(secret, new Date())) + 1) % 1_000_000).padStart(6, '0');
    const bad = await me.call('POST', '/me/totp/confirm', { code: wrongCode });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({
      type: 'https://ferry.dev/problems/totp-code-invalid',
      title: 'That code did not match',
      field: 'code',
    });
    const notDigits = await me.call('POST', '/me/totp/confirm', { code: 'abcdef' });
    expect(notDigits.status).toBe(400);

    const good = await me.call('POST', '/me/totp/confirm', { code: totpCode(secret, new Date()) });
    expect(good.status).toBe(204);
    expect((await me.call('GET', '/me/security')).body).toMatchObject({ totp: { enrolled: true } });
    expect(await auditTypes(me.user.userName)).toContain('mfa.totp.enrolled:success');

    // The next sign-in asks for it (the sign-in service sees the confirmed factor).
    const db = ferry.services.store.db;
    expect(await ferry.services.signin.factorsOf(db, me.user.id)).toEqual(['totp']);

    // A second app needs the first removed: and this session (password only) must verify first.
    const again = await me.call('POST', '/me/totp', {});
    expect(again.status).toBe(403);
    expect(again.body).toMatchObject({
      type: 'https://ferry.dev/problems/step-up-required',
      stepUp: '/signin/step-up?require=mfa&return_to=%2Fportal%2Faccount',
    });
  });

  it('removing a factor needs a session that proved one, and the last factor stays while policy requires MFA', async () => {
    const me = await person(['pwd']);
    await ferry.services.store.db
      .transaction()
      .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, me.user, { confirmed: true }));
    const notProved = await me.call('DELETE', '/me/totp');
    expect(notProved.status).toBe(403);
    expect(notProved.body?.type).toBe('https://ferry.dev/problems/step-up-required');

    const proved = await person(['pwd', 'otp', 'mfa']);
    await ferry.services.store.db
      .transaction()
      .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, proved.user, { confirmed: true }));
    const last = await proved.call('DELETE', '/me/totp');
    expect(last.status).toBe(409);
    expect(last.body).toMatchObject({ type: 'https://ferry.dev/problems/last-mfa-method' });
    expect(String(last.body?.detail)).toContain('add another');
    expect((await proved.call('GET', '/me/security')).body).toMatchObject({ totp: { enrolled: true } });

    // With a passkey beside it, the app can go; then the passkey is the last one and stays.
    await addKeyRow(proved.user.id, `key-${seq}`);
    expect((await proved.call('DELETE', '/me/totp')).status).toBe(204);
    const lastKey = await proved.call('DELETE', `/me/passkeys/key-${seq}`);
    expect(lastKey.status).toBe(409);
    expect(lastKey.body?.type).toBe('https://ferry.dev/problems/last-mfa-method');
    expect(await auditTypes(proved.user.userName)).toContain('mfa.totp.removed:success');
    // Someone else's key is not found, never removed.
    const other = await person(['pwd', 'otp', 'mfa']);
    await addKeyRow(other.user.id, `other-${seq}`);
    await addKeyRow(other.user.id, `other2-${seq}`);
    expect((await proved.call('DELETE', `/me/passkeys/other-${seq}`)).status).toBe(404);
    expect((await other.call('DELETE', `/me/passkeys/other-${seq}`)).status).toBe(204);
    expect(await auditTypes(other.user.userName)).toContain('mfa.webauthn.removed:success');
  });

  it('a session that authenticated longer ago than signin.accountChangeMaxAge must verify again, with or without a factor', async () => {
    const age = async (token: string, minutes: number) =>
      ferry.services.store.db
        .updateTable('sessions')
        .set({ auth_time: new Date(Date.now() - minutes * 60_000).toISOString() })
        .where('id', '=', (await ferry.services.sessions.resolve(token))?.id ?? '')
        .execute();

    // With a second factor proved, but 16 minutes ago (the default window is 15): refused, step-up offered.
    const proved = await person(['pwd', 'otp', 'mfa']);
    await ferry.services.store.db
      .transaction()
      .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, proved.user, { confirmed: true }));
    await addKeyRow(proved.user.id, `stale-${seq}`);
    await age(proved.token, 16);
    const stale = await proved.call('DELETE', '/me/totp');
    expect(stale.status).toBe(403);
    expect(stale.body).toMatchObject({
      type: 'https://ferry.dev/problems/step-up-required',
      stepUp: '/signin/step-up?require=mfa&return_to=%2Fportal%2Faccount',
    });
    expect((await proved.call('GET', '/me/security')).body).toMatchObject({
      sessionHasMfa: true,
      stepUpRequired: true,
    });
    expect((await proved.call('GET', '/me/security')).body).toMatchObject({ totp: { enrolled: true } });
    // 14 minutes ago is within the window: the same removal goes through.
    await age(proved.token, 14);
    expect((await proved.call('GET', '/me/security')).body).toMatchObject({ stepUpRequired: false });
    expect((await proved.call('DELETE', '/me/totp')).status).toBe(204);

    // Without any factor, an old session cannot add the first one (a thief's app would lock the owner
    // out): it signs in again first.
    const none = await person(['pwd']);
    await age(none.token, 60);
    const add = await none.call('POST', '/me/totp', {});
    expect(add.status).toBe(403);
    expect(add.body).toMatchObject({
      type: 'https://ferry.dev/problems/step-up-required',
      stepUp: '/signin/step-up?require=reauthentication&return_to=%2Fportal%2Faccount',
    });
    await age(none.token, 1);
    expect((await none.call('POST', '/me/totp', {})).status).toBe(200);
  });

  it('removals at the same moment still leave the last factor the policy requires', async () => {
    const me = await person(['pwd', 'otp', 'mfa']);
    await ferry.services.store.db
      .transaction()
      .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, me.user, { confirmed: true }));
    const keys = [`burst-a-${seq}`, `burst-b-${seq}`, `burst-c-${seq}`];
    for (const k of keys) await addKeyRow(me.user.id, k);
    // four factors, and every one asked to go at once: exactly three may
    const answers = await Promise.all([
      me.call('DELETE', '/me/totp'),
      ...keys.map((k) => me.call('DELETE', `/me/passkeys/${k}`)),
    ]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([204, 204, 204, 409]);
    const left = (await me.call('GET', '/me/security')).body as {
      totp: { enrolled: boolean };
      passkeys: unknown[];
    };
    expect(Number(left.totp.enrolled) + left.passkeys.length).toBe(1);
  });

  it('a registration that does not verify is a 400 problem, not a 500', async () => {
    const me = await person(['pwd']);
    const options = await me.call('POST', '/me/passkeys/options', {});
    expect(options.status).toBe(200);
    expect(options.body).toMatchObject({ rp: { name: 'Ferry' } });
    expect(typeof options.body?.challenge).toBe('string');
    const bogus = await me.call('POST', '/me/passkeys', {
      name: 'Bogus',
      response: { id: 'x', rawId: 'x', type: 'public-key', response: {}, clientExtensionResults: {} },
    });
    expect(bogus.status).toBe(400);
    expect(bogus.body?.type).toBe('https://ferry.dev/problems/webauthn-rejected');
  });

  it('changes a local password: the current one is checked, the policy applies, every session ends', async () => {
    const me = await person(['pwd']);
    const wrong = await me.call('POST', '/me/password', {
      currentPassword: 'not my password',
      newPassword: 'a brand new passphrase',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({
      type: 'https://ferry.dev/problems/current-password-wrong',
      field: 'currentPassword',
    });
    const short = await me.call('POST', '/me/password', { currentPassword: PASSWORD, newPassword: 'short' });
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({
      type: 'https://ferry.dev/problems/password-policy',
      detail: 'password must be at least 8 characters',
    });
    const done = await me.call('POST', '/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'a brand new passphrase',
    });
    expect(done.status).toBe(204);
    expect((await me.call('GET', '/me/security')).status).toBe(401);
    expect(await auditTypes(me.user.userName)).toEqual(
      expect.arrayContaining(['user.password-changed:failure', 'user.password-set:success']),
    );
    const req = { ip: '192.0.2.1' };
    expect((await ferry.services.signin.password(me.user.userName, PASSWORD, req)).status).toBe('failed');
    expect(
      (await ferry.services.signin.password(me.user.userName, 'a brand new passphrase', req)).status,
    ).not.toBe('failed');
  });

  it('a person who signs in through their identity provider has no password to change', async () => {
    const s = ferry.services;
    const user = await s.users.create(ADMIN, { userName: uniqueName('entra') });
    const { token } = await s.store.db
      .transaction()
      .execute((trx) => s.sessions.start(trx, { userId: user.id, state: 'active', amr: ['fed', 'mfa'] }));
    const res = await fetch(new URL('/api/v1/me/password', ferry.url), {
      method: 'POST',
      headers: {
        cookie: `${COOKIE}=${token}`,
        'x-csrf-token': s.csrf.tokenFor(token),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ currentPassword: 'x', newPassword: 'a brand new passphrase' }),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { type: string }).type).toBe(
      'https://ferry.dev/problems/no-local-password',
    );
  });

  it('a sign-in with password and code, without a return path, lands on the portal at /', async () => {
    const userName = uniqueName('lands');
    const user = await ferry.services.users.create(ADMIN, { userName, password: PASSWORD });
    const { secret } = await ferry.services.store.db
      .transaction()
      .execute((trx) => ferry.services.totp.enroll(trx, ADMIN, user, { confirmed: true }));
    const browser = new Browser(ferry.url);
    const form = await browser.get('/signin');
    const step1 = await browser.post('/signin', {
      csrf: inputValue(form.text, 'csrf')!,
      return_to: inputValue(form.text, 'return_to')!,
      username: userName,
      password: PASSWORD,
    });
    expect(step1.location).toBe('/signin/code?return_to=%2F');
    const codeForm = await browser.get(step1.location!);
    const step2 = await browser.post('/signin/code', {
      csrf: inputValue(codeForm.text, 'csrf')!,
      return_to: inputValue(codeForm.text, 'return_to')!,
      code: totpCode(secret, new Date()),
    });
    expect(step2.status).toBe(303);
    expect(step2.location).toBe('/');
  });
});
