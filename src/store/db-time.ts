import { type RawBuilder, sql } from 'kysely';
import type { Engine } from './open.js';

/**
 * The database's own time, `offsetMs` from now, as the ISO-8601 text (UTC, milliseconds) Ferry's time
 * columns hold, so it compares with them as text. For what instances on several hosts compare with
 * each other: lease terms and heartbeats (ADR 0062). A time written by one host's clock and judged by
 * another's let a clock running minutes ahead take a live holder's lease, or take a live instance for
 * dead; the database is the one clock they all share. Domain time (expiries, audit times) stays on
 * the injected Clock.
 *
 * PostgreSQL: statement_timestamp() (one value through the statement, also inside a transaction).
 * SQLite: 'now' (one value through a statement); the file has one host, but the rule is the same.
 */
export function dbTime(engine: Engine, offsetMs = 0): RawBuilder<string> {
  if (!Number.isInteger(offsetMs))
    throw new TypeError(`offsetMs must be whole milliseconds, not ${offsetMs}`);
  if (engine === 'postgres')
    return sql<string>`to_char((statement_timestamp() + ${sql.lit(offsetMs)} * interval '1 millisecond') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  return sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`${(offsetMs / 1000).toFixed(3)} seconds`})`;
}
