import { type IssuedInput, issuedRow } from '../audit/issued.js';
import { type AuditInput, auditAppended, auditRow } from '../audit/ledger.js';
import type { Clock } from '../clock.js';
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

/**
 * Group commit of issued certificates (issue 16). A certificate is handed out only once its ledger row
 * and audit event are committed; `write` resolves then. While one transaction is being written, the
 * records of other issuances arriving meanwhile wait and then go together in the next one: one
 * transaction, one insert into each table, one commit (one fsync on PostgreSQL) for all of them. A
 * lone issuance is written at once, so nobody waits for company. When a shared transaction fails,
 * each of its records is tried again on its own, so one bad record fails only its own issuance.
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
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
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
    const issued = records.map((r) => issuedRow(this.clock, r.issued));
    const events = records.map((r) => auditRow(this.clock, r.audit).row);
    await this.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('issued_credentials').values(issued).execute();
      await trx.insertInto('audit_events').values(events).execute();
    });
    auditAppended();
  }
}
