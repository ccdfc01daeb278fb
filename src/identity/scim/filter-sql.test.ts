import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../../test/support/db.js';
import { openStore, type Store } from '../../store/open.js';
import { parseFilter } from './filter.js';
import { filterToSql } from './filter-sql.js';
import { GROUP, USER } from './schema.js';

/** Entra ID looks every user up by `userName eq` or `externalId eq`: those must be index lookups. */
describe.each(ENGINES)('SCIM filters as SQL on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url);
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  const plan = async (kind: 'User' | 'Group', filter: string): Promise<string> => {
    const f = filterToSql(kind, engine, parseFilter(kind === 'User' ? USER : GROUP, filter));
    expect(f.exact).toBe(true);
    const table = kind === 'User' ? 'users' : 'groups';
    const q = store.db.selectFrom(table).selectAll().where(f.where!).compile();
    const explain = engine === 'sqlite' ? 'explain query plan ' : 'explain ';
    return store.db.transaction().execute(async (trx) => {
      // PostgreSQL would scan a table this small whatever the indexes; ask what it can do instead.
      if (engine === 'postgres') await sql`set local enable_seqscan = off`.execute(trx);
      const rows = await sql
        .raw<Record<string, unknown>>(
          `${explain}${q.sql}`.replace(/\$(\d+)|\?/g, (_m, n) => {
            const v = q.parameters[n ? Number(n) - 1 : 0];
            return typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
          }),
        )
        .execute(trx);
      return JSON.stringify(rows.rows);
    });
  };

  it.each([
    ['User', 'userName eq "Jane@Contoso.example"', /users_user_name_key|sqlite_autoindex_users_\d/],
    ['User', 'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"', /users_external_id/],
    [
      'User',
      'id eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
      /users_pkey|sqlite_autoindex_users_\d|PRIMARY KEY|INTEGER PRIMARY/,
    ],
    [
      'Group',
      'displayName eq "AWS-Account1-Developers"',
      /groups_display_name_key|sqlite_autoindex_groups_\d/,
    ],
    ['Group', 'externalId eq "8aa1a0c0"', /groups_external_id/],
  ] as const)('%s %s uses an index', async (kind, filter, index) => {
    const p = await plan(kind, filter);
    expect(p).toMatch(index);
    expect(p).not.toMatch(/SCAN users\b|SCAN groups\b|Seq Scan/);
  });

  it.each([
    ['userName eq "a" and active eq true', true],
    ['emails[type eq "work"].value eq "a@b"', false],
    ['not (title eq "x")', false],
    [`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D"`, false],
    ['userName sw "a" or displayName co "b"', true],
  ])('%s is exact in SQL: %s', (filter, exact) => {
    expect(filterToSql('User', engine, parseFilter(USER, filter)).exact).toBe(exact);
  });
});
