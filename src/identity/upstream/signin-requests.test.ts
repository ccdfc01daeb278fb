import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { ManualClock } from '../../clock.js';
import { PendingSignins } from './signin-requests.js';

describe.each(ENGINES)('pending upstream sign-ins on %s', (engine) => {
  let ferry: TestFerry;
  const clock = new ManualClock('2026-06-01T09:00:00Z');
  let pending: PendingSignins;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
    const { store, masterKey } = ferry.services;
    pending = new PendingSignins(store.db, clock, masterKey, 10 * 60_000);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const signin = (state: string) => ({
    provider: 'entra',
    state,
    nonce: `nonce-${state}`,
    codeVerifier: `verifier-${state}-${'x'.repeat(40)}`,
    returnTo: '/apps/aws-console',
  });

  it('gives a state back once, with its nonce, verifier and return_to; the verifier is sealed at rest', async () => {
    await pending.save(signin('s1'));
    const row = await ferry.services.store.db
      .selectFrom('upstream_signin_requests')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(row.state_hash).not.toContain('s1');
    expect(row.code_verifier_sealed).not.toContain('verifier-s1');
    expect(await pending.take('entra', 's1')).toEqual(signin('s1'));
    expect(await pending.take('entra', 's1')).toBeNull();
  });

  it('refuses a state of another provider, an unknown one, and one that outlived its lifetime', async () => {
    await pending.save(signin('s2'));
    expect(await pending.take('okta', 's2')).toBeNull();
    expect(await pending.take('entra', 'never-issued')).toBeNull();
    expect(await pending.take('entra', '')).toBeNull();
    await pending.save(signin('s3'));
    clock.advance(10 * 60_000 + 1);
    expect(await pending.take('entra', 's3')).toBeNull();
  });

  it('purges sign-ins that never came back', async () => {
    await pending.save(signin('s4'));
    await pending.save(signin('s5'));
    clock.advance(10 * 60_000);
    expect(await pending.purgeExpired()).toBeGreaterThanOrEqual(2);
    const left = await ferry.services.store.db.selectFrom('upstream_signin_requests').selectAll().execute();
    expect(left).toEqual([]);
  });
});
