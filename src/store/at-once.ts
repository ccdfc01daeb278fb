import type SqliteDatabase from 'better-sqlite3';
import type { Store } from './open.js';

/**
 * SQLite statements run at once, synchronously, on the store's one connection while no transaction is
 * open on it: nothing else can run on the connection until they return, so they see (and leave)
 * exactly what the same statements through `db` would, without the query builder's promises and its
 * queue for the connection. Every commit so far, this process's and other processes' (WAL), is seen;
 * nothing uncommitted. Each returns undefined when it cannot (PostgreSQL, a closed store, a transaction
 * open on the connection, whose uncommitted writes would show or be joined); the caller goes through
 * `db` then.
 */

interface Write {
  text: string;
  parameters: unknown[];
}

const transactions = new WeakMap<
  SqliteDatabase.Database,
  SqliteDatabase.Transaction<(writes: Write[]) => void>
>();
const statements = new WeakMap<SqliteDatabase.Database, Map<string, SqliteDatabase.Statement>>();

function idle(store: Store): SqliteDatabase.Database | undefined {
  const sqlite = store.sqlite;
  return sqlite?.open && !sqlite.inTransaction ? sqlite : undefined;
}

function prepared(sqlite: SqliteDatabase.Database, text: string): SqliteDatabase.Statement {
  let byText = statements.get(sqlite);
  if (!byText) {
    byText = new Map();
    statements.set(sqlite, byText);
  }
  let statement = byText.get(text);
  if (!statement) {
    if (byText.size >= 100) byText.clear(); // texts are few and fixed; never grow without bound
    statement = sqlite.prepare(text);
    byText.set(text, statement);
  }
  return statement;
}

/**
 * A one-row read (decide() reads the policy generation so for every SSH certificate: ~5 µs of CPU
 * instead of ~30 through `db`).
 */
export function readNowIfIdle<Row>(store: Store, text: string): { row: Row | undefined } | undefined {
  const sqlite = idle(store);
  if (!sqlite) return undefined;
  const statement = prepared(sqlite, text);
  if (!statement.reader) throw new Error('readNowIfIdle runs reads only');
  return { row: statement.get() as Row | undefined };
}

/**
 * Writes in one `begin immediate` transaction, committed before it returns true. False when it cannot
 * run now, or when it failed and was rolled back: the caller then writes through `db`, which reports
 * the failure where every write's is tracked (e.g. a full disk to the write-health probe).
 */
export function writeNowIfIdle(store: Store, writes: Write[]): boolean {
  const sqlite = idle(store);
  if (!sqlite) return false;
  let run = transactions.get(sqlite);
  if (!run) {
    run = sqlite.transaction((ws: Write[]) => {
      for (const w of ws) prepared(sqlite, w.text).run(w.parameters);
    });
    transactions.set(sqlite, run);
  }
  try {
    run.immediate(writes);
    return true;
  } catch {
    return false;
  }
}
