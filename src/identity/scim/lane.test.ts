import { verify } from '@node-rs/argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { expectScimError, type ScimClient, scimClient } from '../../../test/support/scim.js';

const ADMIN = { actor: { type: 'operator' as const, name: 'test' } };
const GOOD_PASSWORD = 'correct horse battery staple 42';
const NEW_PASSWORD = 'another long passphrase of 2026';

/**
 * SCIM stays in its lane (issue 14 point 11): a provisioning connection sees and changes only the
 * users and groups it created or was handed by an admin; it never sets the password of an account
 * created elsewhere, and sets none at all unless enabled for it.
 */
describe.each(ENGINES)('SCIM connection lanes on %s', (engine) => {
  let ferry: TestFerry;
  let entra: ScimClient & { connectionId: string };
  let other: ScimClient & { connectionId: string };
  let withPasswords: ScimClient & { connectionId: string };
  let seq = 0;
  const name = (what: string) => `${what}-${++seq}@contoso.example`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    entra = await scimClient(ferry, 'entra');
    other = await scimClient(ferry, 'okta');
    withPasswords = await scimClient(ferry, 'hr-feed', { passwordWrites: true });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const localAdmin = () =>
    ferry.services.users.create(ADMIN, { userName: name('local-admin'), password: GOOD_PASSWORD });
  const passwordWorks = async (userName: string, password: string) => {
    const row = await ferry.services.store.db
      .selectFrom('users')
      .select('password_hash')
      .where('user_name', '=', userName)
      .executeTakeFirstOrThrow();
    return row.password_hash !== null && (await verify(row.password_hash, password));
  };

  it('hides a locally created account and refuses every change to it, its password included', async () => {
    const admin = await localAdmin();
    // not listed, not found by filter, not readable
    const listed = await entra.get(`/Users?filter=${encodeURIComponent(`userName eq "${admin.userName}"`)}`);
    expect(listed.body.totalResults).toBe(0);
    expect((await entra.get('/Users?count=1000')).body.Resources?.map((r) => r.id)).not.toContain(admin.id);
    expectScimError(await entra.get(`/Users/${admin.id}`), 404);
    // not changeable: 403, and nothing changed
    const patch = await entra.patch(`/Users/${admin.id}`, [
      { op: 'replace', path: 'password', value: NEW_PASSWORD },
    ]);
    expectScimError(patch, 403);
    expectScimError(
      await withPasswords.patch(`/Users/${admin.id}`, [
        { op: 'replace', path: 'password', value: NEW_PASSWORD },
      ]),
      403,
    );
    expectScimError(
      await entra.put(`/Users/${admin.id}`, {
        userName: admin.userName,
        password: NEW_PASSWORD,
        active: true,
      }),
      403,
    );
    expectScimError(
      await entra.patch(`/Users/${admin.id}`, [{ op: 'replace', path: 'active', value: false }]),
      403,
    );
    expectScimError(await entra.del(`/Users/${admin.id}`), 403);
    expect(await passwordWorks(admin.userName, GOOD_PASSWORD)).toBe(true);
    expect((await ferry.services.users.get(admin.id)).active).toBe(true);
    // a taken name is still a uniqueness conflict, so the source can report it
    expectScimError(await entra.post('/Users', { userName: admin.userName }), 409, 'uniqueness');
  });

  it("keeps one connection out of another's users and groups", async () => {
    const user = await entra.post('/Users', { userName: name('entra-user'), active: true });
    const group = await entra.post('/Groups', { displayName: `entra-group-${seq}` });
    expect([user.status, group.status]).toEqual([201, 201]);
    const userId = user.body.id as string;
    const groupId = group.body.id as string;

    expectScimError(await other.get(`/Users/${userId}`), 404);
    expectScimError(await other.get(`/Groups/${groupId}`), 404);
    expectScimError(await other.del(`/Users/${userId}`), 403);
    expectScimError(
      await other.patch(`/Groups/${groupId}`, [{ op: 'replace', path: 'displayName', value: 'x' }]),
      403,
    );
    expect((await other.get('/Groups')).body.Resources?.map((r) => r.id) ?? []).not.toContain(groupId);

    // its own group may not take in a user of another lane (a way to grant someone else access)
    const own = await other.post('/Groups', {
      displayName: `okta-group-${seq}`,
      members: [{ value: userId }],
    });
    expectScimError(own, 400, 'invalidValue');
    // and the owner still manages both
    expect(
      (await entra.patch(`/Groups/${groupId}`, [{ op: 'add', path: 'members', value: [{ value: userId }] }]))
        .status,
    ).toBe(200);
    expect((await entra.get(`/Users/${userId}`)).status).toBe(200);
  });

  it('sets no password unless the connection allows it, with the SCIM mutability error', async () => {
    const refused = await entra.post('/Users', { userName: name('pw'), password: GOOD_PASSWORD });
    expectScimError(refused, 400, 'mutability');
    const created = await entra.post('/Users', { userName: name('pw') });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expectScimError(
      await entra.patch(`/Users/${id}`, [{ op: 'replace', path: 'password', value: NEW_PASSWORD }]),
      400,
      'mutability',
    );
    expectScimError(
      await entra.put(`/Users/${id}`, { userName: created.body.userName, password: NEW_PASSWORD }),
      400,
      'mutability',
    );

    const allowed = await withPasswords.post('/Users', { userName: name('pw-ok'), password: GOOD_PASSWORD });
    expect(allowed.status).toBe(201);
    expect(await passwordWorks(allowed.body.userName as string, GOOD_PASSWORD)).toBe(true);
    const changed = await withPasswords.patch(`/Users/${allowed.body.id}`, [
      { op: 'replace', path: 'password', value: NEW_PASSWORD },
    ]);
    expect(changed.status).toBe(200);
    expect(await passwordWorks(allowed.body.userName as string, NEW_PASSWORD)).toBe(true);
  });

  it('lets an admin hand an account over, which the connection then manages but never sets the password of', async () => {
    const admin = await localAdmin();
    const handed = await ferry.services.scimConnections.handOver(
      ADMIN,
      withPasswords.connectionId,
      'user',
      admin.userName,
    );
    expect(handed).toMatchObject({ kind: 'user', id: admin.id });

    expect((await withPasswords.get(`/Users/${admin.id}`)).status).toBe(200);
    const renamed = await withPasswords.patch(`/Users/${admin.id}`, [
      { op: 'replace', path: 'displayName', value: 'Handed Over' },
    ]);
    expect(renamed.status).toBe(200);
    expectScimError(
      await withPasswords.patch(`/Users/${admin.id}`, [
        { op: 'replace', path: 'password', value: NEW_PASSWORD },
      ]),
      400,
      'mutability',
    );
    expect(await passwordWorks(admin.userName, GOOD_PASSWORD)).toBe(true);
    // the hand-over is audited
    const audit = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'subject'])
      .where('type', '=', 'scim-connection.handed-over')
      .execute();
    expect(audit).toContainEqual({ type: 'scim-connection.handed-over', subject: admin.userName });
  });

  it('refuses concurrent password writes from a connection that may not set them, all of them', async () => {
    const created = await entra.post('/Users', { userName: name('burst') });
    const id = created.body.id as string;
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        entra.patch(`/Users/${id}`, [{ op: 'replace', path: 'password', value: `${NEW_PASSWORD} ${i}` }]),
      ),
    );
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(400));
    const row = await ferry.services.store.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.password_hash).toBeNull();
  });
});
