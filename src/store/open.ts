import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type SqliteDriver,
  sql,
} from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export type Engine = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly engine: Engine;
  /**
   * SQLite only: the one better-sqlite3 connection under `db`, for hot paths that reuse a prepared
   * statement (CloudTrail ingestion). Use it only inside a `db` transaction (which holds the connection).
   */
  readonly sqlite?: SqliteDatabase.Database;
  /** Cheap round trip used by /readyz; rejects while the database is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * PostgreSQL only: calls `onNotify` for each NOTIFY on `channel` (delivered when the sending
   * transaction commits), on a connection of its own that reconnects after a loss (and then calls
   * `onNotify` once with no payload: something may have been missed). Returns how to stop.
   */
  listen?(channel: string, onNotify: (payload: string | undefined) => void): () => Promise<void>;
}

export interface StoreOptions {
  /** Called for errors on idle pooled connections (e.g. the server went away); never crash on them. */
  onIdleError?: (err: Error) => void;
  poolSize?: number;
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
  return engineOf(url) === 'sqlite' ? openSqlite(url) : openPostgres(url, options);
}

function openSqlite(url: string): Store {
  const path = url.slice('sqlite:'.length);
  const file = path === ':memory:' ? ':memory:' : resolve(path);
  if (file !== ':memory:') createPrivately(file);
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  return {
    db,
    engine: 'sqlite',
    sqlite,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
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
  override createDriver(): Driver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

function openPostgres(url: string, options: StoreOptions): Store {
  const pool = new pg.Pool({
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
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    engine: 'postgres',
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
    listen(channel, onNotify) {
      let stopped = false;
      let client: pg.Client | undefined;
      let retry: NodeJS.Timeout | undefined;
      const connect = async (delayMs: number) => {
        if (stopped) return;
        const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
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
          await c.query(`listen ${pg.escapeIdentifier(channel)}`);
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
