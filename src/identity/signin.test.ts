import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { type AuditEvent, listAudit } from '../audit/ledger.js';
import { ManualClock } from '../clock.js';
import { OWASP_ARGON2ID, PasswordHasher, SigninBusy } from './passwords.js';
import type { SigninResult } from './signin.js';
import { totpCode } from './totp.js';
import type { User } from './users.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'signin-test' } };
const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

/** A code an authenticator could never show at the same time as `code` (to test refusals). */
const otherCode = (code: string): string => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('password hashing', () => {
  it('uses argon2id at the OWASP cost by default', async () => {
    const hasher = new PasswordHasher();
    expect(hasher.cost).toEqual(OWASP_ARGON2ID);
    const stored = await hasher.hash(PASSWORD);
    expect(stored.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(stored).not.toContain(PASSWORD);
    expect(await hasher.verify(stored, PASSWORD)).toBe(true);
    expect(await hasher.verify(stored, `${PASSWORD}!`)).toBe(false);
    expect(await hasher.verify(null, PASSWORD)).toBe(false);
  });
});

describe.each(ENGINES)('sign-in and sessions on %s', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let names = 0;
  let addresses = 0;
  /** unique per test: user names, and source addresses so address counters never mix between tests */
  const uniqueName = (prefix: string) => `${prefix}-${++names}@contoso.example`;
  const uniqueIp = () => `10.${engine.length}.${Math.floor(++addresses / 250)}.${addresses % 250}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const createUser = (userName: string, extra: { active?: boolean } = {}) =>
    ferry.services.users.create(ADMIN, { userName, password: PASSWORD, ...extra });

  const signin = (userName: string, password: string, ip: string): Promise<SigninResult> =>
    ferry.services.signin.password(userName, password, { ip, userAgent: 'vitest', requestId: null });

  const signedIn = async (userName: string, ip = uniqueIp()) => {
    const result = await signin(userName, PASSWORD, ip);
    if (result.status !== 'signed-in') throw new Error(`expected signed-in, got ${JSON.stringify(result)}`);
    return result;
  };

  const enrollTotp = async (user: User): Promise<string> => {
    const { secret } = await ferry.services.store.db
      .transaction()
      .execute((trx) =>
        ferry.services.totp.enroll(trx, ADMIN, { id: user.id, userName: user.userName }, { confirmed: true }),
      );
    return secret;
  };

  /** Password step for a user with an authenticator; returns the pending token. */
  const passwordStep = async (userName: string, ip: string): Promise<string> => {
    const result = await signin(userName, PASSWORD, ip);
    expect(result.status).toBe('second-factor-required');
    if (result.status !== 'second-factor-required') throw new Error('unreachable');
    return result.token;
  };

  const codeStep = (pendingToken: string, code: string, ip: string) =>
    ferry.services.signin.secondFactor(pendingToken, code, { ip, userAgent: 'vitest', requestId: null });

  const signinEvents = async (subject: string): Promise<AuditEvent[]> =>
    listAudit(ferry.services.store.db, { type: 'signin', subject, limit: 1000 });

  describe('password', () => {
    it('signs in a user without MFA into a live session with amr pwd', async () => {
      const name = uniqueName('alice');
      const user = await createUser(name);
      const result = await signedIn(name.toUpperCase());
      expect(result.session).toMatchObject({
        userId: user.id,
        state: 'active',
        amr: ['pwd'],
        revokedAt: null,
      });
      expect(result.session.authTime).toBe(clock.now().toISOString());
      const resolved = await ferry.services.sessions.resolve(result.token);
      expect(resolved?.id).toBe(result.session.id);
      const [event] = await signinEvents(name);
      expect(event).toMatchObject({
        outcome: 'success',
        actor: { type: 'user', id: user.id },
        data: { step: 'password', sessionId: result.session.id, amr: ['pwd'] },
      });
    });

    it.each([
      ['wrong password', 'bad-password'],
      ['unknown user', 'unknown-user'],
      ['disabled user', 'disabled'],
    ] as const)(
      'refuses a %s, looking like every other failure, and audits the reason',
      async (_, reason) => {
        const name = uniqueName('bob');
        if (reason !== 'unknown-user') await createUser(name, { active: reason !== 'disabled' });
        const password = reason === 'bad-password' ? 'not-the-password' : PASSWORD;
        const result = await signin(name, password, uniqueIp());
        // Nothing a caller could use to start a session, and the same shape for every reason.
        expect(result).toEqual({ status: 'failed', reason });
        const events = await signinEvents(name);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          outcome: 'failure',
          actor: { type: 'anonymous' },
          subject: name,
          data: { step: 'password', reason },
        });
        expect(JSON.stringify(events[0])).not.toContain(password);
        const live = await ferry.services.store.db
          .selectFrom('sessions')
          .innerJoin('users', 'users.id', 'sessions.user_id')
          .select('sessions.id')
          .where('users.user_name', '=', name)
          .execute();
        expect(live).toEqual([]);
      },
    );
  });

  describe('one-time codes', () => {
    it('asks for a code after the password and signs in with it (amr otp)', async () => {
      const name = uniqueName('carol');
      const user = await createUser(name);
      const secret = await enrollTotp(user);
      const ip = uniqueIp();
      const pending = await passwordStep(name, ip);
      // A half-finished sign-in opens nothing.
      expect(await ferry.services.sessions.resolve(pending)).toBeNull();
      const result = await codeStep(pending, totpCode(secret, clock.now()), ip);
      expect(result.status).toBe('signed-in');
      if (result.status !== 'signed-in') return;
      expect(result.session.amr).toContain('otp');
      expect(result.session.amr).toContain('pwd');
      expect(result.token).not.toBe(pending);
      expect((await ferry.services.sessions.resolve(result.token))?.id).toBe(result.session.id);
      // The pending cookie value is worthless once the sign-in completed.
      expect(await codeStep(pending, totpCode(secret, clock.now()), ip)).toEqual({
        status: 'failed',
        reason: 'expired',
      });
    });

    it('refuses a wrong code', async () => {
      const name = uniqueName('carl');
      const secret = await enrollTotp(await createUser(name));
      const ip = uniqueIp();
      const pending = await passwordStep(name, ip);
      const result = await codeStep(pending, otherCode(totpCode(secret, clock.now())), ip);
      expect(result).toEqual({ status: 'failed', reason: 'bad-code' });
      const events = await signinEvents(name);
      expect(events.at(-1)).toMatchObject({ outcome: 'failure', data: { step: 'totp', reason: 'bad-code' } });
    });

    it('accepts a code once: a replay in the same step is refused, the next step is accepted', async () => {
      const name = uniqueName('dave');
      const secret = await enrollTotp(await createUser(name));
      const ip = uniqueIp();
      const code = totpCode(secret, clock.now());
      expect((await codeStep(await passwordStep(name, ip), code, ip)).status).toBe('signed-in');

      const second = await passwordStep(name, ip);
      expect(await codeStep(second, code, ip)).toEqual({ status: 'failed', reason: 'bad-code' });

      clock.advance(30_000);
      const next = totpCode(secret, clock.now());
      expect(next).not.toBe(code);
      expect((await codeStep(second, next, ip)).status).toBe('signed-in');
    });

    it('accepts a code one step old (clock drift) but refuses one two or more steps old', async () => {
      const name = uniqueName('erin');
      const secret = await enrollTotp(await createUser(name));
      const ip = uniqueIp();
      const pending = await passwordStep(name, ip);

      const twoStepsAgo = totpCode(secret, clock.now());
      clock.advance(60_000);
      expect(await codeStep(pending, twoStepsAgo, ip)).toEqual({ status: 'failed', reason: 'bad-code' });
      const tenStepsAgo = totpCode(secret, new Date(clock.now().getTime() - 300_000));
      expect(await codeStep(pending, tenStepsAgo, ip)).toEqual({ status: 'failed', reason: 'bad-code' });

      const oneStepAgo = totpCode(secret, new Date(clock.now().getTime() - 30_000));
      expect((await codeStep(pending, oneStepAgo, ip)).status).toBe('signed-in');
    });
  });

  describe('lockout', () => {
    it('locks an account after 5 wrong passwords, even for the right one, until the lockout ends', async () => {
      const name = uniqueName('frank');
      await createUser(name);
      const ip = uniqueIp();
      for (let i = 0; i < 5; i++) {
        expect(await signin(name, `wrong-${i}-password`, ip)).toEqual({
          status: 'failed',
          reason: 'bad-password',
        });
      }
      const events = await signinEvents(name);
      expect(events.at(-1)?.data).toMatchObject({ reason: 'bad-password', locked: [`account:${name}`] });

      expect(await signin(name, PASSWORD, ip)).toEqual({ status: 'failed', reason: 'locked' });
      // The lock is on the account, not on where the attempts came from.
      expect(await signin(name, PASSWORD, uniqueIp())).toEqual({ status: 'failed', reason: 'locked' });
      // Refusals by the lock are counted, not audited one by one.
      expect(await signinEvents(name)).toHaveLength(5);

      clock.advance(14 * MINUTE);
      expect(await signin(name, PASSWORD, ip)).toEqual({ status: 'failed', reason: 'locked' });
      clock.advance(MINUTE + 1_000);
      expect((await signin(name, PASSWORD, ip)).status).toBe('signed-in');
      // One event for the lock that ended, with its count.
      const summary = await listAudit(ferry.services.store.db, { type: 'signin.refusals', subject: name });
      expect(summary.map((e) => e.data)).toEqual([
        expect.objectContaining({ counter: 'account', refused: 3 }),
      ]);
    });

    it('four failures do not lock, and a success clears the count', async () => {
      const name = uniqueName('fiona');
      await createUser(name);
      const ip = uniqueIp();
      for (let i = 0; i < 4; i++) expect((await signin(name, 'wrong-password', ip)).status).toBe('failed');
      expect((await signin(name, PASSWORD, ip)).status).toBe('signed-in');
      for (let i = 0; i < 4; i++) expect((await signin(name, 'wrong-password', ip)).status).toBe('failed');
      expect((await signin(name, PASSWORD, ip)).status).toBe('signed-in');
    });

    it('locks a source address after 20 failures across different user names', async () => {
      const name = uniqueName('grace');
      await createUser(name);
      const ip = uniqueIp();
      for (let i = 0; i < 19; i++) {
        const result = await signin(uniqueName(`spray${i}`), PASSWORD, ip);
        expect(result).toEqual({ status: 'failed', reason: 'unknown-user' });
      }
      // 19 failures: not yet locked, and a success doesn't launder the address's count.
      expect((await signin(name, PASSWORD, ip)).status).toBe('signed-in');
      const twentieth = uniqueName('spray19');
      expect(await signin(twentieth, PASSWORD, ip)).toEqual({ status: 'failed', reason: 'unknown-user' });
      expect((await signinEvents(twentieth)).at(-1)?.data).toMatchObject({ locked: [`address:${ip}`] });

      expect(await signin(name, PASSWORD, ip)).toEqual({ status: 'failed', reason: 'locked' });
      // The account itself is fine from elsewhere.
      expect((await signin(name, PASSWORD, uniqueIp())).status).toBe('signed-in');
    });
  });

  describe('lockout under concurrency', () => {
    /** Starts every attempt at once; resolves with the reasons, in order. */
    const burst = async (attempts: Array<[string, string, string]>) =>
      (await Promise.all(attempts.map(([n, p, ip]) => signin(n, p, ip)))).map((r) =>
        r.status === 'failed' ? r.reason : r.status,
      );
    const count = (reasons: string[], reason: string) => reasons.filter((r) => r === reason).length;
    const failuresOf = async (key: string) =>
      Number(
        (
          await ferry.services.store.db
            .selectFrom('signin_throttle')
            .select('failures')
            .where('key', '=', key)
            .executeTakeFirst()
        )?.failures ?? 0,
      );

    it('evaluates at most 5 of 60 simultaneous wrong passwords and refuses the right one inside and after the burst', async () => {
      const name = uniqueName('burst');
      await createUser(name);
      const ip = uniqueIp();
      const flood = burst(Array.from({ length: 60 }, (_, i) => [name, `wrong-${i}-password`, ip]));
      // Inside the burst: once its reservations are taken, the right password is refused unevaluated.
      while ((await failuresOf(`account:${name}`)) < 5) await new Promise((r) => setTimeout(r, 1));
      const inside = await signin(name, PASSWORD, uniqueIp());
      const reasons = await flood;
      expect(count(reasons, 'bad-password')).toBe(5);
      expect(count(reasons, 'locked')).toBe(55);
      expect(inside).toEqual({ status: 'failed', reason: 'locked' });
      expect(await signin(name, PASSWORD, uniqueIp())).toEqual({ status: 'failed', reason: 'locked' });
      // Exactly the evaluated attempts are in the audit trail; the lock is named once.
      const events = await signinEvents(name);
      expect(events.map((e) => e.data.reason)).toEqual(Array(5).fill('bad-password'));
      expect(events.filter((e) => e.data.locked)).toHaveLength(1);

      // The 57 refusals become one event once the lock has ended (the worker summarises it).
      clock.advance(15 * MINUTE + 1_000);
      expect(await ferry.services.throttle.summariseEnded()).toBeGreaterThanOrEqual(1);
      const summary = await listAudit(ferry.services.store.db, { type: 'signin.refusals', subject: name });
      expect(summary.map((e) => e.data)).toEqual([
        expect.objectContaining({ counter: 'account', refused: 57 }),
      ]);
      expect((await signin(name, PASSWORD, uniqueIp())).status).toBe('signed-in');
    });

    it('evaluates at most 20 of 60 simultaneous attempts from one address across many names', async () => {
      const ip = uniqueIp();
      const reasons = await burst(
        Array.from({ length: 60 }, (_, i) => [uniqueName(`spray${i}`), PASSWORD, ip]),
      );
      expect(count(reasons, 'unknown-user')).toBe(20);
      expect(count(reasons, 'locked')).toBe(40);
    });

    it('counts the user id, another case and Unicode variants of the name on one counter', async () => {
      const n = ++names;
      const name = `zoe.muller-${n}@contoso.example`;
      const user = await createUser(name);
      // Full-width letters (NFKC folds them), upper case, the id, and the name itself.
      const fullWidth = [...`zoe.muller-${n}`]
        .map((c) => (/[a-z]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! - 0x61 + 0xff41) : c))
        .join('');
      const spellings = [user.id, name.toUpperCase(), `${fullWidth}@contoso.example`, ` ${name} `, name];
      const reasons = await burst(spellings.map((s, i) => [s, `wrong-${i}-password`, uniqueIp()]));
      expect(count(reasons, 'locked')).toBe(0);
      for (const spelling of spellings)
        expect(await signin(spelling, PASSWORD, uniqueIp())).toEqual({ status: 'failed', reason: 'locked' });
    });
  });

  describe('sessions', () => {
    it('ends a session nobody used for 30 minutes', async () => {
      const name = uniqueName('heidi');
      await createUser(name);
      const { token, session } = await signedIn(name);
      clock.advance(30 * MINUTE + 1_000);
      expect(await ferry.services.sessions.resolve(token)).toBeNull();
      expect(await ferry.services.sessions.listForUser(session.userId)).toEqual([]);
    });

    it('slides the idle timeout while the session is used', async () => {
      const name = uniqueName('ivan');
      await createUser(name);
      const { token, session } = await signedIn(name);
      for (let i = 0; i < 4; i++) {
        clock.advance(25 * MINUTE);
        expect((await ferry.services.sessions.resolve(token))?.id).toBe(session.id);
      }
      // 100 minutes after sign-in, alive only because it was used; now left alone past the idle timeout.
      clock.advance(30 * MINUTE + 1_000);
      expect(await ferry.services.sessions.resolve(token)).toBeNull();
    });

    it('ends every session 12 hours after sign-in however active', async () => {
      const name = uniqueName('judy');
      await createUser(name);
      const { token, session } = await signedIn(name);
      for (let elapsed = 20; elapsed < 12 * 60; elapsed += 20) {
        clock.advance(20 * MINUTE);
        expect((await ferry.services.sessions.resolve(token))?.id, `after ${elapsed} min`).toBe(session.id);
      }
      clock.advance(20 * MINUTE); // 12 h
      expect(await ferry.services.sessions.resolve(token)).toBeNull();
      expect(await ferry.services.sessions.listForUser(session.userId)).toEqual([]);
    });

    it('refuses a revoked session and audits the revocation', async () => {
      const name = uniqueName('ken');
      await createUser(name);
      const { token, session } = await signedIn(name);
      const revoked = await ferry.services.sessions.revoke(ADMIN, session.id, 'test revocation');
      expect(revoked.revokedAt).toBe(clock.now().toISOString());
      expect(await ferry.services.sessions.resolve(token)).toBeNull();
      const events = await listAudit(ferry.services.store.db, { type: 'session.revoked', subject: name });
      expect(events).toHaveLength(1);
      expect(events[0]?.data).toMatchObject({ sessionId: session.id, reason: 'test revocation' });
    });

    it('disabling a user ends their sessions, tells the outbox and audits it', async () => {
      const name = uniqueName('laura');
      const user = await createUser(name);
      const first = await signedIn(name);
      const second = await signedIn(name);
      await ferry.services.users.update(ADMIN, name, { active: false });

      for (const s of [first, second]) {
        expect(await ferry.services.sessions.resolve(s.token)).toBeNull();
        expect(await ferry.services.sessions.get(s.session.id)).toMatchObject({
          revokedReason: 'user disabled',
        });
      }
      const outbox = await ferry.services.store.db
        .selectFrom('outbox')
        .select(['type', 'payload'])
        .where('type', '=', 'user.deactivated')
        .execute();
      const mine = outbox.map((r) => JSON.parse(r.payload)).filter((p) => p.userId === user.id);
      expect(mine).toEqual([{ type: 'user.deactivated', userId: user.id, userName: name }]);
      const audit = await listAudit(ferry.services.store.db, { type: 'user.disabled', subject: name });
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({
        outcome: 'success',
        actor: ADMIN.actor,
        data: { userId: user.id, sessionsRevoked: 2 },
      });

      // Re-enabling the user does not bring the old sessions back: they were ended, not hidden.
      await ferry.services.users.update(ADMIN, name, { active: true });
      expect(await ferry.services.sessions.resolve(first.token)).toBeNull();
      expect((await signin(name, PASSWORD, uniqueIp())).status).toBe('signed-in');
    });

    it('a new password ends the sessions and only the new password works', async () => {
      const name = uniqueName('mallory');
      await createUser(name);
      const { token, session } = await signedIn(name);
      await ferry.services.users.setPassword(ADMIN, name, 'a brand new password');
      expect(await ferry.services.sessions.resolve(token)).toBeNull();
      expect((await ferry.services.sessions.get(session.id)).revokedReason).toBe('password changed');
      const ip = uniqueIp();
      expect(await signin(name, PASSWORD, ip)).toEqual({ status: 'failed', reason: 'bad-password' });
      expect((await signin(name, 'a brand new password', ip)).status).toBe('signed-in');
    });

    it('stores passwords as argon2id at the configured OWASP cost', async () => {
      const name = uniqueName('nina');
      await createUser(name);
      const row = await ferry.services.store.db
        .selectFrom('users')
        .select('password_hash')
        .where('user_name', '=', name)
        .executeTakeFirstOrThrow();
      expect(row.password_hash?.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    });
  });

  describe('forced enrollment (signin.requireMfa)', () => {
    const mfaClock = new ManualClock('2026-03-02T09:00:00.000Z');
    let strict: TestFerry;
    beforeAll(async () => {
      strict = await startTestFerry(engine, { clock: mfaClock, config: { signin: { requireMfa: true } } });
    });
    afterAll(async () => {
      await strict?.close();
    });

    it('makes a user without an authenticator enroll one, and signs in with its first code', async () => {
      const name = uniqueName('oscar');
      const user = await strict.services.users.create(ADMIN, { userName: name, password: PASSWORD });
      const req = { ip: uniqueIp(), userAgent: 'vitest', requestId: null };
      const result = await strict.services.signin.password(name, PASSWORD, req);
      expect(result.status).toBe('enrollment-required');
      if (result.status !== 'enrollment-required') return;
      const { secret, uri } = result.enrollment;
      expect(uri).toMatch(/^otpauth:\/\/totp\//);
      expect(uri).toContain(`secret=${secret}`);
      expect(await strict.services.sessions.resolve(result.token)).toBeNull();
      expect(await strict.services.totp.hasConfirmed(strict.services.store.db, user.id)).toBe(false);
      expect((await strict.services.signin.pendingEnrollment(result.token))?.secret).toBe(secret);

      const code = totpCode(secret, mfaClock.now());
      expect(await strict.services.signin.confirmEnrollment(result.token, otherCode(code), req)).toEqual({
        status: 'failed',
        reason: 'bad-code',
      });
      expect(await strict.services.totp.hasConfirmed(strict.services.store.db, user.id)).toBe(false);

      const done = await strict.services.signin.confirmEnrollment(result.token, code, req);
      expect(done.status).toBe('signed-in');
      if (done.status !== 'signed-in') return;
      expect(done.session.amr).toContain('otp');
      expect((await strict.services.sessions.resolve(done.token))?.userId).toBe(user.id);
      expect(await strict.services.totp.hasConfirmed(strict.services.store.db, user.id)).toBe(true);
      const enrolled = await listAudit(strict.services.store.db, {
        type: 'mfa.totp.enrolled',
        subject: name,
      });
      expect(enrolled).toHaveLength(1);

      // From now on the user is asked for a code, not to enroll again.
      expect((await strict.services.signin.password(name, PASSWORD, req)).status).toBe(
        'second-factor-required',
      );
    });
  });
});

describe('sign-in on PostgreSQL under stress', () => {
  let ferry: TestFerry;
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createMigratedTestDatabase('postgres');
    ferry = await startTestFerry('postgres', {
      db,
      config: { database: { url: db.url, poolSize: 3 }, signin: { requireMfa: false } },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await db?.drop();
  });

  it('finishes 300 concurrent failed sign-ins (one account, one address) on a pool of 3: no deadlock, no pool timeout', async () => {
    const name = 'stress@contoso.example';
    await ferry.services.users.create(ADMIN, { userName: name, password: PASSWORD });
    const meta = (ip: string) => ({ ip, userAgent: 'vitest', requestId: null });
    const attempts = [
      // one account from many addresses…
      ...Array.from({ length: 150 }, (_, i) =>
        ferry.services.signin.password(name, `wrong-${i}-password`, meta(`192.0.2.${i}`)),
      ),
      // …and many names from one address, at the same time
      ...Array.from({ length: 150 }, (_, i) =>
        ferry.services.signin.password(`nobody-${i}@contoso.example`, PASSWORD, meta('198.51.100.9')),
      ),
    ];
    const settled = Promise.allSettled(attempts);
    // While they run, the instance still answers readiness (a connection is free within 2 s).
    const ready = await ferry.api('/readyz', { auth: false });
    expect(ready.status).toBe(200);
    const results = await settled;
    // Beyond the admission bound (one hash per core running, 64 waiting) the answer is a fast
    // "busy"; nothing else fails: no deadlock, no pool timeout.
    const reasons = results.map((r) => {
      if (r.status === 'rejected') return r.reason instanceof SigninBusy ? 'busy' : String(r.reason);
      return r.value.status === 'failed' ? r.value.reason : r.value.status;
    });
    expect(reasons.filter((r) => !['busy', 'locked', 'bad-password', 'unknown-user'].includes(r))).toEqual(
      [],
    );
    expect(reasons.filter((r) => r !== 'busy').length).toBeGreaterThanOrEqual(64);
    expect(reasons.slice(0, 150).filter((r) => r === 'bad-password').length).toBeLessThanOrEqual(5);
    expect(reasons.slice(150).filter((r) => r === 'unknown-user').length).toBeLessThanOrEqual(20);
    // The account is locked after the burst whichever attempts were admitted.
    const evaluated = reasons.slice(0, 150).filter((r) => r === 'bad-password').length;
    expect(await listAudit(ferry.services.store.db, { type: 'signin', subject: name })).toHaveLength(
      evaluated,
    );
  });
});
