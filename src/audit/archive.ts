import { createHash, type KeyObject, sign, verify } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { AuditSigningKeys } from '../keys/audit-signing-keys.js';
import { LeaseBusy, withLease } from '../store/leases.js';
import type { Store } from '../store/open.js';
import type { Database } from '../store/schema.js';
import type { Actor } from './actor.js';
import { canonicalJson } from './canonical-json.js';
import { makeDestinationDirectory } from './destination-directory.js';
import { appendAudit, eventFromRow, leafEventOf, leafHashOf } from './ledger.js';
import { Frontier, inclusionPath, leafHash, nodeHash } from './merkle.js';
import {
  checkHead,
  type InclusionProof,
  type LeafEvent,
  leafData,
  type SignedTreeHead,
} from './tree-head.js';
import { headFromRow, LedgerNotFound } from './verify.js';

// Retention (docs/audit.md "Retention and archive", ADR 0034): the oldest sealed events are written to
// an archive as signed segments, each a contiguous range of leaves that ends at a signed tree head,
// and then pruned from the database. The database keeps the signed head at the end of the archived
// prefix with its frontier (the prefix's compact range), so verification of what remains starts there;
// with the archive at hand, verification also checks every archived leaf.

export const SEGMENT_FORMAT = 'ferry-audit-archive-segment/v1';

/** The signed description of one archived segment (`<first>-<end>.manifest.json`). */
export interface SegmentManifest {
  format: typeof SEGMENT_FORMAT;
  /** the leaves [firstLeaf, endLeaf) */
  firstLeaf: number;
  endLeaf: number;
  events: number;
  firstTime: string;
  lastTime: string;
  eventsFile: string;
  /** hex SHA-256 of the events file's bytes */
  eventsSha256: string;
  /** hex leaf hash of each event, in order */
  leafHashes: string[];
  /** the compact range of the leaves before this segment: the frontier's subtree hashes at firstLeaf, largest first */
  prefix: string[];
  /** the signed head of the tree of endLeaf leaves */
  head: SignedTreeHead;
  keyId: string;
  /** base64 Ed25519 over manifestSignedBytes() */
  signature: string;
}

/** One line of a segment's events file. */
export interface SegmentLine {
  leafIndex: number;
  seq: number;
  event: LeafEvent;
}

export function manifestSignedBytes(m: Omit<SegmentManifest, 'signature'>): Buffer {
  const { signature: _ignored, ...rest } = m as SegmentManifest;
  return Buffer.from(`${SEGMENT_FORMAT}\n${canonicalJson(rest)}\n`, 'utf8');
}

/** Somewhere archived segments are kept: a directory or an S3 prefix. */
export interface ArchiveStore {
  /** e.g. file:/srv/ferry-archive, s3://bucket/prefix/ */
  readonly name: string;
  /** writes an object; writing the same bytes again is fine */
  put(name: string, body: Buffer, contentType: string): Promise<void>;
  get(name: string): Promise<Buffer | null>;
  /** every object name, sorted */
  list(): Promise<string[]>;
}

/** A directory: files written once (read-only); the same name with other bytes fails loudly. */
export function fileArchive(directory: string): ArchiveStore {
  return {
    name: `file:${directory}`,
    async put(name, body) {
      await makeDestinationDirectory(directory);
      const path = join(directory, name);
      try {
        await writeFile(path, body, { flag: 'wx', mode: 0o444 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!(await readFile(path)).equals(body))
          throw new Error(`${path} already holds another segment of the same range`);
      }
    },
    async get(name) {
      try {
        return await readFile(join(directory, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async list() {
      try {
        return (await readdir(directory)).sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
    },
  };
}

const pad = (n: number) => String(n).padStart(16, '0');
export const segmentName = (first: number, end: number) => `${pad(first)}-${pad(end)}`;
const MANIFEST_SUFFIX = '.manifest.json';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The archive refuses to archive a ledger that does not verify, or a range already taken. */
export class AuditArchiveRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditArchiveRefused';
  }
}

export interface ArchiveDeps {
  store: Store;
  clock: Clock;
  keys: AuditSigningKeys;
  archive: ArchiveStore;
  /** this process's heartbeating instance, named by the `audit-archive` lease (store/leases.ts) */
  instanceId?: string;
}

export interface ArchiveOptions {
  /** archive events older than this (every event of an archived segment is) */
  before: Date;
  /** say what would be archived; write and delete nothing */
  dryRun?: boolean;
  /** who archives (audited) */
  actor: Actor;
  /** at most this many events per segment (a segment ends at a signed head, so it may hold fewer) */
  maxEvents?: number;
  /** aborts when the archive's lease is lost: no further upload or deletion (store/leases.ts) */
  signal?: AbortSignal;
}

export interface ArchivedSegment {
  name: string;
  firstLeaf: number;
  endLeaf: number;
  events: number;
  firstTime: string;
  lastTime: string;
}

export interface ArchiveResult {
  destination: string;
  dryRun: boolean;
  segments: ArchivedSegment[];
  /** leaves below this are archived (and, unless dryRun, pruned from the database) */
  prunedBelow: number;
}

/** Leaves below this are no longer in the database (0: nothing archived). */
export async function archivedBelow(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('audit_archive_segments')
    .select((eb) => eb.fn.max('end_leaf').as('end'))
    .executeTakeFirst();
  return row?.end == null ? 0 : Number(row.end);
}

/**
 * Archives sealed events older than `before`, segment by segment: each segment is written (events,
 * then its signed manifest) before its events are deleted, in one transaction with its record and an
 * `audit.archived` event. A segment ends at a signed head, and its events must reproduce that head's
 * root from the previous checkpoint, so a ledger that does not verify is never archived.
 */
export async function archiveAudit(deps: ArchiveDeps, options: ArchiveOptions): Promise<ArchiveResult> {
  const { store, clock, keys, archive } = deps;
  const db = store.db;
  const maxEvents = options.maxEvents ?? 50_000;
  const trusted = await keys.trusted();
  let start = await archivedBelow(db);
  // Everything before the first event at or after the cutoff (by tree position) may go.
  const firstYoung = await db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.min('leaf_index').as('leaf'))
    .where('leaf_index', '>=', start)
    .where('time', '>=', iso(options.before))
    .executeTakeFirst();
  const latest = await db
    .selectFrom('audit_tree_heads')
    .select((eb) => eb.fn.max('tree_size').as('size'))
    .executeTakeFirst();
  const limit = firstYoung?.leaf == null ? Number(latest?.size ?? 0) : Number(firstYoung.leaf);
  const result: ArchiveResult = {
    destination: archive.name,
    dryRun: options.dryRun === true,
    segments: [],
    prunedBelow: start,
  };
  for (;;) {
    const ends = await db
      .selectFrom('audit_tree_heads')
      .select('tree_size')
      .where('tree_size', '>', start)
      .where('tree_size', '<=', limit)
      .orderBy('tree_size')
      .execute();
    if (ends.length === 0) break;
    const sizes = ends.map((r) => Number(r.tree_size));
    const end = sizes.filter((s) => s <= start + maxEvents).at(-1) ?? sizes[0]!;
    const segment = await buildSegment(db, keys, trusted, start, end);
    result.segments.push(segment.summary);
    if (!options.dryRun) {
      options.signal?.throwIfAborted();
      await archive.put(segment.manifest.eventsFile, segment.events, 'application/x-ndjson');
      const manifestBytes = Buffer.from(`${JSON.stringify(segment.manifest, null, 1)}\n`, 'utf8');
      await archive.put(`${segment.summary.name}${MANIFEST_SUFFIX}`, manifestBytes, 'application/json');
      options.signal?.throwIfAborted();
      await db.transaction().execute(async (trx) => {
        // The lease keeps archivers apart; this keeps a stale one from archiving a range twice.
        if ((await archivedBelow(trx)) !== start)
          throw new AuditArchiveRefused(`leaves from ${start} were archived meanwhile by another run`);
        await trx
          .insertInto('audit_archive_segments')
          .values({
            first_leaf: start,
            end_leaf: end,
            events: end - start,
            first_time: segment.summary.firstTime,
            last_time: segment.summary.lastTime,
            destination: archive.name,
            name: segment.summary.name,
            events_sha256: segment.manifest.eventsSha256,
            manifest_sha256: sha256(manifestBytes),
            archived_at: iso(clock.now()),
          })
          .execute();
        await trx
          .deleteFrom('audit_events')
          .where('leaf_index', '>=', start)
          .where('leaf_index', '<', end)
          .execute();
        // Nodes wholly inside the archived prefix are no longer needed: a proof for a later leaf uses
        // only the prefix's frontier subtrees (kept with the head of size `end`) and nodes that reach
        // past it.
        for (let level = 1; 2 ** level <= end; level++)
          await trx
            .deleteFrom('audit_tree_nodes')
            .where('level', '=', level)
            .where('idx', '<', Math.floor(end / 2 ** level))
            .execute();
        await appendAudit(trx, store.engine, clock, {
          type: 'audit.archived',
          outcome: 'success',
          actor: options.actor,
          subject: segment.summary.name,
          data: {
            destination: archive.name,
            firstLeaf: start,
            endLeaf: end,
            events: end - start,
            firstTime: segment.summary.firstTime,
            lastTime: segment.summary.lastTime,
            eventsSha256: segment.manifest.eventsSha256,
            manifestSha256: sha256(manifestBytes),
            rootHash: segment.manifest.head.rootHash,
          },
        });
      });
    }
    start = end;
    result.prunedBelow = end;
  }
  return result;
}

/**
 * The worker's scheduled run: archives what is older than `archiveAfter` on exactly one instance at a
 * time (the `audit-archive` lease, not waited for). Null when another instance holds the lease.
 */
export async function archiveOnSchedule(
  deps: ArchiveDeps,
  retention: { archiveAfter: number; maxEventsPerSegment: number },
): Promise<ArchiveResult | null> {
  const before = new Date(deps.clock.now().getTime() - retention.archiveAfter);
  try {
    return await withLease(
      deps.store,
      'audit-archive',
      (signal) =>
        archiveAudit(deps, {
          before,
          actor: { type: 'system', name: 'audit-archive' },
          maxEvents: retention.maxEventsPerSegment,
          signal,
        }),
      { waitMs: 0, leaseMs: 60_000, instanceId: deps.instanceId },
    );
  } catch (err) {
    if (err instanceof LeaseBusy) return null;
    throw err;
  }
}

async function buildSegment(
  db: Kysely<Database>,
  keys: AuditSigningKeys,
  trusted: Map<string, KeyObject>,
  start: number,
  end: number,
): Promise<{ summary: ArchivedSegment; manifest: SegmentManifest; events: Buffer }> {
  const headRow = await db
    .selectFrom('audit_tree_heads')
    .selectAll()
    .where('tree_size', '=', end)
    .executeTakeFirstOrThrow();
  const head = headFromRow(headRow);
  const bad = checkHead(head, trusted);
  if (bad) throw new AuditArchiveRefused(`${bad}; run ferry audit verify`);
  let prefix: string[] = [];
  if (start > 0) {
    const startRow = await db
      .selectFrom('audit_tree_heads')
      .selectAll()
      .where('tree_size', '=', start)
      .executeTakeFirstOrThrow();
    prefix = JSON.parse(startRow.frontier) as string[];
  }
  const frontier = Frontier.fromHashes(
    start,
    prefix.map((h) => Buffer.from(h, 'hex')),
  );
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('leaf_index', '>=', start)
    .where('leaf_index', '<', end)
    .orderBy('leaf_index')
    .execute();
  const lines: string[] = [];
  const leafHashes: string[] = [];
  for (const [i, row] of rows.entries()) {
    const event = eventFromRow(row);
    if (event.leafIndex !== start + i)
      throw new AuditArchiveRefused(`leaf ${start + i} is missing; run ferry audit verify`);
    const hash = leafHashOf(event);
    leafHashes.push(hash);
    frontier.append(Buffer.from(hash, 'hex'));
    lines.push(
      `${canonicalJson({ leafIndex: start + i, seq: event.seq, event: leafEventOf(event) } satisfies SegmentLine)}\n`,
    );
  }
  if (rows.length !== end - start || frontier.root().toString('hex') !== head.rootHash)
    throw new AuditArchiveRefused(
      `leaves ${start}–${end - 1} do not reproduce the signed head of ${end}; run ferry audit verify`,
    );
  const events = Buffer.from(lines.join(''), 'utf8');
  const name = segmentName(start, end);
  const key = await keys.current();
  const unsigned: Omit<SegmentManifest, 'signature'> = {
    format: SEGMENT_FORMAT,
    firstLeaf: start,
    endLeaf: end,
    events: end - start,
    firstTime: rows[0]!.time,
    lastTime: rows.at(-1)!.time,
    eventsFile: `${name}.events.jsonl`,
    eventsSha256: sha256(events),
    leafHashes,
    prefix,
    head,
    keyId: key.id,
  };
  const manifest: SegmentManifest = {
    ...unsigned,
    signature: sign(null, manifestSignedBytes(unsigned), key.privateKey).toString('base64'),
  };
  return {
    summary: {
      name,
      firstLeaf: start,
      endLeaf: end,
      events: end - start,
      firstTime: unsigned.firstTime,
      lastTime: unsigned.lastTime,
    },
    manifest,
    events,
  };
}

/** What went wrong with an archive: the file and, when one can be named, the leaf. */
export interface ArchiveBreak {
  file: string | null;
  leafIndex: number | null;
  id: string | null;
  reason: string;
}

export interface ArchiveWalk {
  /** the tree's frontier after the last segment checked */
  frontier: Frontier;
  segments: number;
  events: number;
  failure: ArchiveBreak | null;
}

/** Null when the manifest is signed by a trusted key; otherwise why not. */
export function checkManifestSignature(
  m: SegmentManifest,
  keys: Map<string, KeyObject>,
  file: string,
): string | null {
  const key = keys.get(m.keyId);
  if (!key) return `manifest ${file} is signed with an unknown key ${m.keyId} (another Ferry's, or forged)`;
  const ok = verify(null, manifestSignedBytes(m), key, Buffer.from(m.signature, 'base64'));
  return ok ? null : `manifest ${file} has a bad signature (altered, or signed with another key)`;
}

function isManifest(x: unknown): x is SegmentManifest {
  const m = x as Partial<SegmentManifest> | null;
  return (
    !!m &&
    typeof m === 'object' &&
    m.format === SEGMENT_FORMAT &&
    Number.isSafeInteger(m.firstLeaf) &&
    Number.isSafeInteger(m.endLeaf) &&
    typeof m.eventsFile === 'string' &&
    typeof m.eventsSha256 === 'string' &&
    Array.isArray(m.leafHashes) &&
    Array.isArray(m.prefix) &&
    !!m.head &&
    typeof m.keyId === 'string' &&
    typeof m.signature === 'string'
  );
}

async function readManifests(
  archive: ArchiveStore,
): Promise<Array<{ file: string; manifest: SegmentManifest } | ArchiveBreak>> {
  const out: Array<{ file: string; manifest: SegmentManifest } | ArchiveBreak> = [];
  for (const file of (await archive.list()).filter((n) => n.endsWith(MANIFEST_SUFFIX))) {
    const bytes = await archive.get(file);
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes?.toString('utf8') ?? '');
    } catch {
      parsed = null;
    }
    if (!isManifest(parsed))
      out.push({ file, leafIndex: null, id: null, reason: `${file} is not a Ferry audit segment manifest` });
    else out.push({ file, manifest: parsed });
  }
  return out;
}

/**
 * Checks every segment of an archive, oldest first, up to leaf `upTo`: the manifest's signature and
 * its head's, that the segments follow each other with no gap or overlap, that each continues the tree
 * of the ones before (its prefix is their frontier), that each event reproduces its leaf hash and the
 * events file its hash, and that the leaves reproduce the manifest's signed head. `onLeaf` sees the
 * frontier after every leaf (to compare other heads of that size).
 */
export async function walkArchive(
  archive: ArchiveStore,
  keys: Map<string, KeyObject>,
  upTo: number,
  onLeaf?: (frontier: Frontier) => string | null,
): Promise<ArchiveWalk> {
  const frontier = new Frontier();
  const walk: ArchiveWalk = { frontier, segments: 0, events: 0, failure: null };
  const fail = (
    file: string | null,
    reason: string,
    leafIndex: number | null = null,
    id: string | null = null,
  ) => {
    walk.failure = { file, leafIndex, id, reason };
    return walk;
  };
  const manifests = await readManifests(archive);
  for (const m of manifests) if ('reason' in m) return fail(m.file, m.reason);
  const segments = (manifests as Array<{ file: string; manifest: SegmentManifest }>).sort(
    (a, b) => a.manifest.firstLeaf - b.manifest.firstLeaf,
  );
  for (const { file, manifest: m } of segments) {
    if (frontier.size >= upTo) break;
    const bad = checkManifestSignature(m, keys, file);
    if (bad) return fail(file, bad, m.firstLeaf);
    const badHead = checkHead(m.head, keys);
    if (badHead) return fail(file, `the head in ${file}: ${badHead}`, m.firstLeaf);
    if (m.head.treeSize !== m.endLeaf || m.leafHashes.length !== m.endLeaf - m.firstLeaf)
      return fail(
        file,
        `${file} describes leaves ${m.firstLeaf}–${m.endLeaf - 1} inconsistently`,
        m.firstLeaf,
      );
    if (m.firstLeaf > frontier.size)
      return fail(
        file,
        `leaves ${frontier.size}–${m.firstLeaf - 1} are in no segment of the archive (a segment is missing)`,
        frontier.size,
      );
    if (m.firstLeaf < frontier.size)
      return fail(file, `${file} overlaps the segment before it (leaf ${m.firstLeaf})`, m.firstLeaf);
    const expected = frontier.hashes().map((h) => h.toString('hex'));
    if (canonicalJson(expected) !== canonicalJson(m.prefix))
      return fail(
        file,
        `${file} does not continue the segments before it: the tree it extends is another one (a segment from another tree)`,
        m.firstLeaf,
      );
    const bytes = await archive.get(m.eventsFile);
    if (!bytes) return fail(m.eventsFile, `${m.eventsFile} is missing (named by ${file})`, m.firstLeaf);
    const lines = bytes.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (const [i, text] of lines.entries()) {
      const leaf = m.firstLeaf + i;
      let line: SegmentLine;
      try {
        line = JSON.parse(text) as SegmentLine;
      } catch {
        return fail(m.eventsFile, `${m.eventsFile} line ${i + 1} (leaf ${leaf}) is not JSON`, leaf);
      }
      if (i >= m.leafHashes.length)
        return fail(
          m.eventsFile,
          `${m.eventsFile} holds more events than its manifest (${m.leafHashes.length})`,
          leaf,
        );
      const hash = line?.event ? leafHash(leafData(line.event)).toString('hex') : '';
      if (line?.leafIndex !== leaf || hash !== m.leafHashes[i])
        return fail(
          m.eventsFile,
          `${m.eventsFile} line ${i + 1} (leaf ${leaf}): the event does not match the leaf its signed manifest records (altered, removed or reordered)`,
          leaf,
          typeof line?.event?.id === 'string' ? line.event.id : null,
        );
    }
    if (lines.length !== m.leafHashes.length)
      return fail(
        m.eventsFile,
        `${m.eventsFile} holds ${lines.length} events but its manifest ${m.leafHashes.length} (events removed)`,
        m.firstLeaf + lines.length,
      );
    if (sha256(bytes) !== m.eventsSha256)
      return fail(m.eventsFile, `${m.eventsFile} does not match the SHA-256 its manifest signs`, m.firstLeaf);
    for (const h of m.leafHashes) {
      frontier.append(Buffer.from(h, 'hex'));
      const problem = onLeaf?.(frontier);
      if (problem) return fail(file, problem, frontier.size - 1);
    }
    if (frontier.root().toString('hex') !== m.head.rootHash)
      return fail(
        file,
        `the leaves of ${file} do not reproduce the signed head of ${m.endLeaf} it carries (a segment from another tree)`,
        m.firstLeaf,
      );
    walk.segments += 1;
    walk.events += m.leafHashes.length;
  }
  if (frontier.size < upTo)
    return fail(
      null,
      `leaves ${frontier.size}–${upTo - 1} were pruned from the database but are in no segment of the archive (a segment is missing)`,
      frontier.size,
    );
  return walk;
}

/** The subtree starts and sizes of a tree's frontier of `size` leaves, largest first. */
function frontierRanges(size: number): Array<{ start: number; size: number }> {
  const out: Array<{ start: number; size: number }> = [];
  let start = 0;
  for (let bit = 52; bit >= 0; bit--) {
    const s = 2 ** bit;
    if (Math.floor(size / s) % 2 === 1) {
      out.push({ start, size: s });
      start += s;
    }
  }
  return out;
}

/**
 * The hash of the complete subtree [start, start+size) from a prefix's compact range (subtrees wholly
 * before `first`) and the leaves from `first` on. Every subtree a proof for a leaf at or after `first`
 * needs is one of those, a combination of both, or wholly in `leaves`.
 */
export function prefixSubtrees(
  first: number,
  prefix: Buffer[],
  leaf: (index: number) => Promise<Buffer>,
  node?: (level: number, index: number) => Promise<Buffer | null>,
) {
  const ranges = frontierRanges(first);
  const hash = async (start: number, size: number): Promise<Buffer> => {
    if (start + size <= first) {
      const i = ranges.findIndex((r) => r.start === start && r.size === size);
      if (i < 0 || !prefix[i])
        throw new LedgerNotFound(
          `the subtree of leaves ${start}–${start + size - 1} is archived and no longer in the database (an inclusion proof for an archived event: ferry audit prove --archive)`,
        );
      return prefix[i];
    }
    if (start >= first) {
      if (size === 1) return leaf(start);
      const stored = await node?.(Math.log2(size), start / size);
      if (stored) return stored;
    }
    return nodeHash(await hash(start, size / 2), await hash(start + size / 2, size / 2));
  };
  return (level: number, index: number) => hash(index * 2 ** level, 2 ** level);
}

/** A segment's leaf range and base name, as `audit_archive_segments` (and `audit.archived`) record it. */
export interface SegmentRecord {
  firstLeaf: number;
  endLeaf: number;
  name: string;
}

/** The segments the database records (written with their `audit.archived` event), oldest first. */
export async function recordedSegments(db: Kysely<Database>): Promise<SegmentRecord[]> {
  const rows = await db
    .selectFrom('audit_archive_segments')
    .select(['first_leaf', 'end_leaf', 'name'])
    .orderBy('first_leaf')
    .execute();
  return rows.map((r) => ({ firstLeaf: Number(r.first_leaf), endLeaf: Number(r.end_leaf), name: r.name }));
}

const SEGMENT_MANIFEST = /^(\d{16})-(\d{16})\.manifest\.json$/;

/**
 * The segment that holds `leafIndex`: by the recorded leaf ranges when given, else by the archive's
 * object names (which carry the range), so only that one segment is read.
 */
async function segmentHolding(
  archive: ArchiveStore,
  leafIndex: number,
  recorded: SegmentRecord[] | undefined,
): Promise<SegmentRecord> {
  const hit = recorded?.find((s) => s.firstLeaf <= leafIndex && leafIndex < s.endLeaf);
  if (hit) return hit;
  for (const file of await archive.list()) {
    const m = SEGMENT_MANIFEST.exec(file);
    if (!m) continue;
    const first = Number(m[1]);
    const end = Number(m[2]);
    if (first <= leafIndex && leafIndex < end)
      return { firstLeaf: first, endLeaf: end, name: segmentName(first, end) };
  }
  throw new LedgerNotFound(`no segment of the archive ${archive.name} holds leaf ${leafIndex}`);
}

/**
 * An inclusion proof for an archived event, from its segment alone: against the signed head at the
 * segment's end, with the prefix's compact range for the leaves before it. The segment is found by the
 * event's leaf index (every listing and export carries it) in the recorded leaf ranges, and only that
 * segment is read: the archive is never scanned. `ferry audit check-proof` checks it like any other.
 */
export async function proveFromArchive(
  archive: ArchiveStore,
  eventId: string,
  options: { leafIndex: number; segments?: SegmentRecord[]; publicKey?: string },
): Promise<InclusionProof> {
  const { leafIndex, publicKey } = options;
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0)
    throw new LedgerNotFound(`leaf ${leafIndex} is not a leaf index`);
  const segment = await segmentHolding(archive, leafIndex, options.segments);
  const file = `${segment.name}${MANIFEST_SUFFIX}`;
  const bytes = await archive.get(file);
  if (!bytes) throw new LedgerNotFound(`${file} is not in the archive ${archive.name}`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(bytes.toString('utf8'));
  } catch {
    manifest = null;
  }
  if (!isManifest(manifest)) throw new LedgerNotFound(`${file} is not a Ferry audit segment manifest`);
  if (manifest.firstLeaf !== segment.firstLeaf || manifest.endLeaf !== segment.endLeaf)
    throw new LedgerNotFound(
      `${file} describes leaves ${manifest.firstLeaf}–${manifest.endLeaf - 1}, not the recorded ${segment.firstLeaf}–${segment.endLeaf - 1}`,
    );
  const events = await archive.get(manifest.eventsFile);
  if (!events) throw new LedgerNotFound(`${manifest.eventsFile} is missing (named by ${file})`);
  const text = events.toString('utf8').split('\n')[leafIndex - manifest.firstLeaf] ?? '';
  let line: SegmentLine | null;
  try {
    line = JSON.parse(text) as SegmentLine;
  } catch {
    line = null;
  }
  if (line?.leafIndex !== leafIndex || !line.event)
    throw new LedgerNotFound(`${manifest.eventsFile} has no readable event at leaf ${leafIndex}`);
  if (line.event.id !== eventId)
    throw new LedgerNotFound(
      `leaf ${leafIndex} holds audit event ${String(line.event.id)}, not ${eventId} (check the leafIndex)`,
    );
  const hashes = manifest.leafHashes.map((h) => Buffer.from(h, 'hex'));
  const subtree = prefixSubtrees(
    manifest.firstLeaf,
    manifest.prefix.map((h) => Buffer.from(h, 'hex')),
    async (i) => {
      const h = hashes[i - manifest.firstLeaf];
      if (!h) throw new LedgerNotFound(`leaf ${i} is not in ${file}`);
      return h;
    },
  );
  const path = await inclusionPath(leafIndex, manifest.endLeaf, subtree);
  return {
    format: 'ferry-audit-inclusion-proof/v1',
    event: line.event,
    leafIndex,
    path: path.map((h) => h.toString('hex')),
    head: manifest.head,
    ...(publicKey ? { publicKey } : {}),
  };
}
