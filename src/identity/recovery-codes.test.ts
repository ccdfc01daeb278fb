import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { generateTotpSecret, totpCode } from './totp.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'Tr0ub4dor&3-unlikely-horse';
const req = { ip: '192.0.2.1', requestId: null };

describe.each(ENGINES)('recovery codes and "register MFA at next sign-in" on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const newUser = () =>
    ferry.services.users.create(ctx, { userName: `mfa-${++seq}@contoso.example`, password: PASSWORD });
  const pending = async (userName: string) => {
    const r = await ferry.services.signin.password(userName, PASSWORD, req);
    expect(r.status).toBe('second-factor-required');
    return r.status === 'second-factor-required' ? r.token : '';
  };

  it("a recovery code stands in for the code once, is stored only hashed, and is nobody else's", async () => {
    const s = ferry.services;
    const [alice, bob] = [await newUser(), await newUser()];
    for (const u of [alice, bob])
      await s.store.db
        .transaction()
        .execute((trx) => s.totp.enroll(trx, ctx, u, { confirmed: true, secret: generateTotpSecret() }));
    const codes = await s.recoveryCodes.generate(ctx, alice);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const stored = JSON.stringify(await s.store.db.selectFrom('recovery_codes').selectAll().execute());
    for (const c of codes) expect(stored).not.toContain(c.replace('-', ''));

    expect((await s.signin.secondFactor(await pending(bob.userName), codes[0]!, req)).status).toBe('failed');
    const ok = await s.signin.secondFactor(await pending(alice.userName), codes[0]!.toUpperCase(), req);
    expect(ok.status).toBe('signed-in');
    if (ok.status === 'signed-in') expect(ok.session.amr).toContain('mfa');
    expect((await s.signin.secondFactor(await pending(alice.userName), codes[0]!, req)).status).toBe(
      'failed',
    );
    expect(await s.recoveryCodes.remaining(alice.id)).toBe(9);
    // New codes replace the old ones.
    await s.recoveryCodes.generate(ctx, alice);
    expect((await s.signin.secondFactor(await pending(alice.userName), codes[1]!, req)).status).toBe(
      'failed',
    );
    const steps = await s.store.db
      .selectFrom('audit_events')
      .select(['data', 'outcome'])
      .where('subject', '=', alice.userName)
      .where('type', '=', 'signin')
      .execute();
    expect(steps.some((e) => e.outcome === 'success' && JSON.parse(e.data).step === 'recovery-code')).toBe(
      true,
    );
  });

  it('an admin requires MFA registration: the next sign-in enrolls first, then the flag is gone', async () => {
    const s = ferry.services;
    const u = await newUser();
    expect((await s.signin.password(u.userName, PASSWORD, req)).status).toBe('signed-in');
    const res = await ferry.api(`/api/v1/users/${encodeURIComponent(u.userName)}/mfa/registration-required`, {
      method: 'PUT',
      body: JSON.stringify({ required: true }),
    });
    expect(res.status).toBe(204);
    const r = await s.signin.password(u.userName, PASSWORD, req);
    expect(r.status).toBe('enrollment-required');
    if (r.status !== 'enrollment-required') return;
    const done = await s.signin.confirmEnrollment(r.token, totpCode(r.enrollment.secret, new Date()), req);
    expect(done.status).toBe('signed-in');
    const row = await s.store.db
      .selectFrom('users')
      .select('mfa_registration_required')
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
    expect(Number(row.mfa_registration_required)).toBe(0);
    expect((await s.signin.password(u.userName, PASSWORD, req)).status).toBe('second-factor-required');
    const missing = await ferry.api('/api/v1/users/nobody@contoso.example/mfa/registration-required', {
      method: 'PUT',
      body: JSON.stringify({ required: true }),
    });
    expect(missing.status).toBe(404);
  });
});
