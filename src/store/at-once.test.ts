import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { migratedStore } from '../../test/support/migrated-store.js';
import { readNowIfIdle, writeNowIfIdle } from './at-once.js';
import { openStore } from './open.js';

const GENERATION = 'select generation from ca_policy_set where id = 1';
const bump = { text: 'update ca_policy_set set generation = generation + 1 where id = 1', parameters: [] };

describe.each(ENGINES)('statements at once on %s', (engine) => {
  const s = migratedStore(engine);
  const generation = async () =>
    Number(
      (
        await sql<{ generation: number }>`select generation from ca_policy_set where id = 1`.execute(
          s.store.db,
        )
      ).rows[0]!.generation,
    );

  it('read and write at once only on an idle SQLite connection, and see what db sees', async () => {
    const before = await generation();
    if (engine === 'postgres') {
      expect(readNowIfIdle(s.store, GENERATION)).toBeUndefined();
      expect(writeNowIfIdle(s.store, [bump])).toBe(false);
      return;
    }
    expect(Number(readNowIfIdle<{ generation: number }>(s.store, GENERATION)!.row!.generation)).toBe(before);
    expect(writeNowIfIdle(s.store, [bump])).toBe(true);
    expect(await generation()).toBe(before + 1);
    // Inside a transaction (its uncommitted writes on the same connection) neither runs.
    await s.store.db
      .transaction()
      .execute(async (trx) => {
        await sql`update ca_policy_set set generation = generation + 1 where id = 1`.execute(trx);
        expect(readNowIfIdle(s.store, GENERATION)).toBeUndefined();
        expect(writeNowIfIdle(s.store, [bump])).toBe(false);
        throw new Error('roll back');
      })
      .catch(() => {});
    expect(await generation()).toBe(before + 1);
    // Another connection's commit (another process) is seen by the next read.
    const other = openStore(s.url);
    try {
      await sql`update ca_policy_set set generation = generation + 5 where id = 1`.execute(other.db);
    } finally {
      await other.close();
    }
    expect(Number(readNowIfIdle<{ generation: number }>(s.store, GENERATION)!.row!.generation)).toBe(
      before + 6,
    );
  });

  it('a write that fails is rolled back whole, and says so', async () => {
    if (engine === 'postgres') return;
    const before = await generation();
    expect(
      writeNowIfIdle(s.store, [bump, { text: 'insert into ca_policy_set (id) values (?)', parameters: [1] }]),
    ).toBe(false);
    expect(await generation()).toBe(before);
    expect(s.store.sqlite!.inTransaction).toBe(false);
  });
});

describe('sqliteTransaction', () => {
  const s = migratedStore('sqlite');

  it('commits its work as one transaction, and refuses to run as a mere savepoint inside an open one', async () => {
    const generationNow = () =>
      Number((s.store.sqlite!.prepare(GENERATION).get() as { generation: number }).generation);
    const before = generationNow();
    await s.store.sqliteTransaction!((db) => db.prepare(bump.text).run());
    expect(generationNow()).toBe(before + 1);
    // a connection left inside a transaction (e.g. after a failed rollback)
    s.store.sqlite!.exec('begin');
    try {
      await expect(s.store.sqliteTransaction!((db) => db.prepare(bump.text).run())).rejects.toThrow(
        /already open/,
      );
    } finally {
      s.store.sqlite!.exec('rollback');
    }
    expect(generationNow()).toBe(before + 1);
  });
});
