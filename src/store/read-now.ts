import type SqliteDatabase from 'better-sqlite3';
import type { Store } from './open.js';

const statements = new WeakMap<SqliteDatabase.Database, Map<string, SqliteDatabase.Statement>>();

/**
 * SQLite: runs a one-row read at once on the store's one connection while no transaction is open on
 * it. It then sees exactly what the same read through `db` would: every commit so far, this process's
 * and other processes' (WAL), and nothing uncommitted. It skips the query builder's promises and its
 * queue for the connection (decide() reads the policy generation so for every SSH certificate: ~5 µs
 * of CPU instead of ~30). Undefined when it cannot: PostgreSQL, a closed store, or a transaction open
 * on the connection (its uncommitted writes would show); the caller reads through `db` then.
 */
export function readNowIfIdle<Row>(store: Store, text: string): { row: Row | undefined } | undefined {
  const sqlite = store.sqlite;
  if (!sqlite?.open || sqlite.inTransaction) return undefined;
  let byText = statements.get(sqlite);
  if (!byText) {
    byText = new Map();
    statements.set(sqlite, byText);
  }
  let statement = byText.get(text);
  if (!statement) {
    statement = sqlite.prepare(text);
    if (!statement.reader) throw new Error('readNowIfIdle runs reads only');
    byText.set(text, statement);
  }
  return { row: statement.get() as Row | undefined };
}
