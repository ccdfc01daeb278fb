import { CompiledQuery } from 'kysely';
import { type IssuedInput, issuedRow } from '../audit/issued.js';
import { type AuditInput, auditAppended, auditRow } from '../audit/ledger.js';
import { TimeOrderedIds } from '../audit/time-ordered-ids.js';
import type { Clock } from '../clock.js';
import { writeNowIfIdle } from '../store/at-once.js';
import { isDatabaseUnavailable } from '../store/errors.js';
import type { Store } from '../store/open.js';

/** What one certificate leaves behind: its issued-ledger row and its audit event. */
export interface IssuanceRecord {
  issued: IssuedInput;
  audit: AuditInput;
}

/** Certificates written in one transaction at most (two multi-row inserts, well under any parameter limit). */
export const MAX_BATCH = 64;

interface Pending {
  record: IssuanceRecord;
  done: () => void;
  failed: (err: unknown) => void;
}

const ISSUED_COLUMNS = [
  'id',
  'kind',
  'user_id',
  'subject',
  'target',
  'audience',
  'external_id',
  'details',
  'issued_at',
  'expires_at',
  'revoked_at',
] as const;
const AUDIT_COLUMNS = [
  'id',
  'time',
  'type',
  'outcome',
  'actor',
  'subject',
  'ip',
  'request_id',
  'data',
  'prev_hash',
  'hash',
  'leaf_hash',
] as const;

/**
 * Group commit of issued certificates (issue 16). A certificate is handed out only once its ledger row
 * and audit event are committed; `write` resolves then. Records wait one turn of the event loop (no
 * timer: only what is already running gets to join), then go in one transaction, one insert into each
 * table, one commit (one fsync on PostgreSQL) for all of them; those arriving while it is written go
 * together in the next. When a shared transaction fails, each of its records is tried again on its own,
 * so one bad record fails only its own issuance.
 */
export class IssuanceCommits {
  #queue: Pending[] = [];
  #writing = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  write(record: IssuanceRecord): Promise<void> {
    return new Promise((done, failed) => {
      this.#queue.push({ record, done, failed });
      if (!this.#writing) {
        this.#writing = true;
        // Issuances already under way (decided and signing) join this transaction instead of the next.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#commit(batch.map((p) => p.record));
          for (const p of batch) p.done();
        } catch (err) {
          // An unavailable database fails them all at once: retrying each alone would keep the last
          // waiting a pool timeout per record before it. Else one bad record fails only its own.
          if (batch.length === 1 || isDatabaseUnavailable(err)) for (const p of batch) p.failed(err);
          else
            for (const p of batch) await this.#commit([p.record]).then(p.done, (e: unknown) => p.failed(e));
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #commit(records: IssuanceRecord[]): Promise<void> {
    // SQL text by hand, one per batch size (prepared once on SQLite): building and compiling the two
    // inserts through the query builder cost as much as running them.
    const issued: unknown[] = [];
    const events: unknown[] = [];
    const ms = this.clock.now().getTime();
    for (const r of records) {
      const row = issuedRow(this.clock, r.issued, this.#ids.next(ms));
      for (const c of ISSUED_COLUMNS) issued.push(row[c]);
      const event = auditRow(this.clock, r.audit, this.#ids.next(ms)).row as Record<
        (typeof AUDIT_COLUMNS)[number],
        unknown
      >;
      for (const c of AUDIT_COLUMNS) events.push(event[c] ?? null);
    }
    const [insertIssued, insertEvents] = this.#statements(records.length);
    // SQLite with its connection idle: the whole transaction at once (store/at-once.ts)
    const written = writeNowIfIdle(this.store, [
      { text: insertIssued, parameters: issued },
      { text: insertEvents, parameters: events },
    ]);
    if (!written)
      await this.store.db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw(insertIssued, issued));
        await trx.executeQuery(CompiledQuery.raw(insertEvents, events));
      });
    auditAppended();
  }

  /** The two inserts' SQL for `n` records, in the engine's placeholder style. */
  #statements(n: number): [string, string] {
    let sql = this.#sql.get(n);
    if (!sql) {
      const postgres = this.store.engine === 'postgres';
      let p = 0;
      const values = (columns: number) =>
        Array.from(
          { length: n },
          () => `(${Array.from({ length: columns }, () => (postgres ? `$${++p}` : '?')).join(', ')})`,
        ).join(', ');
      const insert = (table: string, columns: readonly string[]) => {
        p = 0;
        return `insert into "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) values ${values(columns.length)}`;
      };
      sql = [insert('issued_credentials', ISSUED_COLUMNS), insert('audit_events', AUDIT_COLUMNS)];
      this.#sql.set(n, sql);
    }
    return sql;
  }

  readonly #sql = new Map<number, [string, string]>();
  readonly #ids = new TimeOrderedIds();
}
