import { type Kysely, sql } from 'kysely';
import type { Store } from './open.js';
import type { Database } from './schema.js';

/** A unit of work that would otherwise be a transaction of its own. */
export type Work<T> = (trx: Kysely<Database>) => Promise<T>;

/** What became of one unit of work run with others in one transaction. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs units of work one after the other in ONE transaction, each inside a savepoint: a unit that
 * fails is rolled back to its savepoint and reported, the others go on and commit together. If the
 * transaction itself is lost (the commit fails, SQLite ends it on SQLITE_FULL, PostgreSQL drops the
 * connection) nothing was written and every unit reports that error. `after(i, outcome)` sees each
 * outcome as it happens (still inside the transaction), e.g. to stop early; returning false stops.
 * The result has one outcome per unit attempted (all of them unless `after` stopped early).
 */
export async function runTogether<T>(
  db: Kysely<Database>,
  units: Array<Work<T>>,
  after?: (i: number, outcome: Outcome<T>) => boolean,
): Promise<Array<Outcome<T>>> {
  const outcomes: Array<Outcome<T>> = [];
  let attempted = 0;
  try {
    await db.transaction().execute(async (trx) => {
      for (let i = 0; i < units.length; i++) {
        attempted = i + 1;
        // A lone unit needs no savepoint: if it fails, the whole (one-unit) transaction rolls back.
        const alone = units.length === 1;
        if (!alone) await sql`savepoint ferry_unit`.execute(trx);
        let outcome: Outcome<T>;
        try {
          outcome = { ok: true, value: await units[i]!(trx) };
          if (!alone) await sql`release ferry_unit`.execute(trx);
        } catch (error) {
          if (alone) throw error;
          try {
            await sql`rollback to ferry_unit`.execute(trx);
            await sql`release ferry_unit`.execute(trx);
          } catch {
            // The transaction is already gone (SQLITE_FULL, a dropped connection): the unit's own
            // error says why, and it loses the whole batch.
            throw error;
          }
          outcome = { ok: false, error };
        }
        outcomes.push(outcome);
        if (after && !after(i, outcome)) break;
      }
    });
  } catch (error) {
    // Nothing of this transaction was committed: every unit that seemed done failed with it.
    return units.slice(0, attempted).map((_, i) => {
      const own = outcomes[i];
      return own && !own.ok ? own : { ok: false, error };
    });
  }
  return outcomes;
}

interface Pending {
  work: Work<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** At most this many units share a commit (bounds how long one transaction holds SQLite's write lock). */
const MAX_UNITS = 64;

/**
 * Group commit for SQLite (ADR 0044). SQLite has one writer; every commit writes each page it dirtied
 * to the WAL again (users, its indexes, outbox, audit…), so eight concurrent creates cost eight times
 * those pages. Here the units that arrive while a transaction runs wait for it and then share the next
 * one: each in its own savepoint (a failing unit does not fail the others), each answered only after
 * the commit that holds it.
 */
export class GroupCommit {
  #queue: Pending[] = [];
  #running = false;

  constructor(private readonly db: Kysely<Database>) {}

  run<T>(work: Work<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#running) {
        this.#running = true;
        // Started on the next turn, so requests that arrived in the same I/O phase share the first batch.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_UNITS);
        const outcomes = await runTogether(
          this.db,
          batch.map((p) => p.work),
        );
        batch.forEach((p, i) => {
          const o = outcomes[i];
          if (o?.ok) p.resolve(o.value);
          else p.reject(o ? o.error : lost(outcomes));
        });
      }
    } finally {
      this.#running = false;
    }
  }
}

/** The error that lost a transaction, for units it never reached (every outcome then carries it). */
const lost = (outcomes: Array<Outcome<unknown>>): unknown => {
  const last = outcomes[outcomes.length - 1];
  return last && !last.ok ? last.error : new Error('the shared transaction ended before this unit ran');
};

const perStore = new WeakMap<Store, GroupCommit>();

/**
 * One transaction for `work`, shared with other units of work queued at the same time on SQLite (see
 * GroupCommit); on PostgreSQL, whose writers commit in parallel, a transaction of its own.
 */
export function transactTogether<T>(store: Store, work: Work<T>): Promise<T> {
  if (store.engine !== 'sqlite') return store.db.transaction().execute(work);
  let gc = perStore.get(store);
  if (!gc) {
    gc = new GroupCommit(store.db);
    perStore.set(store, gc);
  }
  return gc.run(work);
}
