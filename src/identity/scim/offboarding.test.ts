import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { expectScimError, type ScimClient, scimClient } from '../../../test/support/scim.js';
import { ManualClock } from '../../clock.js';

/**
 * Offboarding through SCIM: `active: false` (every form Entra ID sends) or DELETE ends the person's
 * Ferry sessions and writes the outbox events the AWS revocation and OIDC workers consume, with the
 * audit rows, in one transaction: a failure at any step leaves everything as it was.
 */
describe.each(ENGINES)('offboarding on %s', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let scim: ScimClient;
  let seq = 0;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
    scim = await scimClient(ferry);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const db = () => ferry.services.store.db;

  /** A provisioned user with two live sessions. */
  const personWithSessions = async () => {
    const res = await scim.post('/Users', { userName: `leaver-${++seq}@contoso.example`, active: true });
    expect(res.status).toBe(201);
    const id = res.body.id as string;
    await db()
      .transaction()
      .execute(async (trx) => {
        for (let i = 0; i < 2; i++) {
          await ferry.services.sessions.start(trx, { userId: id, state: 'active', amr: ['pwd', 'otp'] });
        }
      });
    return { id, userName: res.body.userName as string };
  };

  const eventsFor = async (userId: string) =>
    (
      await db()
        .selectFrom('outbox')
        .select(['type', 'payload'])
        .orderBy('created_at')
        .orderBy('id')
        .execute()
    )
      .map((r) => ({ type: r.type, payload: JSON.parse(r.payload) as { userId?: string } }))
      .filter((e) => e.payload.userId === userId)
      .map((e) => e.type);

  const auditFor = async (userName: string) =>
    db().selectFrom('audit_events').selectAll().where('subject', '=', userName).orderBy('seq').execute();

  const liveSessions = async (userId: string) =>
    (await db().selectFrom('sessions').select('revoked_at').where('user_id', '=', userId).execute()).filter(
      (s) => s.revoked_at === null,
    ).length;

  const expectDeactivated = async (p: { id: string; userName: string }) => {
    const row = await db()
      .selectFrom('users')
      .select('active')
      .where('id', '=', p.id)
      .executeTakeFirstOrThrow();
    expect(row.active).toBe(0);
    expect(await liveSessions(p.id)).toBe(0);
    const events = await eventsFor(p.id);
    expect(events.filter((t) => t === 'session.revoked')).toHaveLength(2);
    expect(events).toContain('user.deactivated');
    const disabled = (await auditFor(p.userName)).find((a) => a.type === 'user.disabled')!;
    expect(JSON.parse(disabled.data)).toMatchObject({ userId: p.id, sessionsRevoked: 2 });
    expect(JSON.parse(disabled.actor)).toMatchObject({ type: 'scim-connection', name: 'entra' });
  };

  it.each([
    ['replace with a path and a boolean', [{ op: 'replace', path: 'active', value: false }]],
    [
      'Entra before 2020: capitalized op and a string boolean',
      [{ op: 'Replace', path: 'active', value: 'False' }],
    ],
    ['replace with no path', [{ op: 'replace', value: { active: false } }]],
    ['replace with no path and a string boolean', [{ op: 'Replace', value: { active: 'false' } }]],
  ])('PATCH %s disables the user, ends sessions and tells the outbox', async (_, ops) => {
    const p = await personWithSessions();
    const res = await scim.patch(`/Users/${p.id}`, ops);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.active).toBe(false);
    await expectDeactivated(p);
  });

  it('PUT with active false does the same, and active true brings the user back', async () => {
    const p = await personWithSessions();
    const res = await scim.put(`/Users/${p.id}`, { userName: p.userName, active: false });
    expect(res.status).toBe(200);
    await expectDeactivated(p);
    const back = await scim.patch(`/Users/${p.id}`, [{ op: 'replace', path: 'active', value: true }]);
    expect(back.body.active).toBe(true);
    expect(await eventsFor(p.id)).toContain('user.reactivated');
  });

  it('DELETE removes the user, ends sessions and writes user.deleted', async () => {
    const p = await personWithSessions();
    const g = await scim.post('/Groups', { displayName: `leavers-${seq}`, members: [{ value: p.id }] });
    expect((await scim.del(`/Users/${p.id}`)).status).toBe(204);
    expectScimError(await scim.get(`/Users/${p.id}`), 404);
    expect(await db().selectFrom('sessions').select('id').where('user_id', '=', p.id).execute()).toEqual([]);
    const events = await eventsFor(p.id);
    expect(events.filter((t) => t === 'session.revoked')).toHaveLength(2);
    expect(events.at(-1)).toBe('user.deleted');
    const deleted = (await auditFor(p.userName)).find((a) => a.type === 'user.deleted')!;
    expect(JSON.parse(deleted.data)).toMatchObject({ sessionsRevoked: 2, membershipsRemoved: 1 });
    expect((await scim.get(`/Groups/${g.body.id}`)).body.members).toBeUndefined();
  });

  describe('a failure mid-way leaves nothing half-done', () => {
    const failOn = async (table: 'audit_events' | 'outbox', type: string) => {
      if (engine === 'sqlite') {
        await sql
          .raw(
            `CREATE TRIGGER fail_mid_way BEFORE INSERT ON ${table} WHEN NEW.type = '${type}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`,
          )
          .execute(db());
      } else {
        await sql
          .raw(
            `CREATE OR REPLACE FUNCTION fail_mid_way() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
          )
          .execute(db());
        await sql
          .raw(
            `CREATE TRIGGER fail_mid_way BEFORE INSERT ON ${table} FOR EACH ROW WHEN (NEW.type = '${type}') EXECUTE FUNCTION fail_mid_way()`,
          )
          .execute(db());
      }
      return async () => {
        await sql
          .raw(engine === 'sqlite' ? 'DROP TRIGGER fail_mid_way' : `DROP TRIGGER fail_mid_way ON ${table}`)
          .execute(db());
      };
    };

    const unchanged = async (p: { id: string; userName: string }, auditBefore: number) => {
      const row = await db()
        .selectFrom('users')
        .select(['active', 'version'])
        .where('id', '=', p.id)
        .executeTakeFirst();
      expect(row).toMatchObject({ active: 1, version: 1 });
      expect(await liveSessions(p.id)).toBe(2);
      expect(await eventsFor(p.id)).toEqual(['user.created']);
      expect((await auditFor(p.userName)).length).toBe(auditBefore);
    };

    it('when the audit append of a SCIM deactivation fails (after sessions were revoked)', async () => {
      const p = await personWithSessions();
      const auditBefore = (await auditFor(p.userName)).length;
      const restore = await failOn('audit_events', 'user.disabled');
      try {
        const res = await scim.patch(`/Users/${p.id}`, [{ op: 'Replace', path: 'active', value: 'False' }]);
        expectScimError(res, 500);
        await unchanged(p, auditBefore);
      } finally {
        await restore();
      }
      // the retry Entra makes goes through whole
      expect(
        (await scim.patch(`/Users/${p.id}`, [{ op: 'Replace', path: 'active', value: 'False' }])).status,
      ).toBe(200);
      await expectDeactivated(p);
    });

    it('when the user.deleted event of a SCIM DELETE cannot be written', async () => {
      const p = await personWithSessions();
      const auditBefore = (await auditFor(p.userName)).length;
      const restore = await failOn('outbox', 'user.deleted');
      try {
        expectScimError(await scim.del(`/Users/${p.id}`), 500);
        await unchanged(p, auditBefore);
      } finally {
        await restore();
      }
    });

    it('when the admin API deactivates and the outbox write fails', async () => {
      const p = await personWithSessions();
      const auditBefore = (await auditFor(p.userName)).length;
      const restore = await failOn('outbox', 'user.deactivated');
      try {
        const res = await ferry.api(`/api/v1/users/${p.id}`, {
          method: 'PATCH',
          body: JSON.stringify({ active: false }),
        });
        expect(res.status).toBe(500);
        await unchanged(p, auditBefore);
      } finally {
        await restore();
      }
      const ok = await ferry.api(`/api/v1/users/${p.id}`, {
        method: 'PATCH',
        body: JSON.stringify({ active: false }),
      });
      expect(ok.status).toBe(200);
      expect(await liveSessions(p.id)).toBe(0);
      expect(await eventsFor(p.id)).toContain('user.deactivated');
    });
  });
});
