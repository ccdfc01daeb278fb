import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Statement } from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { systemActor } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { s3Sdk } from '../aws/sdk.js';
import { type Clock, iso } from '../clock.js';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import { isUniqueViolation } from '../store/errors.js';
import { LeaseBusy, withLease } from '../store/leases.js';
import type { Store } from '../store/open.js';
import type { CloudTrailRecordsTable, CloudTrailSourcesTable } from '../store/schema.js';
import { MalformedLogFile, readLogFile } from './cloudtrail-file.js';
import { Correlator, type ParsedRecord, parseRecord } from './correlate.js';
import type { ActivityObserver, AttributedRecord } from './record.js';

/** An S3 place CloudTrail delivers to: `s3://bucket/prefix` followed by AWSLogs/. */
export interface CloudTrailSource {
  id: string;
  bucket: string;
  prefix: string;
  region: string | null;
  createdAt: string;
  lastSyncAt: string | null;
  lastError: string | null;
  /** account/region folders read so far, each with the last key read */
  positions: Array<{ folder: string; afterKey: string }>;
}

/** A log file that was not read whole; ingestion went on past it. */
export interface SkippedFile {
  bucket: string;
  key: string;
  reason: string;
  /** records read whole before the fault (kept) */
  recordsKept: number;
}

export interface SourceSyncResult {
  sourceId: string;
  bucket: string;
  prefix: string;
  files: number;
  /** records read from the files */
  records: number;
  /** records stored now (the others were there already: the same event delivered twice) */
  stored: number;
  duplicates: number;
  /** records of no usable shape (no eventID, eventTime, eventName or eventSource; not an object) */
  rejected: number;
  /** records whose eventTime is ahead of Ferry's clock by more than the allowed skew */
  aheadOfClock: number;
  skipped: SkippedFile[];
  /** why this source stopped early (S3 unreachable, access denied); its position is kept */
  error: string | null;
  /** another instance was syncing this source */
  busy?: boolean;
}

export interface SyncResult {
  sources: SourceSyncResult[];
  stored: number;
  skipped: SkippedFile[];
  /** records removed by retention in this run */
  pruned: number;
}

/** Where ingestion tells operators about skipped files and stopped sources (the caller's logger). */
export interface IngestLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}
const quiet: IngestLog = { warn() {} };

export interface CloudTrailDeps {
  store: Store;
  clock: Clock;
  /** an S3 client for a source (its region, else the configured one) */
  s3: (source: { region: string | null }) => S3Client;
  /** called with every stored batch, each record once (detections register here) */
  activityObservers: ActivityObserver[];
  observerLog?: IngestLog;
  /**
   * This process's instance id (the one its worker heartbeats under): a source held by an instance
   * whose heartbeat stopped is taken over seconds later, not after the rest of the lease term.
   */
  instanceId?: string;
}

export interface CloudTrailOptions {
  /** records per stored batch (and per observer call) */
  batchSize: number;
  /** records with an eventTime older than this are pruned (ms) */
  retentionMs: number;
  /** top-level record fields kept in `raw`; null keeps the whole record (as read) */
  keepFields: string[] | null;
  /** allowed difference between AWS's and Ferry's clocks (correlation windows, `aheadOfClock`) */
  clockSkewMs: number;
  /** how long one instance holds a source while syncing it unrenewed (renewed every third of it) */
  leaseMs: number;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const ACCOUNT_FOLDER = /^\d{12}$/;
const ORG_FOLDER = /^o-[a-z0-9]{10,32}$/;
/** AWS's log file name: <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<random>.json.gz */
const LOG_FILE = /\/\d{12}_CloudTrail_[a-z0-9-]+_\d{8}T\d{4}Z_[A-Za-z0-9]+\.json(\.gz)?$/;
/** cloudtrail_records' columns in insert order (valuesOf lays a record out in this order) */
const COLUMNS = [
  'event_id',
  'event_time',
  'event_source',
  'event_name',
  'aws_region',
  'account',
  'source_ip',
  'user_agent',
  'error_code',
  'error_message',
  'identity_type',
  'access_key_id',
  'role_arn',
  'role_name',
  'role_session_name',
  'source_identity',
  'method',
  'user_id',
  'user_name',
  'credential_id',
  'issued_by_ferry',
  'raw',
  'source_id',
  'object_key',
  'ingested_at',
] as const satisfies ReadonlyArray<keyof CloudTrailRecordsTable>;

/** The columns that hold the same value for every row of a batch (its file, when it was read): last in COLUMNS. */
const PER_BATCH = 3;
/** The columns that differ from row to row. */
const PER_ROW = COLUMNS.slice(0, COLUMNS.length - PER_BATCH);

/**
 * How one PostgreSQL statement stores a batch and says what it stored, in one round trip and with no
 * transaction block around it (ADR 0061). The statement's own transaction does not wait for its WAL
 * flush (`set_config(…, true)` lasts until that transaction's commit, and only for it). That is safe:
 * the position is saved after the file in a normal commit, which flushes the WAL up to it, records
 * included; a crash before that reads the file again (stored once by eventID). It answers one row:
 * how many rows were stored and, only when that is not all of them, which event ids (most batches are
 * new, so the server sends no id back and the client parses none).
 *
 * Two forms (ADR 0064). `new`: a plain insert, tried first. Most batches hold no record stored before,
 * and a plain insert checks the key once as it writes it, where `on conflict do nothing` first probes
 * the key and then inserts speculatively (measured: about 4 µs of server CPU a row less, of 17–23).
 * A batch with any record already there fails as a whole (unique violation on the key, nothing
 * stored, the statement is its own transaction) and goes again as `dedup`, with the conflict clause.
 */
const storeOnce = (rows: string, form: 'new' | 'dedup'): string => `with settings as materialized (
    select set_config('synchronous_commit', 'off', true)
  ), stored as (
    insert into cloudtrail_records (${COLUMNS.join(', ')})
    ${rows}
    ${form === 'dedup' ? 'on conflict (event_time, event_id) do nothing' : ''}
    returning event_id
  )
  select count(*)::integer as stored,
    case when count(*) = $1 then null else coalesce(array_agg(event_id), '{}') end as only
  from stored`;

/**
 * The fallback for rows the column texts below cannot carry: one jsonb array of rows in COLUMNS order,
 * unpacked by position (ADR 0047). $1 is the number of rows.
 */
const JSONB_ROWS = `select ${COLUMNS.map((c, i) =>
  c === 'issued_by_ferry' ? `(r->>${i})::integer` : `r->>${i}`,
).join(', ')}
    from settings, jsonb_array_elements($2::jsonb) as r`;
/** The plain insert met a record stored before (PostgreSQL's unique violation on the key). */
const isStoredBefore = (err: unknown): boolean =>
  isUniqueViolation(err) && (err as { constraint?: unknown }).constraint === 'cloudtrail_records_pkey';

const POSTGRES_INSERT_JSONB = { new: storeOnce(JSONB_ROWS, 'new'), dedup: storeOnce(JSONB_ROWS, 'dedup') };

/** Separates one row's value from the next in a column's text (PostgreSQL's string_to_array). */
const ROW_SEPARATOR = '\x1e';
/** A whole value that stands for NULL in a column's text. */
const NULL_VALUE = '\x1d';
/** Whether the column texts carry this row: no text value contains the separator or NUL (which PostgreSQL's
 * text refuses anyway) or is exactly the NULL marker. */
const carried = (row: readonly unknown[]): boolean => {
  for (let i = 0; i < PER_ROW.length; i++) {
    const v = row[i];
    if (typeof v === 'string' && (v === NULL_VALUE || v.includes(ROW_SEPARATOR) || v.includes('\0')))
      return false;
  }
  return true;
};

/**
 * PostgreSQL's insert of a batch: $1 the number of rows, then one text parameter per column that
 * differs from row to row, the rows' values joined by ROW_SEPARATOR, split by `string_to_array` and
 * zipped back into rows by `unnest` (ADR 0049), then the batch's three shared values as they are.
 * Splitting a string costs the server a fraction of parsing the same rows as jsonb (measured: 17
 * against 29 µs of server CPU a row, load 19), and joining strings costs the client no more than
 * JSON.stringify.
 */
const TEXT_ROWS = `select rows.*, ${COLUMNS.slice(PER_ROW.length)
  .map((_, i) => `$${PER_ROW.length + 2 + i}`)
  .join(', ')}
    from settings, unnest(${PER_ROW.map(
      (c, i) =>
        `string_to_array($${i + 2}, E'\\x1e', E'\\x1d')${c === 'issued_by_ferry' ? '::integer[]' : ''}`,
    ).join(', ')}) as rows`;
const POSTGRES_INSERT = { new: storeOnce(TEXT_ROWS, 'new'), dedup: storeOnce(TEXT_ROWS, 'dedup') };

/**
 * A batch's rows as POSTGRES_INSERT's parameters (after the count: one text per column that differs
 * from row to row, then the batch's shared values, taken from its first row), and the rows that need
 * the jsonb insert instead: a text value containing the separator or NUL, or a text that is exactly
 * the NULL marker. CloudTrail's fields almost never do; `raw` is JSON text, which cannot.
 */
function columnTexts(rows: readonly unknown[][]): {
  params: unknown[];
  carriedRows: number;
  others: unknown[][];
} {
  const columns: string[][] = PER_ROW.map(() => []);
  const others: unknown[][] = [];
  let first: readonly unknown[] | undefined;
  for (const row of rows) {
    if (!carried(row)) {
      others.push(row);
      continue;
    }
    first ??= row;
    for (let i = 0; i < columns.length; i++) {
      const v = row[i];
      columns[i]!.push(v === null ? NULL_VALUE : String(v));
    }
  }
  if (!first) return { params: [], carriedRows: 0, others };
  const texts = columns.map((c) => c.join(ROW_SEPARATOR));
  // string_to_array('') is an empty array, not one empty value: a lone row with an empty text goes as jsonb.
  if (texts.includes('')) return { params: [], carriedRows: 0, others: [...rows] };
  const carriedRows = rows.length - others.length;
  return { params: [carriedRows, ...texts, ...first.slice(PER_ROW.length)], carriedRows, others };
}

const normalisePrefix = (prefix: string | undefined): string => {
  const p = (prefix ?? '').replace(/^\/+/, '');
  if (p.length > 512 || [...p].some((c) => c.charCodeAt(0) < 0x20))
    throw new InvalidInput('prefix is not a usable S3 prefix', 'prefix');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
};

/**
 * CloudTrail ingestion: reads log files as AWS delivers them to S3, incrementally, attributes each
 * record to a person (Correlator), stores it once (by eventID) and hands every stored batch to the
 * activity observers. A file that cannot be read whole is skipped and reported, never retried forever
 * and never a reason to stop; S3 being unreachable stops that source's run with its position kept.
 */
export class CloudTrail {
  readonly #correlator: Correlator;
  #sqliteInsert: Statement | undefined;

  constructor(
    private readonly deps: CloudTrailDeps,
    readonly options: CloudTrailOptions,
  ) {
    this.#correlator = new Correlator(deps.store.db, { clockSkewMs: options.clockSkewMs });
  }

  async addSource(
    ctx: AuditContext,
    input: { bucket: string; prefix?: string; region?: string | null },
  ): Promise<CloudTrailSource> {
    if (!BUCKET.test(input.bucket))
      throw new InvalidInput(`${input.bucket} is not an S3 bucket name`, 'bucket');
    if (input.region && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(input.region))
      throw new InvalidInput('expected an AWS region such as us-east-1', 'region');
    const prefix = normalisePrefix(input.prefix);
    const { db, engine } = this.deps.store;
    const row: CloudTrailSourcesTable = {
      id: randomUUID(),
      bucket: input.bucket,
      prefix,
      region: input.region ?? null,
      created_at: iso(this.deps.clock.now()),
      last_sync_at: null,
      last_error: null,
    };
    await db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('cloudtrail_sources')
        .select('id')
        .where('bucket', '=', row.bucket)
        .where('prefix', '=', prefix)
        .executeTakeFirst();
      if (existing) throw new Conflict(`s3://${row.bucket}/${prefix} is already a CloudTrail source`);
      await trx.insertInto('cloudtrail_sources').values(row).execute();
      await appendAudit(trx, engine, this.deps.clock, {
        type: 'cloudtrail.source.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `s3://${row.bucket}/${prefix}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { sourceId: row.id, bucket: row.bucket, prefix, region: row.region },
      });
    });
    return this.#view(row, []);
  }

  async removeSource(ctx: AuditContext, id: string): Promise<void> {
    const { db, engine } = this.deps.store;
    await db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('cloudtrail_sources')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new NotFound('cloudtrail source', id);
      await trx.deleteFrom('cloudtrail_positions').where('source_id', '=', id).execute();
      await trx.deleteFrom('cloudtrail_sources').where('id', '=', id).execute();
      await trx.deleteFrom('leases').where('name', '=', `cloudtrail-source:${id}`).execute();
      await appendAudit(trx, engine, this.deps.clock, {
        type: 'cloudtrail.source.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `s3://${row.bucket}/${row.prefix}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { sourceId: id },
      });
    });
  }

  async sources(): Promise<CloudTrailSource[]> {
    const { db } = this.deps.store;
    const rows = await db.selectFrom('cloudtrail_sources').selectAll().orderBy('created_at').execute();
    const positions = await db.selectFrom('cloudtrail_positions').selectAll().orderBy('folder').execute();
    return rows.map((r) =>
      this.#view(
        r,
        positions.filter((p) => p.source_id === r.id),
      ),
    );
  }

  #view(
    r: CloudTrailSourcesTable,
    positions: Array<{ folder: string; after_key: string }>,
  ): CloudTrailSource {
    return {
      id: r.id,
      bucket: r.bucket,
      prefix: r.prefix,
      region: r.region,
      createdAt: r.created_at,
      lastSyncAt: r.last_sync_at,
      lastError: r.last_error,
      positions: positions.map((p) => ({ folder: p.folder, afterKey: p.after_key })),
    };
  }

  /** Reads every source from its positions to the newest file, then prunes what retention no longer keeps. */
  async sync(
    ctx: AuditContext = { actor: systemActor('cloudtrail') },
    log: IngestLog = quiet,
  ): Promise<SyncResult> {
    const rows = await this.deps.store.db
      .selectFrom('cloudtrail_sources')
      .selectAll()
      .orderBy('created_at')
      .execute();
    const sources: SourceSyncResult[] = [];
    for (const row of rows) sources.push(await this.#syncSource(ctx, row, log));
    const pruned = await this.prune();
    return {
      sources,
      stored: sources.reduce((n, s) => n + s.stored, 0),
      skipped: sources.flatMap((s) => s.skipped),
      pruned,
    };
  }

  /** Removes records whose eventTime is older than the retention. */
  async prune(): Promise<number> {
    const cutoff = iso(new Date(this.deps.clock.now().getTime() - this.options.retentionMs));
    const res = await this.deps.store.db
      .deleteFrom('cloudtrail_records')
      .where('event_time', '<', cutoff)
      .executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }

  async #syncSource(
    ctx: AuditContext,
    source: CloudTrailSourcesTable,
    log: IngestLog,
  ): Promise<SourceSyncResult> {
    const result: SourceSyncResult = {
      sourceId: source.id,
      bucket: source.bucket,
      prefix: source.prefix,
      files: 0,
      records: 0,
      stored: 0,
      duplicates: 0,
      rejected: 0,
      aheadOfClock: 0,
      skipped: [],
      error: null,
    };
    // One instance at a time per source: the lease withLease keeps (renewed while held; taken over
    // once it runs out or the holder's instance stops heartbeating, as every lease in Ferry).
    try {
      await withLease(
        this.deps.store,
        `cloudtrail-source:${source.id}`,
        (lost) => this.#readSource(source, result, lost, ctx, log),
        { waitMs: 0, leaseMs: this.options.leaseMs, instanceId: this.deps.instanceId },
      );
    } catch (err) {
      if (err instanceof LeaseBusy) return { ...result, busy: true };
      throw err;
    }
    if (result.files > 0 || result.error)
      await this.#audit(ctx, result.error ? 'failure' : 'success', 'cloudtrail.synced', source, {
        sourceId: source.id,
        files: result.files,
        records: result.records,
        stored: result.stored,
        duplicates: result.duplicates,
        rejected: result.rejected,
        skipped: result.skipped.length,
        ...(result.error ? { error: result.error } : {}),
      });
    return result;
  }

  /**
   * Reads one source from its positions while holding its lease. Once `lost` aborts (another instance
   * may hold the source now) nothing more is read and no position or sync state is written: the new
   * holder goes on from the last position saved, and a file read twice stores nothing twice (eventID).
   */
  async #readSource(
    source: CloudTrailSourcesTable,
    result: SourceSyncResult,
    lost: AbortSignal,
    ctx: AuditContext,
    log: IngestLog,
  ): Promise<void> {
    const s3 = this.deps.s3(source);
    try {
      const positions = new Map(
        (
          await this.deps.store.db
            .selectFrom('cloudtrail_positions')
            .select(['folder', 'after_key'])
            .where('source_id', '=', source.id)
            .execute()
        ).map((p) => [p.folder, p.after_key]),
      );
      for (const folder of await this.#folders(s3, source)) {
        let after = positions.get(folder);
        let token: string | undefined;
        do {
          lost.throwIfAborted();
          const page = await s3.send(
            new s3Sdk.ListObjectsV2Command({
              Bucket: source.bucket,
              Prefix: folder,
              ...(token ? { ContinuationToken: token } : after ? { StartAfter: after } : {}),
            }),
          );
          for (const object of page.Contents ?? []) {
            const key = object.Key!;
            if (after !== undefined && key <= after) continue;
            lost.throwIfAborted();
            if (LOG_FILE.test(key)) await this.#readFile(ctx, s3, source, key, result, log);
            after = key;
            lost.throwIfAborted();
            await this.#savePosition(source.id, folder, key);
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      }
    } catch (err) {
      result.error = (err as Error).message || (err as Error).name;
      log.warn({ err, sourceId: source.id }, 'cloudtrail sync of a source stopped; its position is kept');
    }
    if (lost.aborted) return;
    await this.deps.store.db
      .updateTable('cloudtrail_sources')
      .set({ last_sync_at: iso(this.deps.clock.now()), last_error: result.error })
      .where('id', '=', source.id)
      .execute();
  }

  /** The .../CloudTrail/<region>/ folders under AWSLogs/: one account, or an organization's accounts. */
  async #folders(s3: S3Client, source: CloudTrailSourcesTable): Promise<string[]> {
    const root = `${source.prefix}AWSLogs/`;
    const accounts: string[] = [];
    for (const p of await this.#subfolders(s3, source.bucket, root)) {
      const name = p.slice(root.length, -1);
      if (ACCOUNT_FOLDER.test(name)) accounts.push(p);
      else if (ORG_FOLDER.test(name))
        for (const a of await this.#subfolders(s3, source.bucket, p))
          if (ACCOUNT_FOLDER.test(a.slice(p.length, -1))) accounts.push(a);
    }
    const folders: string[] = [];
    for (const account of accounts)
      folders.push(...(await this.#subfolders(s3, source.bucket, `${account}CloudTrail/`)));
    return folders;
  }

  async #subfolders(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new s3Sdk.ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) found.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort();
  }

  async #savePosition(sourceId: string, folder: string, key: string): Promise<void> {
    const now = iso(this.deps.clock.now());
    await this.deps.store.db
      .insertInto('cloudtrail_positions')
      .values({ source_id: sourceId, folder, after_key: key, updated_at: now })
      // A position only moves forward (keys are read in order): a holder that has not yet seen that it
      // lost the source cannot move it back behind what the new holder saved.
      .onConflict((oc) =>
        oc
          .columns(['source_id', 'folder'])
          .doUpdateSet({ after_key: key, updated_at: now })
          .where('cloudtrail_positions.after_key', '<', key),
      )
      .execute();
  }

  async #readFile(
    ctx: AuditContext,
    s3: S3Client,
    source: CloudTrailSourcesTable,
    key: string,
    result: SourceSyncResult,
    log: IngestLog,
  ): Promise<void> {
    result.files++;
    const fileAccount = /\/(\d{12})_CloudTrail_/.exec(key)?.[1] ?? null;
    const object = await s3.send(new s3Sdk.GetObjectCommand({ Bucket: source.bucket, Key: key }));
    const progress = { kept: 0 };
    try {
      await this.ingestFile(
        object.Body as Readable,
        { sourceId: source.id, objectKey: key, fileAccount },
        result,
        progress,
      );
    } catch (err) {
      if (!(err instanceof MalformedLogFile)) throw err;
      const skipped: SkippedFile = {
        bucket: source.bucket,
        key,
        reason: err.message,
        recordsKept: progress.kept,
      };
      result.skipped.push(skipped);
      log.warn({ sourceId: source.id, key, reason: err.message }, 'cloudtrail log file skipped');
      await this.#audit(ctx, 'failure', 'cloudtrail.file.skipped', source, {
        ...skipped,
        sourceId: source.id,
      });
    }
  }

  /**
   * Reads one log file (gzip or not) and ingests it batch by batch. Storing a batch overlaps reading,
   * parsing and attributing the next one: on PostgreSQL the insert is mostly a wait for the server.
   * Batches are still stored (and observed) one after another, in file order. Throws MalformedLogFile
   * after storing what was read whole before the fault; `progress.kept` counts those records.
   */
  async ingestFile(
    body: Readable,
    from: { sourceId: string; objectKey: string; fileAccount: string | null },
    result: Pick<SourceSyncResult, 'records' | 'stored' | 'duplicates' | 'rejected' | 'aheadOfClock'>,
    progress: { kept: number } = { kept: 0 },
  ): Promise<void> {
    let storing: Promise<number> | undefined;
    const stored = async (): Promise<void> => {
      const pending = storing;
      storing = undefined;
      if (pending) progress.kept += await pending;
    };
    try {
      for await (const chunk of readLogFile(body, {
        batchSize: this.options.batchSize,
        keepTexts: this.options.keepFields === null,
      })) {
        result.rejected += chunk.nonObjects;
        const batch = await this.#prepare(chunk.records, from, result, chunk.texts);
        await stored();
        if (batch) {
          storing = this.#store(batch, result);
          // awaited on the next turn; until then a failure must not count as unhandled
          storing.catch(() => {});
        }
      }
    } finally {
      await stored();
    }
  }

  /**
   * Parses, attributes and stores one batch of raw records, then tells the observers about the ones
   * that were new. Returns how many records were read whole. (Tests call it directly.)
   */
  async ingest(
    raws: readonly unknown[],
    from: { sourceId: string; objectKey: string; fileAccount: string | null },
    result: Pick<SourceSyncResult, 'records' | 'stored' | 'duplicates' | 'rejected' | 'aheadOfClock'>,
    /** the records' texts as read (kept as they are when whole records are kept) */
    texts?: readonly string[],
  ): Promise<number> {
    const batch = await this.#prepare(raws, from, result, texts);
    return batch ? this.#store(batch, result) : 0;
  }

  /** Parses a batch, drops repeats within it, attributes it and lays out its rows (no writes). */
  async #prepare(
    raws: readonly unknown[],
    from: { sourceId: string; objectKey: string; fileAccount: string | null },
    result: Pick<SourceSyncResult, 'records' | 'duplicates' | 'rejected' | 'aheadOfClock'>,
    texts?: readonly string[],
  ): Promise<PreparedBatch | null> {
    const now = this.deps.clock.now();
    const ahead = now.getTime() + this.options.clockSkewMs;
    const parsed: ParsedRecord[] = [];
    const rawTexts: string[] = [];
    const seen = new Set<string>();
    for (const [i, raw] of raws.entries()) {
      const p = parseRecord(raw, from.fileAccount);
      if ('rejected' in p) {
        result.rejected++;
        continue;
      }
      result.records++;
      if (seen.has(p.eventId)) {
        result.duplicates++;
        continue;
      }
      seen.add(p.eventId);
      if (p.eventTime.getTime() > ahead) result.aheadOfClock++;
      // Observers (the detections) see the whole record; only what is stored is the configured subset.
      rawTexts.push(
        this.options.keepFields
          ? JSON.stringify(pick(p.raw, this.options.keepFields))
          : (texts?.[i] ?? JSON.stringify(p.raw)),
      );
      parsed.push(p);
    }
    if (parsed.length === 0) return null;
    const attributed = await this.#correlator.attribute(parsed);
    const ingestedAt = iso(now);
    const rows = attributed.map((a, i) => valuesOf(a, parsed[i]!.roleName, rawTexts[i]!, from, ingestedAt));
    return { attributed, rows };
  }

  /** Stores a prepared batch once per record and hands what was new to the observers. */
  async #store(
    batch: PreparedBatch,
    result: Pick<SourceSyncResult, 'stored' | 'duplicates'>,
  ): Promise<number> {
    const { attributed } = batch;
    const inserted = await this.#insert(batch.rows);
    result.stored += inserted.stored;
    result.duplicates += attributed.length - inserted.stored;
    const { only } = inserted;
    const fresh = only === null ? attributed : attributed.filter((a) => only.has(a.eventId));
    for (const observe of this.deps.activityObservers) {
      if (fresh.length === 0) break;
      try {
        await observe(fresh);
      } catch (err) {
        // An observer's fault must not stop ingestion (nor make it re-read the file).
        (this.deps.observerLog ?? quiet).warn({ err }, 'an activity observer failed on a stored batch');
      }
    }
    return attributed.length;
  }

  /**
   * Stores rows (laid out in COLUMNS order) once per (event_time, event_id): how many were stored now
   * and, only when that is not all of them, the event ids of those that were (`only`). The hot path of
   * ingestion. SQLite: one prepared statement run per row (prepared once, inside the transaction that
   * holds its only connection; better-sqlite3 binds an array in a few µs, and multi-row statements
   * measured no faster). PostgreSQL: one statement, outside any transaction block (storeOnce): the batch
   * as one text per column, split and zipped back into rows by the server (POSTGRES_INSERT); rows those
   * texts cannot carry go as one jsonb array of row arrays (POSTGRES_INSERT_JSONB), a second statement.
   */
  async #insert(rows: unknown[][]): Promise<{ stored: number; only: Set<string> | null }> {
    const { db, sqlite } = this.deps.store;
    if (sqlite) {
      this.#sqliteInsert ??= sqlite.prepare(
        `insert into cloudtrail_records (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')}) on conflict (event_time, event_id) do nothing`,
      );
      const stmt = this.#sqliteInsert;
      const stored: string[] = [];
      await db.transaction().execute(async () => {
        for (const row of rows) if (stmt.run(row).changes === 1) stored.push(row[0] as string);
      });
      return { stored: stored.length, only: stored.length === rows.length ? null : new Set(stored) };
    }
    const { params, carriedRows, others } = columnTexts(rows);
    const answers: Array<{ rows: number; stored: number; only: string[] | null }> = [];
    const run = async (
      query: { new: string; dedup: string },
      parameters: unknown[],
      count: number,
    ): Promise<void> => {
      const once = (sqlText: string) =>
        db.executeQuery<{ stored: number; only: string[] | null }>(CompiledQuery.raw(sqlText, parameters));
      const done = await once(query.new).catch((err: unknown) => {
        if (!isStoredBefore(err)) throw err;
        return once(query.dedup);
      });
      answers.push({ rows: count, ...done.rows[0]! });
    };
    if (carriedRows > 0) await run(POSTGRES_INSERT, params, carriedRows);
    if (others.length > 0)
      await run(POSTGRES_INSERT_JSONB, [others.length, JSON.stringify(others)], others.length);
    let stored = 0;
    for (const a of answers) stored += a.stored;
    if (stored === rows.length) return { stored, only: null };
    // Some were there already: the event ids stored now, from both statements.
    const only = new Set<string>();
    for (const a of answers) {
      if (a.only !== null) for (const id of a.only) only.add(id);
      else
        for (const row of a === answers[0] && carriedRows > 0 ? rows.filter(carried) : others)
          only.add(row[0] as string);
    }
    return { stored, only };
  }

  async #audit(
    ctx: AuditContext,
    outcome: 'success' | 'failure',
    type: string,
    source: CloudTrailSourcesTable,
    data: Record<string, unknown>,
  ): Promise<void> {
    const { db, engine } = this.deps.store;
    await db.transaction().execute((trx) =>
      appendAudit(trx, engine, this.deps.clock, {
        type,
        outcome,
        actor: ctx.actor,
        subject: `s3://${source.bucket}/${source.prefix}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data,
      }),
    );
  }
}

/**
 * What `raw` keeps by default (`cloudtrail.keepFields`): the fields the columns do not already hold and
 * that least privilege and an investigator read (what was asked for, on which resources). The whole
 * record (`keepFields: all`) is about seven times as large and costs most of the ingestion time.
 */
export const DEFAULT_KEEP_FIELDS = [
  'eventType',
  'readOnly',
  'requestID',
  'requestParameters',
  'resources',
  'additionalEventData',
  'serviceEventDetails',
  'sharedEventID',
  'vpcEndpointId',
];

function pick(raw: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const f of fields) if (f in raw) kept[f] = raw[f];
  return kept;
}

/** A batch read and attributed, its rows laid out for the insert. */
interface PreparedBatch {
  attributed: AttributedRecord[];
  /** one array per record, in COLUMNS order */
  rows: unknown[][];
}

/** The value types of the named columns, position by position (keeps valuesOf in COLUMNS order). */
type ValuesOf<T extends ReadonlyArray<keyof CloudTrailRecordsTable>> = {
  -readonly [K in keyof T]: T[K] extends keyof CloudTrailRecordsTable ? CloudTrailRecordsTable[T[K]] : never;
};

/** One record's column values in COLUMNS order (an array: the drivers bind it as it is). */
function valuesOf(
  a: AttributedRecord,
  roleName: string | null,
  raw: string,
  from: { sourceId: string; objectKey: string },
  ingestedAt: string,
): unknown[] {
  return [
    a.eventId,
    iso(a.eventTime),
    a.eventSource,
    a.eventName,
    a.awsRegion,
    a.account,
    a.sourceIpAddress,
    a.userAgent,
    a.errorCode,
    a.errorMessage,
    a.identityType,
    a.accessKeyId,
    a.roleArn,
    roleName,
    a.roleSessionName,
    a.sourceIdentity,
    a.attribution.method,
    a.attribution.userId,
    a.attribution.userName,
    a.attribution.credentialId,
    a.attribution.issuedByFerry ? 1 : 0,
    raw,
    from.sourceId,
    from.objectKey,
    ingestedAt,
  ] satisfies ValuesOf<typeof COLUMNS>;
}

/** A stored record back into the shape observers and views read. */
export function recordFromRow(r: CloudTrailRecordsTable): AttributedRecord & { roleName: string | null } {
  return {
    eventId: r.event_id,
    eventTime: new Date(r.event_time),
    eventSource: r.event_source,
    eventName: r.event_name,
    awsRegion: r.aws_region,
    account: r.account,
    sourceIpAddress: r.source_ip,
    userAgent: r.user_agent,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    identityType: r.identity_type,
    accessKeyId: r.access_key_id,
    roleArn: r.role_arn,
    roleName: r.role_name,
    roleSessionName: r.role_session_name,
    sourceIdentity: r.source_identity,
    attribution: {
      method: r.method as AttributedRecord['attribution']['method'],
      userId: r.user_id,
      userName: r.user_name,
      credentialId: r.credential_id,
      issuedByFerry: Number(r.issued_by_ferry) === 1,
    },
    raw: JSON.parse(r.raw) as Record<string, unknown>,
  };
}
