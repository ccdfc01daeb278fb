import { addMs, iso } from '../clock.js';
import type { AuditArchiveStatusTable } from '../store/schema.js';
import { type ArchiveDeps, type ArchiveResult, archivedBelow, archiveOnSchedule } from './archive.js';

/** How the scheduled archive goes, for /readyz and /metrics (the same shape as the head export's). */
export interface ArchiveStatus {
  /** e.g. file:/srv/ferry-archive, s3://bucket/prefix/ */
  destination: string;
  /** leaves below this are archived and pruned from the database */
  archivedBelow: number;
  /** the last run that archived a segment */
  archivedAt: string | null;
  /** failures since the last successful run */
  failures: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

export interface ArchiveRetention {
  /** archive events older than this many milliseconds */
  archiveAfter: number;
  maxEventsPerSegment: number;
  /** how often to look for events to archive (a failure is retried sooner, by its backoff) */
  intervalMs: number;
}

/** First retry after 5 s, doubling to an hour: the head export's backoff. */
const backoffMs = (attempts: number) => Math.min(3_600_000, 5_000 * 2 ** Math.min(attempts - 1, 10));

/**
 * The worker's archive runs: a destination that fails (a directory that is not writable, an S3 that
 * does not answer) is retried with exponential backoff, shared by every instance through its status
 * row, and reported by `status()` in /readyz and /metrics. It runs beside the worker's tick, never in a
 * request: events are only deleted after their segment is written, so a failing destination leaves them
 * in the database, where sign-ins and every other write go on as before.
 */
export class ArchiveScheduler {
  constructor(
    private readonly deps: ArchiveDeps,
    private readonly retention: ArchiveRetention,
  ) {}

  /** when this instance looks again (in memory; the backoff itself is in the shared status row) */
  #nextRunAt = 0;

  get destination(): string {
    return this.deps.archive.name;
  }

  /** The worker's call on every tick: runs when the interval, or a failure's backoff, has passed. */
  async tick(log?: { warn(obj: object, msg: string): void }): Promise<ArchiveResult | null> {
    if (this.deps.clock.now().getTime() < this.#nextRunAt) return null;
    try {
      return await this.runDue(log);
    } catch (err) {
      // the database is away: the next interval tries again
      log?.warn({ err }, 'audit archive status could not be read or written; retrying');
      this.#nextRunAt = this.deps.clock.now().getTime() + this.retention.intervalMs;
      return null;
    }
  }

  /**
   * Archives what is due unless the destination is backing off. Null when nothing ran (backing off,
   * or another instance holds the archive lease). A failure is recorded and logged once per attempt,
   * never thrown.
   */
  async runDue(log?: { warn(obj: object, msg: string): void }): Promise<ArchiveResult | null> {
    const { clock, archive } = this.deps;
    const state = await this.#row();
    if (state?.next_attempt_at && state.next_attempt_at > iso(clock.now())) {
      this.#nextRunAt = Date.parse(state.next_attempt_at);
      return null;
    }
    this.#nextRunAt = clock.now().getTime() + this.retention.intervalMs;
    let result: ArchiveResult | null;
    try {
      result = await archiveOnSchedule(this.deps, this.retention);
    } catch (err) {
      const attempts = (state?.attempts ?? 0) + 1;
      const nextAttempt = addMs(clock.now(), backoffMs(attempts));
      this.#nextRunAt = Math.min(this.#nextRunAt, nextAttempt.getTime());
      log?.warn(
        { err, destination: archive.name, attempts },
        'audit archive failed; will retry with backoff',
      );
      await this.#save({
        archived_at: state?.archived_at ?? null,
        checked_at: state?.checked_at ?? null,
        attempts,
        next_attempt_at: iso(nextAttempt),
        last_error: (err as Error).message.slice(0, 500),
      });
      return null;
    }
    if (result === null) return null;
    const now = iso(clock.now());
    await this.#save({
      archived_at: result.segments.length > 0 ? now : (state?.archived_at ?? null),
      checked_at: now,
      attempts: 0,
      next_attempt_at: null,
      last_error: null,
    });
    return result;
  }

  async status(): Promise<ArchiveStatus> {
    const state = await this.#row();
    return {
      destination: this.deps.archive.name,
      archivedBelow: await archivedBelow(this.deps.store.db),
      archivedAt: state?.archived_at ?? null,
      failures: state?.attempts ?? 0,
      nextAttemptAt: state?.next_attempt_at ?? null,
      lastError: state?.last_error ?? null,
    };
  }

  #row() {
    return this.deps.store.db
      .selectFrom('audit_archive_status')
      .selectAll()
      .where('destination', '=', this.deps.archive.name)
      .executeTakeFirst();
  }

  async #save(values: Omit<AuditArchiveStatusTable, 'destination'>): Promise<void> {
    await this.deps.store.db
      .insertInto('audit_archive_status')
      .values({ destination: this.deps.archive.name, ...values })
      .onConflict((oc) => oc.column('destination').doUpdateSet(values))
      .execute();
  }
}
