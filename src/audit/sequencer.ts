import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { AuditSigningKeys } from '../keys/audit-signing-keys.js';
import { dbTime } from '../store/db-time.js';
import { isStorageFull } from '../store/errors.js';
import type { Store } from '../store/open.js';
import type { Database } from '../store/schema.js';
import { eventFromRow, leafHashOf, onAuditAppended } from './ledger.js';
import { Frontier } from './merkle.js';
import { type SignedTreeHead, signHead } from './tree-head.js';

export interface SequencerDeps {
  store: Store;
  clock: Clock;
  keys: AuditSigningKeys;
  /** operator log; warnings only */
  log?: { warn(obj: object, msg: string): void };
  /** called after each batch committed (metrics, the bench's latency figure) */
  onSealed?: (head: SignedTreeHead, sealed: number) => void;
}

export interface SequencerOptions {
  /** events sealed per transaction (one signed head each) */
  batchSize?: number;
  /** how long a lease lasts unrenewed; another instance takes over after it */
  leaseMs?: number;
  /** how often to look for events appended by other instances */
  pollMs?: number;
  /** after a wake, wait this long so events of several commits share one batch and one head */
  settleMs?: number;
}

export interface SealResult {
  sealed: number;
  head: SignedTreeHead | null;
  /** false when another live instance holds the lease */
  leader: boolean;
}

/**
 * Seals committed audit events into the Merkle tree: one instance at a time (a lease row taken by a
 * conditional update, renewed on every batch, taken over once it expires), in batches that each end
 * in a signed tree head. A batch is one transaction (positions, tree nodes, head), so a crash loses
 * nothing: the events stay unsealed and the next holder seals them. Appends never wait on it.
 */
export class Sequencer {
  readonly holder = randomUUID();
  readonly #deps: SequencerDeps;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #settleMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #busy = false;
  #again = false;
  #stopped = true;
  #unsubscribe: (() => void) | undefined;
  /** when the first append since the last tick woke this sequencer (performance.now()) */
  #wokenAt: number | undefined;
  /** a settle timer is set */
  #settling = false;

  constructor(deps: SequencerDeps, options: SequencerOptions = {}) {
    this.#deps = deps;
    this.#batchSize = options.batchSize ?? 1000;
    this.#leaseMs = options.leaseMs ?? 5_000;
    this.#pollMs = options.pollMs ?? 250;
    this.#settleMs = options.settleMs ?? 20;
  }

  /** Seals one batch if this instance holds (or can take) the lease. */
  async sealOnce(): Promise<SealResult> {
    const { store, clock, keys } = this.#deps;
    const key = await keys.current();
    const result = await store.db.transaction().execute(async (trx): Promise<SealResult> => {
      // The conditional update is the lease: it succeeds for the holder, or for anyone once the lease
      // ran out. On PostgreSQL it also locks the row until commit, so a second sequencer waits here and
      // then finds the lease taken; on SQLite the transaction already holds the write lock. Its term is
      // the database's time (ADR 0062): a sequencer on a host running ahead takes no live one's lease.
      const taken = await trx
        .updateTable('audit_sequencer')
        .set({ holder: this.holder, lease_until: dbTime(store.engine, this.#leaseMs) })
        .where('id', '=', 1)
        .where((eb) =>
          eb.or([
            eb('holder', '=', this.holder),
            eb('holder', 'is', null),
            eb('lease_until', 'is', null),
            eb('lease_until', '<', dbTime(store.engine)),
          ]),
        )
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 0) return { sealed: 0, head: null, leader: false };
      // The leaf hash was computed when the event was appended; sealing only places it. (An edit of the
      // event after its append no longer matches its sealed leaf, so verify names it.) Events written
      // before the ledger (0019) are hashed here, with their old chain link.
      const rows = await trx
        .selectFrom('audit_events')
        .select(['seq', 'leaf_hash', 'prev_hash'])
        .where('leaf_index', 'is', null)
        .orderBy('seq')
        .limit(this.#batchSize)
        .execute();
      if (rows.length === 0) return { sealed: 0, head: null, leader: true };
      const legacy = await hashLegacy(
        trx,
        rows.filter((r) => r.leaf_hash === null || r.prev_hash !== '').map((r) => Number(r.seq)),
      );

      const last = await trx
        .selectFrom('audit_tree_heads')
        .select(['tree_size', 'frontier'])
        .orderBy('tree_size', 'desc')
        .limit(1)
        .executeTakeFirst();
      const frontier = last
        ? Frontier.fromHashes(
            Number(last.tree_size),
            (JSON.parse(last.frontier) as string[]).map((h) => Buffer.from(h, 'hex')),
          )
        : new Frontier();
      const nodes: Array<{ level: number; idx: number; hash: string }> = [];
      const leaves: Array<{ seq: number; index: number; hash: string; rehashed: boolean }> = [];
      for (const row of rows) {
        const seq = Number(row.seq);
        const rehashed = legacy.get(seq);
        const hash = rehashed ?? (row.leaf_hash as string);
        leaves.push({ seq, index: frontier.size, hash, rehashed: rehashed !== undefined });
        frontier.append(Buffer.from(hash, 'hex'), (level, idx, h) => {
          nodes.push({ level, idx, hash: h.toString('hex') });
        });
      }
      await placeLeaves(trx, store.engine, leaves);
      for (let i = 0; i < nodes.length; i += 500)
        await trx
          .insertInto('audit_tree_nodes')
          .values(nodes.slice(i, i + 500))
          // A node's hash is fixed by its leaves; one left behind by leaves deleted around Ferry is stale.
          .onConflict((oc) =>
            oc.columns(['level', 'idx']).doUpdateSet((eb) => ({ hash: eb.ref('excluded.hash') })),
          )
          .execute();
      const head = signHead(
        {
          treeSize: frontier.size,
          rootHash: frontier.root().toString('hex'),
          timestamp: iso(clock.now()),
          keyId: key.id,
        },
        key.privateKey,
      );
      await trx
        .insertInto('audit_tree_heads')
        .values({
          tree_size: head.treeSize,
          root_hash: head.rootHash,
          frontier: JSON.stringify(frontier.hashes().map((h) => h.toString('hex'))),
          signed_at: head.timestamp,
          key_id: head.keyId,
          signature: head.signature,
        })
        .execute();
      return { sealed: rows.length, head, leader: true };
    });
    if (result.head) this.#deps.onSealed?.(result.head, result.sealed);
    return result;
  }

  /** Seals until nothing is left (or another instance holds the lease); returns how many it sealed. */
  async sealAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.sealOnce();
      total += r.sealed;
      if (r.sealed < this.#batchSize) return total;
      // Let requests run between batches: on SQLite every query completes synchronously, so without
      // this a backlog would be sealed in one stretch of microtasks and starve the HTTP server.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Polls (for other instances' events) and wakes on this process's appends. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#unsubscribe = onAuditAppended(() => this.wake());
    this.#schedule(0);
  }

  /** Run soon (after settleMs), not waiting for the next poll. */
  wake(): void {
    if (this.#stopped) return;
    const now = performance.now();
    this.#wokenAt ??= now;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    const waited = now - this.#wokenAt;
    if (waited < this.#settleMs) {
      // Only one wake sets the timer: one that every append pushed back would never fire under
      // steady appends.
      if (!this.#settling) {
        this.#settling = true;
        this.#schedule(this.#settleMs - waited);
      }
      return;
    }
    // Overdue: appends that never leave the microtask queue (SQLite in this process, back to back)
    // keep timers from firing, so the append that notices starts the batch.
    clearTimeout(this.#timer);
    this.#running = this.#tick(true);
  }

  /** Stops, and hands the lease back so another instance can seal at once (a crash waits it out). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    await this.#running;
    await this.#deps.store.db
      .updateTable('audit_sequencer')
      .set({ holder: null, lease_until: null })
      .where('id', '=', 1)
      .where('holder', '=', this.holder)
      .execute()
      .catch(() => {});
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#busy) return;
    clearTimeout(this.#timer);
    const woken = this.#settling;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick(woken);
    }, delayMs);
    this.#timer.unref();
  }

  /** `woken`: an append in this process says there is work (no need to look first). */
  async #tick(woken = false): Promise<void> {
    this.#busy = true;
    this.#again = false;
    this.#wokenAt = undefined;
    this.#settling = false;
    try {
      if (woken || (await this.#anyUnsealed())) await this.sealAll();
    } catch (err) {
      if (!isStorageFull(err)) this.#deps.log?.warn({ err }, 'audit sequencer: sealing failed; retrying');
    } finally {
      this.#busy = false;
      if (this.#again) {
        // Appends arrived during the batch: the next one starts at once if they waited a settle.
        this.#again = false;
        this.wake();
      } else this.#schedule(this.#pollMs);
    }
  }

  /** A cheap read (a partial index that is empty when all is sealed) before taking the lease. */
  async #anyUnsealed(): Promise<boolean> {
    const row = await this.#deps.store.db
      .selectFrom('audit_events')
      .select('seq')
      .where('leaf_index', 'is', null)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}

/** Leaf hashes of events appended before the ledger (their stored hash is the old chain's). */
async function hashLegacy(trx: Kysely<Database>, seqs: number[]): Promise<Map<number, string>> {
  const hashes = new Map<number, string>();
  for (let i = 0; i < seqs.length; i += 500) {
    const rows = await trx
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', 'in', seqs.slice(i, i + 500))
      .execute();
    for (const row of rows) hashes.set(Number(row.seq), leafHashOf(eventFromRow(row)));
  }
  return hashes;
}

/**
 * Gives each event its leaf index, set-based: a round trip (and, on SQLite, a statement prepared)
 * per event was most of a batch's time. PostgreSQL: one UPDATE … FROM unnest(arrays) per batch.
 * SQLite: one UPDATE … CASE per 400 events, found by rowid (its planner turns UPDATE … FROM a
 * VALUES list into a scan of the whole table).
 */
async function placeLeaves(
  trx: Kysely<Database>,
  engine: Store['engine'],
  leaves: Array<{ seq: number; index: number; hash: string; rehashed: boolean }>,
): Promise<void> {
  for (const l of leaves.filter((x) => x.rehashed))
    await trx.updateTable('audit_events').set({ leaf_hash: l.hash }).where('seq', '=', l.seq).execute();
  if (engine === 'postgres') {
    await sql`update audit_events set leaf_index = v.leaf_index
      from unnest(cast(${leaves.map((l) => l.seq)} as bigint[]), cast(${leaves.map((l) => l.index)} as bigint[]))
        as v(seq, leaf_index)
      where audit_events.seq = v.seq`.execute(trx);
    return;
  }
  for (let i = 0; i < leaves.length; i += 400) {
    const chunk = leaves.slice(i, i + 400);
    const cases = sql.join(
      chunk.map((l) => sql`when ${l.seq} then ${l.index}`),
      sql` `,
    );
    const seqs = sql.join(chunk.map((l) => sql`${l.seq}`));
    await sql`update audit_events set leaf_index = case seq ${cases} end where seq in (${seqs})`.execute(trx);
  }
}

/** How many events wait to be sealed, and since when (for /readyz and metrics). */
export async function unsealedBacklog(
  db: Kysely<Database>,
): Promise<{ count: number; oldest: string | null }> {
  const row = await db
    .selectFrom('audit_events')
    .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.min('time').as('oldest')])
    .where('leaf_index', 'is', null)
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), oldest: (row.oldest as string | null) ?? null };
}
