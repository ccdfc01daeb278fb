import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createPostgresDatabase,
  createPostgresDatabaseOnSmallDisk,
  POSTGRES_ADMIN_URL,
} from '../../test/support/postgres.js';
import { toProblem } from '../app/errors.js';
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

/**
 * PostgreSQL out of space (issue 16 point 5): a real disk_full from a database whose tablespace is a
 * small tmpfs, filled by another client as another program would fill a disk.
 */
describe('PostgreSQL out of space', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('throws the disk_full, reports it once, answers 503, and recovers when room returns', async () => {
    const db = await createPostgresDatabaseOnSmallDisk(12);
    cleanups.push(() => db.drop());
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    cleanups.push(() => other.end());
    await other.query('create table t (b text); create table filler (b text)');
    const changes: WriteCondition[] = [];
    const store = openStore(db.url, { onWriteCondition: (c) => changes.push(c), poolSize: 2 });
    cleanups.push(() => store.close());
    const insert = () =>
      sql`insert into t select repeat('x', 1000) from generate_series(1, 64)`.execute(store.db);
    await insert();
    expect(await store.writable!()).toEqual({ ok: true });

    // Another program takes the disk: 1 MiB at a time until none is left.
    for (let i = 0; i < 64; i++) {
      const filled = await other
        .query(`insert into filler select repeat(md5(g::text), 32) from generate_series(1, 1024) g`)
        .then(
          () => false,
          (err: { code?: string }) => err.code === '53100',
        );
      if (filled) break;
    }
    let failure: unknown;
    for (let i = 0; i < 200 && failure === undefined; i++) await insert().catch((err) => (failure = err));
    expect(failure).toMatchObject({ code: '53100' });
    expect(isStorageFull(failure)).toBe(true);
    expect(isDatabaseUnavailable(failure)).toBe(true);
    expect(toProblem(failure)).toMatchObject({
      status: 503,
      message: 'the database has no room to write (disk full); retry shortly',
    });
    await expect(insert()).rejects.toMatchObject({ code: '53100' });
    const full = await store.writable!();
    expect(full).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/out of space \(53100: could not extend/),
    });
    expect(changes).toHaveLength(1);
    // Reads still work; the probe (once a second) still finds no room.
    await sql`select count(*) from t`.execute(store.db);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await store.writable!()).ok).toBe(false);
    expect(changes).toHaveLength(1);

    // Room returns (the other program's table goes): the next probe finds it, without a reopen.
    await other.query('drop table filler');
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await store.writable!()).toEqual({ ok: true });
    expect(changes.map((c) => c.ok)).toEqual([false, true]);
    await insert();
    // The probe left nothing behind.
    const probes = await other.query(`select relname from pg_class where relname like 'ferry_space_probe%'`);
    expect(probes.rows).toEqual([]);
  });

  it('too many connections, and the server short of memory, answer 503 like an outage', async () => {
    const db = await createPostgresDatabase();
    cleanups.push(() => db.drop());
    // A real 53300: a role allowed no connections (superusers, as tests connect, are exempt from limits).
    const role = `ferry_test_nolimit_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    cleanups.push(async () => {
      await admin.query(`drop role if exists ${role}`);
      await admin.end();
    });
    await admin.query(`create role ${role} login connection limit 0`);
    const url = new URL(db.url);
    url.username = role;
    const store = openStore(url.toString(), { poolSize: 1 });
    cleanups.push(() => store.close());
    const refused = await store.ping().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({ code: '53300' });
    expect(isDatabaseUnavailable(refused)).toBe(true);
    expect(isStorageFull(refused)).toBe(false);
    expect(toProblem(refused)).toMatchObject({
      status: 503,
      message: 'the database is unreachable; retry shortly',
    });
    // out_of_memory comes from the server as a plain error with its code: the same mapping.
    const oom = await admin
      .query(`do $$ begin raise exception 'out of memory' using errcode = 'out_of_memory'; end $$`)
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(oom).toMatchObject({ code: '53200' });
    expect(toProblem(oom).status).toBe(503);
  });
});
