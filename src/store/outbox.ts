import { randomFillSync } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { addMs, type Clock, iso } from '../clock.js';
import type { DomainEvent } from '../events.js';
import { dbTime } from './db-time.js';
import { insertRow } from './insert-row.js';
import type { Store } from './open.js';
import type { Database } from './schema.js';

let lastIdMs = 0;
let idCounter = 0;
/**
 * Random bytes for ids, filled 4 KiB at a time: a randomBytes(16) per id (one call into OpenSSL each)
 * was 2.4% of a SCIM create's CPU. Each id's bytes are used once; the whole id is formatted before the
 * pool is refilled, so a slice is never reused.
 */
const randomPool = randomFillSync(Buffer.alloc(4096));
let randomAt = 0;

/**
 * A UUIDv7 (RFC 9562) whose 12-bit rand_a is a counter, so ids made in this process sort in the order
 * they were made. claimEvents breaks created_at ties by id: with random ids, events written in the same
 * millisecond (e.g. one transaction's membership removals then group.deleted) came out in random order.
 */
function orderedId(): string {
  const now = Date.now();
  if (now > lastIdMs) {
    lastIdMs = now;
    idCounter = 0;
  } else if (++idCounter > 0xfff) {
    lastIdMs += 1; // 4096 ids in one millisecond: borrow the next one (RFC 9562 §6.2)
    idCounter = 0;
  }
  const b = randomPool.subarray(randomAt, randomAt + 16);
  b.writeUIntBE(lastIdMs, 0, 6);
  b[6] = 0x70 | (idCounter >> 8);
  b[7] = idCounter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  randomAt += 16;
  if (randomAt === randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The outbox's lanes, each claimed and handled on its own: revocation and offboarding ('urgent') never
 * wait behind bulk work (Identity Center pushes, notifications) however much of it is queued.
 */
export type Lane = 'urgent' | 'bulk';
export const LANES: readonly Lane[] = ['urgent', 'bulk'];

const URGENT_TYPES: ReadonlySet<string> = new Set([
  'user.deactivated',
  'user.deleted',
  'session.revoked',
  'aws.sessions-revoke-requested',
]);

export function laneOf(type: DomainEvent['type']): Lane {
  return URGENT_TYPES.has(type) ? 'urgent' : 'bulk';
}

type EnqueueListener = (lane: Lane) => void;
const enqueueListeners = new Set<EnqueueListener>();

/**
 * Called when this process enqueues an event (the worker wakes on it instead of waiting for its poll).
 * It runs before the transaction commits: on SQLite the drain it starts queues behind that commit on
 * the one connection; on PostgreSQL the `ferry_outbox` notification (sent at commit) is what counts.
 */
export function onEventEnqueued(listener: EnqueueListener): () => void {
  enqueueListeners.add(listener);
  return () => enqueueListeners.delete(listener);
}

/**
 * Records a domain event; call it with the transaction that makes the change it describes.
 * `notBefore` holds it back until then (e.g. the end of a PIM group membership, due at its expiry).
 */
export async function enqueueEvent(
  trx: Kysely<Database>,
  clock: Clock,
  event: DomainEvent,
  options: { notBefore?: string } = {},
): Promise<string> {
  const id = orderedId();
  const now = iso(clock.now());
  const lane = laneOf(event.type);
  await insertRow(trx, 'outbox', {
    id,
    type: event.type,
    payload: JSON.stringify(event),
    created_at: now,
    available_at: options.notBefore && options.notBefore > now ? options.notBefore : now,
    attempts: 0,
    lane,
  });
  for (const listener of enqueueListeners) listener(lane);
  return id;
}

/**
 * Records several domain events in one statement per 500 (e.g. a group created with its members: one
 * membership.changed each), with the transaction that makes the changes; the same rows as enqueueEvent.
 */
export async function enqueueEvents(
  trx: Kysely<Database>,
  clock: Clock,
  events: DomainEvent[],
): Promise<void> {
  const now = iso(clock.now());
  const lanes = new Set<Lane>();
  for (let i = 0; i < events.length; i += 500) {
    const rows = events.slice(i, i + 500).map((event) => {
      const lane = laneOf(event.type);
      lanes.add(lane);
      return {
        id: orderedId(),
        type: event.type,
        payload: JSON.stringify(event),
        created_at: now,
        available_at: now,
        attempts: 0,
        lane,
      };
    });
    await trx.insertInto('outbox').values(rows).execute();
  }
  for (const lane of lanes) for (const listener of enqueueListeners) listener(lane);
}

export interface ClaimedEvent {
  id: string;
  attempts: number;
  /** what the previous try failed with (failEvent), if one failed */
  lastError: string | null;
  /** when the change it describes was committed */
  createdAt: string;
  event: DomainEvent;
}

export interface ClaimOptions {
  /** only this lane's events (default: every lane) */
  lane?: Lane;
  /**
   * An instance whose heartbeat is older than this is dead: what it claimed is claimable at once,
   * not after its lease (default 5 s; heartbeats are every second, see heartbeat()).
   */
  deadAfterMs?: number;
  /**
   * The caller has nothing of this lane in flight: events still claimed by `workerId` are orphans (their
   * completion or release never reached the database, e.g. the connection died under it, or the claim
   * committed but its answer was lost) and are claimable at once, not after their lease. Without it a
   * live instance sat out its own 60 s lease after every database outage (issue 16 point 5).
   */
  reclaimOwn?: boolean;
}

export const DEAD_AFTER_MS = 5_000;

/**
 * Leases up to `limit` due events to one worker. On PostgreSQL the rows are picked with
 * FOR UPDATE SKIP LOCKED, so several instances drain one outbox without handing an event to two
 * workers at once; an expired lease, or a claim by an instance that stopped heartbeating, makes the
 * event claimable again (at-least-once delivery).
 */
export async function claimEvents(
  store: Store,
  clock: Clock,
  workerId: string,
  limit: number,
  leaseMs: number,
  options: ClaimOptions = {},
): Promise<ClaimedEvent[]> {
  const now = iso(clock.now());
  const until = iso(addMs(clock.now(), leaseMs));
  // Heartbeats are database time (heartbeat()): so is what makes one old, whatever this host's clock says.
  const deadSince = dbTime(store.engine, -(options.deadAfterMs ?? DEAD_AFTER_MS));
  // One statement (no BEGIN/SELECT/UPDATE/COMMIT): the urgent lane's latency is mostly round trips.
  // On PostgreSQL the subquery locks what it picks (SKIP LOCKED), so concurrent claims never overlap.
  let pick = store.db
    .selectFrom('outbox')
    .select('id')
    .where('processed_at', 'is', null)
    .where('available_at', '<=', now)
    .where((eb) =>
      eb.or([
        eb('claimed_until', 'is', null),
        eb('claimed_until', '<', now),
        eb(
          'claimed_by',
          'in',
          eb.selectFrom('worker_instances').select('id').where('heartbeat_at', '<', deadSince),
        ),
        ...(options.reclaimOwn ? [eb('claimed_by', '=', workerId)] : []),
      ]),
    )
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit);
  if (options.lane) pick = pick.where('lane', '=', options.lane);
  if (store.engine === 'postgres') pick = pick.forUpdate().skipLocked();
  const rows = await store.db
    .updateTable('outbox')
    .set({ claimed_by: workerId, claimed_until: until, attempts: sql<number>`attempts + 1` })
    .where('id', 'in', pick)
    .returningAll()
    .execute();
  return rows
    .sort((a, b) =>
      a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1,
    )
    .map((r) => ({
      id: r.id,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: r.created_at,
      event: JSON.parse(r.payload) as DomainEvent,
    }));
}

/**
 * Records that this instance is alive (worker_instances). A worker beats every second; one that
 * stopped (kill -9, a lost host) is dead DEAD_AFTER_MS later and its claims are taken over. The beat is
 * the database's time (dbTime), as is every judgement of its age: a host whose clock runs behind would
 * otherwise look dead to the others while it beats, and one running ahead alive after it stopped.
 */
export async function heartbeat(store: Store, instanceId: string): Promise<void> {
  const now = dbTime(store.engine);
  await store.db
    .insertInto('worker_instances')
    .values({ id: instanceId, started_at: now, heartbeat_at: now })
    .onConflict((oc) => oc.column('id').doUpdateSet({ heartbeat_at: now }))
    .execute();
}

/** A clean stop: the instance's row goes (its claims were completed or released before). */
export async function retireInstance(db: Kysely<Database>, instanceId: string): Promise<void> {
  await db.deleteFrom('worker_instances').where('id', '=', instanceId).execute();
}

/** Forgets instances dead for a day (their claims were taken over long ago). */
export async function forgetDeadInstances(store: Store): Promise<void> {
  await store.db
    .deleteFrom('worker_instances')
    .where('heartbeat_at', '<', dbTime(store.engine, -86_400_000))
    .execute();
}

export async function completeEvent(store: Store, clock: Clock, id: string, workerId: string): Promise<void> {
  await store.db
    .updateTable('outbox')
    .set({ processed_at: iso(clock.now()), claimed_until: null, last_error: null })
    .where('id', '=', id)
    .where('claimed_by', '=', workerId)
    .execute();
}

/** Releases a failed event for a later retry with exponential backoff (capped at 10 minutes). */
export async function failEvent(
  store: Store,
  clock: Clock,
  id: string,
  workerId: string,
  attempts: number,
  error: string,
): Promise<void> {
  const delay = Math.min(600_000, 1_000 * 2 ** Math.min(attempts, 10));
  await store.db
    .updateTable('outbox')
    .set({
      claimed_until: null,
      claimed_by: null,
      available_at: iso(addMs(clock.now(), delay)),
      last_error: error.slice(0, 2000),
    })
    .where('id', '=', id)
    .where('claimed_by', '=', workerId)
    .execute();
}
