import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type SqliteDialectConfig,
  type SqliteDriver,
  sql,
} from 'kysely';
import type pg from 'pg';
import { onFirstUse } from '../lazy-module.js';
import { isStorageFull } from './errors.js';
import type { Database } from './schema.js';
import { PROBE_BYTES, PROBE_DONE, WriteHealth } from './write-health.js';

export type Engine = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly engine: Engine;
  /**
   * SQLite only: the one better-sqlite3 connection under `db`, for hot paths that reuse a prepared
   * statement (CloudTrail ingestion). Use it only inside a `db` transaction (which holds the connection).
   */
  readonly sqlite?: SqliteDatabase.Database;
  /**
   * SQLite only: runs `work` in one IMMEDIATE transaction on the one connection, synchronously, while
   * holding it as a `db` transaction would (so it never runs inside another's). For a hot path whose
   * statements need no await in between (the token endpoint's group commit): Kysely's begin, statements
   * and commit are each an async step. An out-of-space error reaches /readyz as any statement's does.
   */
  sqliteTransaction?<T>(work: (sqlite: SqliteDatabase.Database) => T): Promise<T>;
  /** Cheap round trip used by /readyz; rejects while the database is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * PostgreSQL only: calls `onNotify` for each NOTIFY on `channel` (delivered when the sending
   * transaction commits), on a connection of its own that reconnects after a loss (and then calls
   * `onNotify` once with no payload: something may have been missed). Returns how to stop.
   */
  listen?(channel: string, onNotify: (payload: string | undefined) => void): () => Promise<void>;
  /**
   * PostgreSQL only: runs a read as a named prepared statement on a pooled connection. Each connection
   * parses it once; after five executions the server plans it once for all (a generic plan) if that
   * plan costs no more than planning anew for each set of parameters would. For hot reads whose
   * planning costs more than their execution (decide(): ADR 0058). Only for a statement whose text
   * never varies (values go in parameters, a list in one array parameter): every distinct text stays
   * prepared on every connection, so past PREPARED_TEXTS of them the rest run unnamed.
   */
  prepared?<R>(query: CompiledQuery<R>): Promise<R[]>;
  /**
   * Whether writes can succeed. After a write failed for lack of space (SQLITE_FULL, PostgreSQL's
   * disk_full) it is not writable until a probe (run at most once a second, here and in the
   * background) finds room again.
   */
  writable?(): Promise<WriteCondition>;
}

export type WriteCondition = { ok: true } | { ok: false; cause: string; since: string };

export interface StoreOptions {
  /** Called for errors on idle pooled connections (e.g. the server went away); never crash on them. */
  onIdleError?: (err: Error) => void;
  poolSize?: number;
  /** Called once when writes start failing for lack of space, and once when they work again. */
  onWriteCondition?: (condition: WriteCondition) => void;
}

export class InvalidDatabaseUrl extends Error {
  constructor(url: string) {
    super(`database url must start with sqlite: or postgres:// (got ${redactUrl(url)})`);
    this.name = 'InvalidDatabaseUrl';
  }
}

export function engineOf(url: string): Engine {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres';
  throw new InvalidDatabaseUrl(url);
}

/** Hides the password in a connection URL so it can be logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

export function openStore(url: string, options: StoreOptions = {}): Store {
  return engineOf(url) === 'sqlite' ? openSqlite(url, options) : openPostgres(url, options);
}

/** Reports a statement's out-of-space error to `health` (and throws it on, unchanged). */
function trackStorageFull(connection: DatabaseConnection, health: WriteHealth): void {
  const execute = connection.executeQuery.bind(connection);
  connection.executeQuery = async (query) => {
    try {
      return await execute(query);
    } catch (err) {
      if (isStorageFull(err)) health.failed(err);
      throw err;
    }
  };
}

function openSqlite(url: string, options: StoreOptions): Store {
  const path = url.slice('sqlite:'.length);
  const file = path === ':memory:' ? ':memory:' : resolve(path);
  if (file !== ':memory:') createPrivately(file);
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  // Test seam (issue 16 point 5): a real SQLITE_FULL without filling a disk. The file may grow by this
  // many pages past its size at open (PRAGMA max_page_count), then every allocation fails as on a
  // full disk. Only the fault tests set it.
  const headroom = Number(process.env.FERRY_TEST_SQLITE_HEADROOM_PAGES ?? '');
  if (Number.isInteger(headroom) && headroom > 0) {
    sqlite.pragma(`max_page_count = ${Number(sqlite.pragma('page_count', { simple: true })) + headroom}`);
  }
  // Kysely prepares every query anew; preparing cost as much as running a grant's statements
  // (client-credential grants, issue 16). Statements are reusable and the one connection runs one query
  // at a time, so each SQL text is prepared once (SQLite re-prepares a statement after a schema change).
  const prepared = new Map<string, SqliteDatabase.Statement>();
  const database = {
    prepare(text: string) {
      let statement = prepared.get(text);
      if (!statement) {
        if (prepared.size >= 1000) prepared.clear(); // e.g. IN lists of every length: forget, don't grow
        statement = sqlite.prepare(text);
        prepared.set(text, statement);
      }
      return statement;
    },
    close() {
      prepared.clear();
      sqlite.close();
    },
  };
  let db: Kysely<Database>;
  const health = new WriteHealth(
    async () => {
      if (file !== ':memory:') {
        const fs = statfsSync(dirname(file));
        if (fs.bavail * fs.bsize < PROBE_BYTES) throw new Error('file system full');
      }
      try {
        await db.transaction().execute(async (trx) => {
          await sql`create table ferry_space_probe (b blob)`.execute(trx);
          await sql`insert into ferry_space_probe values (zeroblob(${PROBE_BYTES}))`.execute(trx);
          throw PROBE_DONE;
        });
      } catch (err) {
        if (err !== PROBE_DONE) throw err;
      }
    },
    (condition) => options.onWriteCondition?.(condition),
  );
  db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect({
      database,
      sqlite,
      // Every statement's SQLITE_FULL reaches the health tracker, whoever ran it.
      onCreateConnection: async (connection) => trackStorageFull(connection, health),
    }),
  });
  const immediate = sqlite.transaction((work: (s: SqliteDatabase.Database) => unknown) => work(sqlite));
  return {
    db,
    engine: 'sqlite',
    sqlite,
    sqliteTransaction: <T>(work: (s: SqliteDatabase.Database) => T) =>
      db.connection().execute(async () => {
        // Inside an open transaction better-sqlite3 would make this a savepoint, and the work would not
        // be durable when it returns (a connection handed back mid-transaction after a failed rollback).
        if (sqlite.inTransaction) throw new Error('sqliteTransaction: a transaction is already open');
        try {
          return immediate.immediate(work) as T;
        } catch (err) {
          if (isStorageFull(err)) health.failed(err);
          throw err;
        }
      }),
    async ping() {
      await sql`select 1`.execute(db);
    },
    writable: () => health.check(),
    async close() {
      health.stop();
      await db.destroy();
    },
  };
}

/**
 * A new database is created 0600 in a directory created 0700 (issue 14 point 3): SQLite gives its -wal
 * and -shm files the mode of the database file (os_unix.c, findCreateFileMode), so those follow. An
 * existing file or directory keeps its mode; start-up and `ferry doctor` report one that is wider.
 */
function createPrivately(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (existsSync(file)) return;
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * Transactions take SQLite's write lock when they begin (BEGIN IMMEDIATE). A deferred transaction that
 * reads and then writes fails with SQLITE_BUSY if another process (e.g. `ferry admin token create`
 * beside a running server) wrote in between; an immediate one waits for busy_timeout instead.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #sqlite: SqliteDatabase.Database;

  /** `sqlite`: the connection itself, to ask whether a transaction is still open */
  constructor(config: SqliteDialectConfig & { sqlite: SqliteDatabase.Database }) {
    super(config);
    this.#sqlite = config.sqlite;
  }

  override createDriver(): Driver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    // SQLite ends a transaction by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM):
    // a ROLLBACK then fails with "cannot rollback - no transaction is active", and Kysely would throw
    // that instead of the error that explains what happened (issue 16 point 5).
    const sqlite = this.#sqlite;
    driver.rollbackTransaction = async (connection: DatabaseConnection) => {
      if (!sqlite.inTransaction) return;
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    };
    return driver;
  }
}

/** Distinct statement texts a PostgreSQL store prepares (per connection); beyond, they run unnamed. */
export const PREPARED_TEXTS = 64;

/** 0A000: "cached plan must not change result type"; 26000: the named statement is gone on the server. */
const isStalePreparedStatement = (err: unknown): boolean => {
  const code = (err as { code?: unknown }).code;
  return code === '0A000' || code === '26000';
};

/** The PostgreSQL driver loads when a postgres:// store is opened, never on SQLite (ADR 0046). */
const pgDriver = onFirstUse<typeof pg>('pg');

function openPostgres(url: string, options: StoreOptions): Store {
  const pool = new pgDriver.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs (e.g. a network partition) fails instead of holding a request forever.
    query_timeout: 15_000,
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  // A connection ended while checked out (pg_terminate_backend, a restart, a failover between two queries
  // of a transaction) emits 'error' on its client; without a listener that is an uncaught exception that
  // ends the process. The query in flight (or the next one) fails on its own and becomes a 503; the pool
  // drops the dead client on release (it is no longer queryable), so the instance recovers by itself.
  pool.on('connect', (client) => {
    client.on('error', (err) => options.onIdleError?.(err));
  });
  // statement text → its name: the text's hash, so a name can never stand for two texts
  const preparedNames = new Map<string, string>();
  let preparedRenames = 0;
  let db: Kysely<Database>;
  // Out of space (53100, e.g. a full tablespace): reported once, named by /readyz, until a probe that
  // needs new pages in the database's own tablespace gets them (a table made and rolled back, so
  // nothing is left behind; its own name, so two instances' probes never wait on each other).
  const health = new WriteHealth(
    async () => {
      const table = sql.id(`ferry_space_probe_${randomBytes(6).toString('hex')}`);
      try {
        await db.transaction().execute(async (trx) => {
          await sql`create table ${table} (b text)`.execute(trx);
          // 1000-byte rows stay inline and uncompressed (TOAST starts at ~2 kB): PROBE_BYTES of pages.
          await sql`insert into ${table} select repeat('x', 1000) from generate_series(1, ${Math.ceil(PROBE_BYTES / 1000)})`.execute(
            trx,
          );
          throw PROBE_DONE;
        });
      } catch (err) {
        if (err !== PROBE_DONE) throw err;
      }
    },
    (condition) => options.onWriteCondition?.(condition),
  );
  db = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool,
      // Every statement's disk_full reaches the health tracker, whoever ran it.
      onCreateConnection: async (connection) => trackStorageFull(connection, health),
    }),
  });
  return {
    db,
    engine: 'postgres',
    async ping() {
      await sql`select 1`.execute(db);
    },
    writable: () => health.check(),
    async close() {
      health.stop();
      await db.destroy();
    },
    async prepared<R>(query: CompiledQuery<R>): Promise<R[]> {
      let name = preparedNames.get(query.sql);
      if (name === undefined && preparedNames.size < PREPARED_TEXTS) {
        name = `ferry_${createHash('sha256').update(query.sql).digest('hex').slice(0, 32)}`;
        preparedNames.set(query.sql, name);
      }
      const values = [...query.parameters];
      try {
        const result = await pool.query<R & pg.QueryResultRow>(
          name ? { name, text: query.sql, values } : { text: query.sql, values },
        );
        return result.rows;
      } catch (err) {
        if (!name || !isStalePreparedStatement(err)) throw err;
        // A migration changed what the statement returns (0A000), or the server forgot it (26000): every
        // connection that prepared the old name keeps failing with it, so the text gets a new name,
        // prepared afresh on each connection as it is next used.
        const renamed = `${name.slice(0, 38)}_${++preparedRenames}`;
        preparedNames.set(query.sql, renamed);
        const result = await pool.query<R & pg.QueryResultRow>({ name: renamed, text: query.sql, values });
        return result.rows;
      }
    },
    listen(channel, onNotify) {
      let stopped = false;
      let client: pg.Client | undefined;
      let retry: NodeJS.Timeout | undefined;
      const connect = async (delayMs: number) => {
        if (stopped) return;
        const c = new pgDriver.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
        client = c;
        let lost = false;
        const reconnect = (err?: Error) => {
          if (lost || stopped) return;
          lost = true;
          if (err) options.onIdleError?.(err);
          c.end().catch(() => {});
          retry = setTimeout(() => void connect(Math.min(delayMs * 2, 5_000)), delayMs);
          retry.unref();
        };
        c.on('error', reconnect);
        c.on('end', () => reconnect());
        c.on('notification', (n) => {
          if (n.channel === channel) onNotify(n.payload);
        });
        try {
          await c.connect();
          await c.query(`listen ${pgDriver.escapeIdentifier(channel)}`);
          if (delayMs > 100) onNotify(undefined);
        } catch (err) {
          reconnect(err as Error);
        }
      };
      void connect(100);
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await client?.end().catch(() => {});
      };
    },
  };
}
