import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, isStorageFull } from './errors.js';
import { openStore, type Store, type WriteCondition } from './open.js';

/** SQLite out of space (issue 16 point 5), with a real SQLITE_FULL from PRAGMA max_page_count. */
describe('SQLite out of space', () => {
  let dir: string | undefined;
  let store: Store | undefined;
  let other: SqliteDatabase.Database | undefined;
  afterEach(async () => {
    other?.close();
    await store?.close();
    delete process.env.FERRY_TEST_SQLITE_HEADROOM_PAGES;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('throws the SQLITE_FULL (not "cannot rollback"), reports it once, and recovers when room returns', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-full-'));
    const file = join(dir, 'ferry.db');
    other = new SqliteDatabase(file);
    other.exec('create table t (b blob); create table filler (b blob)');
    process.env.FERRY_TEST_SQLITE_HEADROOM_PAGES = '100';
    const changes: WriteCondition[] = [];
    store = openStore(`sqlite:${file}`, { onWriteCondition: (c) => changes.push(c) });
    const db = store.db;
    const insert = () =>
      db.transaction().execute(async (trx) => {
        await sql`insert into t values (zeroblob(2000))`.execute(trx);
        await sql`insert into t values (zeroblob(2000))`.execute(trx);
      });
    await insert();
    expect(await store.writable!()).toEqual({ ok: true });

    let failure: unknown;
    for (let i = 0; i < 500 && failure === undefined; i++) await insert().catch((err) => (failure = err));
    expect((failure as { code?: string }).code).toBe('SQLITE_FULL');
    expect(isStorageFull(failure)).toBe(true);
    expect(isDatabaseUnavailable(failure)).toBe(true); // → 503
    await expect(insert()).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    const full = await store.writable!();
    expect(full).toMatchObject({ ok: false, cause: expect.stringContaining('SQLITE_FULL') });
    expect(changes).toHaveLength(1);
    // Reads still work, and an in-place update succeeding does not end the condition.
    await sql`select count(*) from t`.execute(db);
    await sql`update t set b = zeroblob(10) where rowid = 1`.execute(db);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await store.writable!()).ok).toBe(false);
    expect(changes).toHaveLength(1);

    // Room returns (another program's rows are deleted): the next probe finds it, without a reopen.
    other.exec('delete from t');
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await store.writable!()).toEqual({ ok: true });
    expect(changes.map((c) => c.ok)).toEqual([false, true]);
    await insert();
  });
});
