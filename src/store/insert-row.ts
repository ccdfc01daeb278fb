import { CompiledQuery, type Insertable, type Kysely } from 'kysely';
import type { Database } from './schema.js';

type Table = keyof Database & string;

/** A compiled insert of one row: its SQL and the columns whose values are its parameters, in order. */
interface Shape {
  sql: string;
  columns: string[];
}

/** Per dialect (its adapter's class: the SQL differs between SQLite and PostgreSQL), per table and columns. */
const shapes = new WeakMap<object, Map<string, Shape | null>>();

/** Values bound as they are (anything else, e.g. an `sql` expression, goes through the query builder). */
const plain = (v: unknown): boolean =>
  v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date;

/**
 * `trx.insertInto(table).values(row)` (with `returning(returning)` if given), executed, without building
 * and compiling the query on every call: the first row of each table and set of columns is compiled by
 * Kysely, and later rows reuse that SQL with their own values. For the few inserts that run for every
 * write of a hot path (a SCIM create's user, outbox event, audit event and lane row), where building
 * the four queries cost ~14% of the server's CPU (issue 16). The same statement reaches the same
 * connection (and so SQLite's prepared-statement cache and the SQLITE_FULL tracking, see open.ts).
 */
export async function insertRow<T extends Table, R extends string = never>(
  trx: Kysely<Database>,
  table: T,
  row: Insertable<Database[T]>,
  returning?: readonly R[],
): Promise<Array<Record<R, unknown>>> {
  const values = row as Record<string, unknown>;
  const columns = Object.keys(values).filter((c) => values[c] !== undefined);
  const adapter = trx.getExecutor().adapter.constructor;
  let byKey = shapes.get(adapter);
  if (!byKey) {
    byKey = new Map();
    shapes.set(adapter, byKey);
  }
  const key = `${table}|${columns.join(',')}|${returning?.join(',') ?? ''}`;
  const shape = byKey.get(key);
  if (shape && columns.every((c) => plain(values[c]))) {
    const result = await trx.executeQuery<Record<R, unknown>>(
      CompiledQuery.raw(
        shape.sql,
        shape.columns.map((c) => values[c]),
      ),
    );
    return result.rows;
  }
  // First of its shape (or one with a non-plain value): through the query builder, and remembered when
  // its parameters are exactly the row's values in column order (null: never reuse this shape).
  // biome-ignore lint/suspicious/noExplicitAny: one builder for any table; the row is typed by the signature
  const insert = (trx as Kysely<any>).insertInto(table).values(values);
  const query = returning && returning.length > 0 ? insert.returning([...returning] as string[]) : insert;
  const compiled = query.compile();
  if (shape === undefined) {
    const reusable =
      columns.every((c) => plain(values[c])) &&
      compiled.parameters.length === columns.length &&
      compiled.parameters.every((p, i) => p === values[columns[i]!]);
    byKey.set(key, reusable ? { sql: compiled.sql, columns } : null);
  }
  const result = await trx.executeQuery<Record<R, unknown>>(compiled);
  return result.rows;
}
