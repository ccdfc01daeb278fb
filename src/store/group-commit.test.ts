import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { isUniqueViolation } from './errors.js';
import { runTogether, transactTogether } from './group-commit.js';
import { openStore, type Store } from './open.js';
import type { Database } from './schema.js';

describe.each(ENGINES)('group commit on %s', (engine) => {
  let db: TestDatabase;
  let store: Store;
  let seq = 0;

  beforeAll(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  const insertGroup = (trx: Kysely<Database>, name: string) =>
    trx
      .insertInto('groups')
      .values({
        id: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
        display_name: name,
        display_name_key: name.toLowerCase(),
        description: null,
        external_id: null,
        created_at: '2026-01-01T00:00:00.000Z',
        updated_at: '2026-01-01T00:00:00.000Z',
        version: 1,
      })
      .execute();
  const groupsNamed = async (prefix: string) =>
    (
      await store.db
        .selectFrom('groups')
        .select('display_name')
        .where('display_name', 'like', `${prefix}%`)
        .orderBy('display_name')
        .execute()
    ).map((r) => r.display_name);

  it('rolls back only the unit that failed; the others commit together', async () => {
    const outcomes = await runTogether(store.db, [
      (trx) => insertGroup(trx, 'rt-a').then(() => 'a'),
      (trx) => insertGroup(trx, 'RT-A').then(() => 'dup'), // display_name_key is unique
      async (trx) => {
        await insertGroup(trx, 'rt-half');
        throw new Error('fails after writing');
      },
      (trx) => insertGroup(trx, 'rt-b').then(() => 'b'),
    ]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, false, true]);
    expect(isUniqueViolation((outcomes[1] as { error: unknown }).error)).toBe(true);
    expect(await groupsNamed('rt-')).toEqual(['rt-a', 'rt-b']);
  });

  it('stops where the caller says and reports only what it attempted', async () => {
    const outcomes = await runTogether(
      store.db,
      [
        (trx) => insertGroup(trx, 'st-a'),
        (trx) => insertGroup(trx, 'st-b'),
        (trx) => insertGroup(trx, 'st-c'),
      ],
      (i) => i < 1,
    );
    expect(outcomes).toHaveLength(2);
    expect(await groupsNamed('st-')).toEqual(['st-a', 'st-b']);
  });

  it('fails every unit when the transaction itself is lost, and commits none', async () => {
    const outcomes = await runTogether<unknown>(store.db, [
      (trx) => insertGroup(trx, 'lost-a'),
      async (trx) => {
        // ends the transaction under the batch: its commit then fails
        await sql`rollback`.execute(trx);
      },
      (trx) => insertGroup(trx, 'lost-b'),
    ]);
    expect(outcomes.every((o) => !o.ok)).toBe(true);
    expect(await groupsNamed('lost-')).toEqual([]);
  });

  it('shares one transaction among units queued together, and answers each after the commit', async () => {
    const seen = new Set<Kysely<Database>>();
    await insertGroup(store.db, 'gcx-taken');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        transactTogether(store, async (trx) => {
          seen.add(trx);
          await insertGroup(trx, `gc-${String(i).padStart(2, '0')}`);
          if (i === 7) await insertGroup(trx, 'gcx-taken'); // taken: this unit alone fails
          return i;
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[7]!.status).toBe('rejected');
    const names = await groupsNamed('gc-');
    expect(names).toHaveLength(19);
    expect(names).not.toContain('gc-07');
    // SQLite: one writer, so the queued units share commits; PostgreSQL commits in parallel instead.
    if (engine === 'sqlite') expect(seen.size).toBeLessThan(20);
    else expect(seen.size).toBe(20);
  });
});
