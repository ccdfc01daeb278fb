import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { rekeyLegacyHashes, sha256Hex } from './secrets.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'Tr0ub4dor&3-unlikely-horse';

// Upgrading past 0013: what releases before it stored (plain SHA-256 hex) is re-keyed at start, so
// existing API and SCIM tokens, sign-in sessions and recovery codes keep working, and the plain form
// is never accepted again.
describe.each(ENGINES)('stored secrets written before 0013 on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('are re-keyed once and then accepted; the plain SHA-256 form is not accepted as it stands', async () => {
    const s = ferry.services;
    const db = s.store.db;
    const user = await s.users.create(ctx, { userName: 'legacy@contoso.example', password: PASSWORD });
    const api = (await s.apiTokens.create(ctx, { name: 'pipeline' })).token;
    const scim = (await s.scimConnections.create(ctx, { name: 'entra' })).token;
    const signedIn = await s.signin.password('legacy@contoso.example', PASSWORD, {
      ip: '192.0.2.1',
      requestId: null,
    });
    expect(signedIn.status).toBe('signed-in');
    const cookie = signedIn.status === 'signed-in' ? signedIn.token : '';
    const [code] = await s.recoveryCodes.generate(ctx, { id: user.id, userName: user.userName });

    // What an earlier release wrote for these same values.
    await db
      .updateTable('api_tokens')
      .set({ secret_hash: sha256Hex(api.slice(-43)) })
      .where('name', '=', 'pipeline')
      .execute();
    await db
      .updateTable('scim_connections')
      .set({ secret_hash: sha256Hex(scim.slice(-43)) })
      .execute();
    await db
      .updateTable('sessions')
      .set({ token_hash: sha256Hex(cookie) })
      .where('user_id', '=', user.id)
      .where('revoked_at', 'is', null)
      .execute();
    await db.deleteFrom('recovery_codes').where('user_id', '=', user.id).execute();
    const canonical = code!.toLowerCase().replace(/[\s-]/g, '');
    await db
      .insertInto('recovery_codes')
      .values({
        code_hash: sha256Hex(`ferry-recovery:${canonical}`),
        user_id: user.id,
        created_at: new Date().toISOString(),
        used_at: null,
      })
      .execute();

    expect(await s.apiTokens.authenticate(api)).toBeNull();
    expect(await s.scimConnections.authenticate(scim)).toBeNull();
    expect(await s.sessions.resolve(cookie)).toBeNull();

    expect(await rekeyLegacyHashes(s.store, s.masterKey)).toBe(4);
    expect(await rekeyLegacyHashes(s.store, s.masterKey)).toBe(0);

    expect((await s.apiTokens.authenticate(api))?.name).toBe('pipeline');
    expect((await s.scimConnections.authenticate(scim))?.name).toBe('entra');
    expect((await s.sessions.resolve(cookie))?.userId).toBe(user.id);
    expect(await db.transaction().execute((trx) => s.recoveryCodes.use(trx, user.id, code!))).toBe(true);
    const hashes = [
      ...(await db.selectFrom('api_tokens').select('secret_hash as h').execute()),
      ...(await db.selectFrom('scim_connections').select('secret_hash as h').execute()),
      ...(await db.selectFrom('sessions').select('token_hash as h').execute()),
      ...(await db.selectFrom('recovery_codes').select('code_hash as h').execute()),
    ].map((r) => r.h);
    expect(hashes.filter((h) => /^[0-9a-f]{64}$/.test(h))).toEqual([]);
  });
});
