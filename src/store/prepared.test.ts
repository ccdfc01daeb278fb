import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migratedStore } from '../../test/support/migrated-store.js';
import { PREPARED_TEXTS } from './open.js';

// Named prepared statements are PostgreSQL's (SQLite's store already reuses prepared statements for
// every text, in-process): Store.prepared is absent there and callers run the statement as usual.
describe('prepared statements (postgres)', () => {
  // one connection: every statement below runs in the same server session
  const s = migratedStore('postgres', 1);

  const byIds = (ids: string[]) =>
    sql<{
      n: number;
    }>`select count(*)::int as n from unnest(${ids}::text[]) as t(id) where id <> ${'x'}`.compile(s.store.db);
  const preparedHere = async () =>
    (
      await sql<{ statement: string; generic_plans: string; custom_plans: string }>`
        select statement, generic_plans, custom_plans from pg_prepared_statements`.execute(s.store.db)
    ).rows;

  it('answers as the unnamed statement does, preparing its text once on the connection', async () => {
    for (const ids of [[], ['a'], ['a', 'b', 'c'], ['x', 'y']]) {
      const q = byIds(ids);
      expect(await s.store.prepared!(q)).toEqual((await s.store.db.executeQuery(q)).rows);
    }
    const mine = (await preparedHere()).filter((p) => p.statement === byIds([]).sql);
    expect(mine).toHaveLength(1);
    expect(Number(mine[0]!.generic_plans) + Number(mine[0]!.custom_plans)).toBe(4);
  });

  it(`prepares at most ${PREPARED_TEXTS} texts; the rest run unnamed`, async () => {
    for (let i = 0; i < PREPARED_TEXTS + 5; i++) {
      const rows = await s.store.prepared!(
        sql<{ i: number }>`select ${sql.lit(i)}::int as i`.compile(s.store.db),
      );
      expect(rows).toEqual([{ i }]);
    }
    expect((await preparedHere()).length).toBe(PREPARED_TEXTS);
  });
});

describe('prepared statements after a schema change (postgres)', () => {
  const p = migratedStore('postgres', 1);

  it('keeps answering after a migration changes what the statement returns (a new name is prepared)', async () => {
    await sql`create table prepared_probe (a int)`.execute(p.store.db);
    await sql`insert into prepared_probe values (1)`.execute(p.store.db);
    const q = sql<{ a: unknown }>`select a from prepared_probe`.compile(p.store.db);
    expect(await p.store.prepared!(q)).toEqual([{ a: 1 }]);
    // the server refuses the prepared statement from now on: "cached plan must not change result type"
    await sql`alter table prepared_probe alter column a type text`.execute(p.store.db);
    expect(await p.store.prepared!(q)).toEqual([{ a: '1' }]);
    expect(await p.store.prepared!(q)).toEqual([{ a: '1' }]);
    await sql`drop table prepared_probe`.execute(p.store.db);
  });
});
