import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { migrateToLatest, migratorFor } from './migrate.js';
import { openStore, type Store } from './open.js';

// Migration 0046: the SCIM lane table without a rowid on SQLite (one b-tree fewer per create), rows kept.
describe.each(ENGINES)('migration 0046, scim_managed_objects (%s)', (engine) => {
  let db: TestDatabase;
  let store: Store;
  afterEach(async () => {
    await store?.close();
    await db?.drop();
  });

  it('keeps every lane row down and up again, and the key still refuses a second row', async () => {
    db = await createTestDatabase(engine);
    store = openStore(db.url);
    await migrateToLatest(store);
    const row = {
      kind: 'user' as const,
      object_id: 'u1',
      connection_id: 'c1',
      origin: 'provisioned' as const,
      since: '2026-12-06T00:00:00.000Z',
    };
    await store.db.insertInto('scim_managed_objects').values(row).execute();
    if (engine === 'sqlite') {
      const ddl = await sql<{
        sql: string;
      }>`select sql from sqlite_master where name = 'scim_managed_objects'`.execute(store.db);
      expect(ddl.rows[0]?.sql).toMatch(/without rowid/i);
    }
    const down = await migratorFor(store).migrateDown();
    expect(down.error).toBeUndefined();
    expect(await store.db.selectFrom('scim_managed_objects').selectAll().execute()).toEqual([row]);
    await migrateToLatest(store);
    expect(await store.db.selectFrom('scim_managed_objects').selectAll().execute()).toEqual([row]);
    await expect(
      store.db
        .insertInto('scim_managed_objects')
        .values({ ...row, connection_id: 'c2' })
        .execute(),
    ).rejects.toThrow();
    const indexes =
      engine === 'sqlite'
        ? await sql<{
            name: string;
          }>`select name from sqlite_master where type = 'index' and tbl_name = 'scim_managed_objects' and sql is not null`.execute(
            store.db,
          )
        : await sql<{
            name: string;
          }>`select indexname as name from pg_indexes where tablename = 'scim_managed_objects' and indexname <> 'scim_managed_objects_pk'`.execute(
            store.db,
          );
    expect(indexes.rows.map((r) => r.name)).toEqual(['scim_managed_objects_connection']);
  });
});
