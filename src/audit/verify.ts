import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { type ArchiveStore, archivedBelow, prefixSubtrees, walkArchive } from './archive.js';
import { eventFromRow, leafEventOf, leafHashOf } from './ledger.js';
import { consistencyPath, Frontier, inclusionPath, type SubtreeHash } from './merkle.js';
import { type ConsistencyProof, checkHead, type InclusionProof, type SignedTreeHead } from './tree-head.js';

export interface LedgerBreak {
  /** the leaf (tree position) where it goes wrong, when one can be named */
  leafIndex: number | null;
  id: string | null;
  reason: string;
  /** the archive file at fault (verify --archive) */
  file?: string | null;
}

export interface VerifyResult {
  ok: boolean;
  /** sealed events checked */
  events: number;
  /** size of the latest signed head in the database */
  treeSize: number;
  /** signed heads compared with the recomputed tree (database and --against) */
  headsChecked: number;
  /** events committed but not sealed yet (sealing runs within a second while a server runs) */
  unsealed: number;
  /** leaves below this were archived and pruned from the database */
  archived: number;
  /** the archived leaves were checked too (verify --archive) */
  archiveChecked: boolean;
  firstBad: LedgerBreak | null;
}

export interface VerifyOptions {
  /** public keys a head may be signed with, by key id */
  keys: Map<string, KeyObject>;
  /** heads published elsewhere (exports, or a head saved earlier): the tree must still contain them */
  against?: unknown[];
  batch?: number;
  /** the archive of pruned segments: check every archived leaf too */
  archive?: ArchiveStore;
}

/** A tree head row as the sequencer stores it. */
export function headFromRow(r: {
  tree_size: number;
  root_hash: string;
  signed_at: string;
  key_id: string;
  signature: string;
}): SignedTreeHead {
  return {
    format: 'ferry-audit-tree-head/v1',
    treeSize: Number(r.tree_size),
    rootHash: r.root_hash,
    timestamp: r.signed_at,
    keyId: r.key_id,
    signature: r.signature,
  };
}

/**
 * Recomputes the whole tree from the events' own fields (never trusting stored hashes or nodes) and
 * compares it with every signed head: those in the database and those given as `against`. An edit,
 * deletion, insertion or reordering changes the root of every head after it; a forged head needs the
 * signing key. Removing the newest events together with their heads leaves a smaller, consistent tree:
 * only a head published outside (`against`) catches that, which is why heads are exported.
 */
export async function verifyLedger(db: Kysely<Database>, options: VerifyOptions): Promise<VerifyResult> {
  const batch = options.batch ?? 2000;
  const headRows = await db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size').execute();
  const unsealedRow = await db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('leaf_index', 'is', null)
    .executeTakeFirstOrThrow();
  const latest = headRows.at(-1);
  const treeSize = latest ? Number(latest.tree_size) : 0;
  const archived = await archivedBelow(db);
  let events = 0;
  let headsChecked = 0;
  const result = (firstBad: LedgerBreak | null): VerifyResult => ({
    ok: firstBad === null,
    events,
    treeSize,
    headsChecked,
    unsealed: Number(unsealedRow.n),
    archived,
    archiveChecked: options.archive !== undefined,
    firstBad,
  });
  const fail = (
    reason: string,
    leafIndex: number | null = null,
    id: string | null = null,
    file: string | null = null,
  ) => result({ leafIndex, id, reason, ...(file ? { file } : {}) });

  // Every head must carry a good signature before its root means anything.
  const checkpoints = new Map<number, Array<{ root: string; source: string }>>();
  for (const row of headRows) {
    const head = headFromRow(row);
    const bad = checkHead(head, options.keys);
    if (bad) return fail(`${bad} (database)`);
    const list = checkpoints.get(head.treeSize) ?? [];
    list.push({ root: head.rootHash, source: 'signed head in the database' });
    checkpoints.set(head.treeSize, list);
  }
  for (const [i, h] of (options.against ?? []).entries()) {
    const bad = checkHead(h, options.keys);
    if (bad) return fail(`${bad} (published head #${i + 1})`);
    const head = h as SignedTreeHead;
    if (head.treeSize > treeSize)
      return fail(
        `a published head signs ${head.treeSize} events but the database's tree has ${treeSize}: events were removed (truncated)`,
      );
    const list = checkpoints.get(head.treeSize) ?? [];
    list.push({ root: head.rootHash, source: `published head #${i + 1}` });
    checkpoints.set(head.treeSize, list);
  }

  let frontier = new Frontier();
  if (archived > 0) {
    // The oldest leaves are archived: the database keeps the signed head at their end with its
    // frontier (the prefix's compact range). The frontier must fold to that head's root; the tree
    // continues from it.
    const checkpoint = headRows.find((r) => Number(r.tree_size) === archived);
    if (!checkpoint)
      return fail(`leaves below ${archived} are archived but no signed head of that size is left`, archived);
    let stored: Frontier;
    try {
      stored = Frontier.fromHashes(
        archived,
        (JSON.parse(checkpoint.frontier) as string[]).map((h) => Buffer.from(h, 'hex')),
      );
    } catch {
      return fail(`the frontier kept for the archived leaves below ${archived} is malformed`, archived);
    }
    if (stored.root().toString('hex') !== checkpoint.root_hash)
      return fail(
        `the frontier kept for the archived leaves below ${archived} does not match the signed head of that size`,
        archived,
      );
    if (options.archive) {
      const walk = await walkArchive(options.archive, options.keys, archived, (f) => {
        for (const c of checkpoints.get(f.size) ?? []) {
          headsChecked += 1;
          if (c.root !== f.root().toString('hex'))
            return `the archived leaves do not reproduce the ${c.source} of ${f.size} events`;
        }
        return null;
      });
      events += walk.events;
      if (walk.failure)
        return fail(walk.failure.reason, walk.failure.leafIndex, walk.failure.id, walk.failure.file);
      const a = walk.frontier.hashes().map((h) => h.toString('hex'));
      const b = stored.hashes().map((h) => h.toString('hex'));
      if (walk.frontier.size !== archived || a.join() !== b.join())
        return fail(
          `the archive's tree at ${archived} leaves differs from the database's (the archive is of another tree)`,
          archived,
        );
    } else {
      // Without the archive only the heads at the checkpoint and after can be recomputed.
      for (const c of checkpoints.get(archived) ?? []) {
        headsChecked += 1;
        if (c.root !== checkpoint.root_hash)
          return fail(`the ${c.source} of ${archived} events differs from the archive checkpoint`, archived);
      }
    }
    frontier = stored;
  }
  // The archive checkpoint is an unsigned row: it counts only when a sealed `audit.archived` event (written
  // in the transaction that pruned the leaves) records an archive ending exactly there. Otherwise someone
  // who can write the database deleted the oldest events and forged the row.
  let archiveRecorded = archived === 0;
  let after = archived - 1;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('leaf_index', '>', after)
      // The tree as of the latest head read above: a batch the sequencer seals meanwhile comes with
      // its own head and is checked by the next verify (checked for cover below).
      .where('leaf_index', '<', treeSize)
      .orderBy('leaf_index')
      .limit(batch)
      .execute();
    for (const row of rows) {
      const event = eventFromRow(row);
      const index = event.leafIndex as number;
      if (index !== frontier.size)
        return fail(
          `leaf ${frontier.size} is missing (deleted, or positions rewritten)`,
          frontier.size,
          null,
        );
      if (event.type === 'audit.archived' && event.data['endLeaf'] === archived) archiveRecorded = true;
      const hash = leafHashOf(event);
      frontier.append(Buffer.from(hash, 'hex'));
      events += 1;
      after = index;
      const expected = checkpoints.get(frontier.size);
      if (expected) {
        const root = frontier.root().toString('hex');
        for (const c of expected) {
          headsChecked += 1;
          if (c.root !== root) {
            // A naive edit leaves the stored leaf hash behind: name that event when we can.
            const edited = await firstStaleLeaf(db, frontier.size);
            return fail(
              `the first ${frontier.size} events do not match the ${c.source} for that size: an event was edited, inserted, removed or reordered${edited ? '' : ' (stored hashes were recomputed to hide which)'}`,
              edited?.leafIndex ?? null,
              edited?.id ?? null,
            );
          }
        }
      }
    }
    if (rows.length < batch) break;
  }
  if (!archiveRecorded)
    return fail(
      `leaves below ${archived} are marked archived, but no sealed audit.archived event records an archive ending there (events deleted and the archive record forged, or the archive run is not sealed yet: verify again in a moment)`,
      archived,
    );
  if (frontier.size < treeSize)
    return fail(
      `the tree has ${frontier.size} events but the latest signed head signs ${treeSize} (truncated)`,
      frontier.size,
    );
  // A leaf and the head that covers it commit together, so read the highest leaf first, then the
  // heads: a leaf no head covers was placed by someone other than the sequencer.
  const highest = await db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.max('leaf_index').as('leaf'))
    .executeTakeFirst();
  const covered = await db
    .selectFrom('audit_tree_heads')
    .select((eb) => eb.fn.max('tree_size').as('size'))
    .executeTakeFirst();
  const highestLeaf = highest?.leaf == null ? -1 : Number(highest.leaf);
  const coveredSize = covered?.size == null ? 0 : Number(covered.size);
  if (highestLeaf >= Math.max(treeSize, coveredSize))
    return fail(
      `events at leaf ${Math.max(treeSize, coveredSize)} and after are placed in the tree but no signed head covers them (not sealed by Ferry)`,
      Math.max(treeSize, coveredSize),
    );
  return result(null);
}

async function firstStaleLeaf(
  db: Kysely<Database>,
  upTo: number,
): Promise<{ leafIndex: number; id: string } | null> {
  let after = -1;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('leaf_index', '>', after)
      .where('leaf_index', '<', upTo)
      .orderBy('leaf_index')
      .limit(2000)
      .execute();
    for (const row of rows) {
      const e = eventFromRow(row);
      if (leafHashOf(e) !== row.leaf_hash) return { leafIndex: e.leafIndex as number, id: e.id };
      after = e.leafIndex as number;
    }
    if (rows.length < 2000) return null;
  }
}

/**
 * Stored subtree hashes: level 0 from the events, higher levels from audit_tree_nodes. Below an
 * archived prefix only that prefix's frontier is kept (with the signed head of its size).
 */
async function storedSubtrees(db: Kysely<Database>): Promise<SubtreeHash> {
  const stored = storedNodes(db);
  const archived = await archivedBelow(db);
  if (archived === 0) return stored;
  const row = await db
    .selectFrom('audit_tree_heads')
    .select('frontier')
    .where('tree_size', '=', archived)
    .executeTakeFirst();
  if (!row) throw new LedgerNotFound(`no signed head at the archive checkpoint ${archived}`);
  return prefixSubtrees(
    archived,
    (JSON.parse(row.frontier) as string[]).map((h) => Buffer.from(h, 'hex')),
    (i) => stored(0, i),
    (level, index) => stored(level, index).catch(() => null),
  );
}

function storedNodes(db: Kysely<Database>): SubtreeHash {
  return async (level, index) => {
    if (level === 0) {
      const row = await db
        .selectFrom('audit_events')
        .select('leaf_hash')
        .where('leaf_index', '=', index)
        .executeTakeFirst();
      if (!row?.leaf_hash) throw new LedgerNotFound(`leaf ${index} is not in the tree`);
      return Buffer.from(row.leaf_hash, 'hex');
    }
    const row = await db
      .selectFrom('audit_tree_nodes')
      .select('hash')
      .where('level', '=', level)
      .where('idx', '=', index)
      .executeTakeFirst();
    if (!row) throw new LedgerNotFound(`tree node ${level}/${index} is missing`);
    return Buffer.from(row.hash, 'hex');
  };
}

export class LedgerNotFound extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerNotFound';
  }
}

async function headOfSize(db: Kysely<Database>, size?: number): Promise<SignedTreeHead> {
  let q = db.selectFrom('audit_tree_heads').selectAll();
  q = size === undefined ? q.orderBy('tree_size', 'desc').limit(1) : q.where('tree_size', '=', size);
  const row = await q.executeTakeFirst();
  if (!row)
    throw new LedgerNotFound(
      size === undefined ? 'no signed tree head yet' : `no signed head of size ${size}`,
    );
  return headFromRow(row);
}

/** An inclusion proof for one event against the latest signed head (or the head of `treeSize`). */
export async function proveInclusion(
  db: Kysely<Database>,
  eventId: string,
  options: { treeSize?: number; publicKey?: string } = {},
): Promise<InclusionProof> {
  const row = await db.selectFrom('audit_events').selectAll().where('id', '=', eventId).executeTakeFirst();
  if (!row) {
    const archived = await archivedBelow(db);
    throw new LedgerNotFound(
      archived > 0
        ? `no audit event ${eventId} in the database (leaves below ${archived} are archived: prove it from the archive with --archive)`
        : `no audit event ${eventId}`,
    );
  }
  const event = eventFromRow(row);
  if (event.leafIndex === null)
    throw new LedgerNotFound(`audit event ${eventId} is not sealed yet; try again in a second`);
  const head = await headOfSize(db, options.treeSize);
  if (event.leafIndex >= head.treeSize)
    throw new LedgerNotFound(`audit event ${eventId} was sealed after the head of ${head.treeSize} events`);
  const path = await inclusionPath(event.leafIndex, head.treeSize, await storedSubtrees(db));
  return {
    format: 'ferry-audit-inclusion-proof/v1',
    event: leafEventOf(event),
    leafIndex: event.leafIndex,
    path: path.map((h) => h.toString('hex')),
    head,
    ...(options.publicKey ? { publicKey: options.publicKey } : {}),
  };
}

/** A consistency proof from the head of `fromSize` to the latest head (or the head of `toSize`). */
export async function proveConsistency(
  db: Kysely<Database>,
  fromSize: number,
  toSize?: number,
): Promise<ConsistencyProof> {
  const from = await headOfSize(db, fromSize);
  const to = await headOfSize(db, toSize);
  if (to.treeSize < from.treeSize)
    throw new LedgerNotFound(`head ${to.treeSize} is older than head ${from.treeSize}`);
  const path =
    from.treeSize === 0 ? [] : await consistencyPath(from.treeSize, to.treeSize, await storedSubtrees(db));
  return { format: 'ferry-audit-consistency-proof/v1', from, to, path: path.map((h) => h.toString('hex')) };
}
