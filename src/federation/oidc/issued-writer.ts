import type SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, type Insertable } from 'kysely';
import { type AuditInput, auditAppended, auditRow } from '../../audit/ledger.js';
import { TimeOrderedIds } from '../../audit/time-ordered-ids.js';
import type { Clock } from '../../clock.js';
import { isDatabaseUnavailable } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import type { AuditEventsTable, OidcArtifactsTable } from '../../store/schema.js';

type ArtifactRow = Insertable<OidcArtifactsTable>;
type AuditRow = Insertable<AuditEventsTable>;

const ARTIFACT_COLUMNS = [
  'model',
  'id',
  'payload',
  'grant_id',
  'user_code',
  'uid',
  'account_id',
  'expires_at',
  'consumed_at',
] as const;
/** What an upsert of an existing (model, id) replaces: everything but the key and consumed_at. */
const REPLACED = ['payload', 'grant_id', 'user_code', 'uid', 'account_id', 'expires_at'] as const;

/** Requests whose writes share one statement at most; bounds a statement's parameters (~1,500). */
const MAX_BATCH = 50;

interface Entry {
  artifacts: ArtifactRow[];
  audit: AuditRow | null;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for the token endpoint (issue 16, decision 0043). Each response waits until its token
 * rows and their `oidc.token.issued` event are committed, as before; but the writes of requests that
 * arrive in the same event-loop turn, or while every commit slot is busy, go together: on PostgreSQL one
 * multi-row statement (a data-modifying CTE: the token upsert, then the events), with two such commits
 * in flight at once (decision 0056); on SQLite one synchronous transaction of two statements. Nothing waits for a timer (a write starts at the end of the turn it
 * was asked in, setImmediate); under load one commit (one WAL flush, one round trip) carries many grants. A token row exists exactly when its
 * record does, batch or not. The SQL is built once per batch shape, not by Kysely per request.
 */
export class IssuedWriter {
  readonly #pending: Entry[] = [];
  readonly #sql = new Map<string, { artifacts: string | null; audit: string | null; both: string | null }>();
  readonly #sqlitePrepared = new Map<string, SqliteDatabase.Statement>();
  #auditColumns: string[] | undefined;
  readonly #ids = new TimeOrderedIds();
  /** commits in flight */
  #inFlight = 0;
  /** a batch is set to start at the end of this turn */
  #scheduled = false;
  /**
   * Commits in flight at once. SQLite has one connection and one writer: one. PostgreSQL: two, on
   * separate pool connections, so a batch made while one commits does not wait for it (the process was
   * ~28% idle waiting for commits with one).
   */
  readonly #maxInFlight: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.#maxInFlight = store.engine === 'postgres' ? 2 : 1;
  }

  /**
   * Writes a request's token rows and, when given, the event that records their issuance; resolves
   * once committed. A batch that fails for another reason than an unavailable database is retried one
   * request at a time, so one request's bad row never costs the others their tokens.
   */
  write(artifacts: ArtifactRow[], audit: AuditInput | null): Promise<void> {
    if (artifacts.length === 0 && !audit) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({
        artifacts,
        // Time-ordered ids (0052): a batch's events land on the last page of the id index.
        audit: audit ? auditRow(this.clock, audit, this.#ids.next(this.clock.now().getTime())).row : null,
        resolve,
        reject,
      });
      if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
      this.#scheduled = true;
      // After this turn's I/O callbacks: requests that reached this point in the same turn share the
      // commit (on SQLite nothing else is ever in flight, so this is the only way they can).
      setImmediate(() => {
        this.#scheduled = false;
        this.#start();
      });
    });
  }

  /** Starts a batch of what is pending while a commit slot is free. */
  #start(): void {
    while (this.#pending.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      this.#inFlight++;
      void this.#commit(batch).finally(() => {
        this.#inFlight--;
        // Writes asked while every slot was busy go next, without waiting for another turn.
        if (!this.#scheduled) this.#start();
      });
    }
  }

  async #commit(batch: Entry[]): Promise<void> {
    try {
      await this.#execute(batch);
      settle(batch);
    } catch (err) {
      if (batch.length === 1 || isDatabaseUnavailable(err)) {
        for (const e of batch) e.reject(err);
        return;
      }
      for (const e of batch) {
        try {
          await this.#execute([e]);
          settle([e]);
        } catch (alone) {
          e.reject(alone);
        }
      }
    }
  }

  async #execute(batch: Entry[]): Promise<void> {
    const artifacts = batch.flatMap((e) => e.artifacts);
    const audits = batch.flatMap((e) => (e.audit ? [e.audit] : []));
    const text = this.#statements(artifacts.length, audits.length);
    const artifactParams = artifacts.flatMap((r) => ARTIFACT_COLUMNS.map((c) => r[c] ?? null));
    const columns = this.#auditColumns ?? [];
    const auditParams = audits.flatMap((r) => columns.map((c) => (r as Record<string, unknown>)[c] ?? null));
    const sqliteTransaction = this.store.sqliteTransaction;
    if (sqliteTransaction) {
      // SQLite: both statements in one synchronous IMMEDIATE transaction (no await between them).
      await sqliteTransaction((db) => {
        if (text.artifacts !== null) this.#prepare(db, text.artifacts).run(artifactParams);
        if (text.audit !== null) this.#prepare(db, text.audit).run(auditParams);
      });
      return;
    }
    if (text.both !== null) {
      await this.store.db.executeQuery(CompiledQuery.raw(text.both, [...artifactParams, ...auditParams]));
    } else if (this.store.engine === 'sqlite' && text.artifacts !== null && text.audit !== null) {
      const [a, e] = [text.artifacts, text.audit];
      await this.store.db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw(a, artifactParams));
        await trx.executeQuery(CompiledQuery.raw(e, auditParams));
      });
    } else if (text.artifacts !== null) {
      await this.store.db.executeQuery(CompiledQuery.raw(text.artifacts, artifactParams));
    } else if (text.audit !== null) {
      await this.store.db.executeQuery(CompiledQuery.raw(text.audit, auditParams));
    }
  }

  /** SQLite: the prepared statement of a batch's SQL text (prepared once per text and kept). */
  #prepare(db: SqliteDatabase.Database, text: string): SqliteDatabase.Statement {
    let statement = this.#sqlitePrepared.get(text);
    if (!statement) {
      if (this.#sqlitePrepared.size > 500) this.#sqlitePrepared.clear();
      statement = db.prepare(text);
      this.#sqlitePrepared.set(text, statement);
    }
    return statement;
  }

  /** The statements for a batch of this shape (built once per shape and kept). */
  #statements(artifacts: number, audits: number) {
    const key = `${artifacts}:${audits}`;
    let text = this.#sql.get(key);
    if (!text) {
      const pg = this.store.engine === 'postgres';
      let n = 0;
      const values = (rows: number, cols: number) =>
        Array.from(
          { length: rows },
          () => `(${Array.from({ length: cols }, () => (pg ? `$${++n}` : '?')).join(', ')})`,
        ).join(', ');
      const quote = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(', ');
      const upsert =
        artifacts === 0
          ? null
          : `insert into "oidc_artifacts" (${quote(ARTIFACT_COLUMNS)}) values ${values(artifacts, ARTIFACT_COLUMNS.length)}` +
            ` on conflict ("model", "id") do update set ${REPLACED.map((c) => `"${c}" = excluded."${c}"`).join(', ')}`;
      if (audits > 0 && !this.#auditColumns) this.#auditColumns = auditColumns();
      const columns = this.#auditColumns ?? [];
      const insertAudit =
        audits === 0
          ? null
          : `insert into "audit_events" (${quote(columns)}) values ${values(audits, columns.length)}`;
      text = {
        artifacts: upsert,
        audit: insertAudit,
        // PostgreSQL: one statement, so one round trip and one commit; the CTE runs even unreferenced.
        both: pg && upsert && insertAudit ? `with "issued" as (${upsert}) ${insertAudit}` : null,
      };
      if (this.#sql.size > 500) this.#sql.clear();
      this.#sql.set(key, text);
    }
    return text;
  }
}

/** The columns auditRow fills, in its order (every row it makes has the same keys). */
function auditColumns(): string[] {
  const clock = { now: () => new Date(0) };
  return Object.keys(auditRow(clock, { type: 'x', outcome: 'success', actor: { type: 'anonymous' } }).row);
}

function settle(batch: Entry[]): void {
  if (batch.some((e) => e.audit)) auditAppended();
  for (const e of batch) e.resolve();
}
