import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { ageHeartbeat, setLeaseTerm } from '../../test/support/db-time.js';
import { migratedStore } from '../../test/support/migrated-store.js';
import { ManualClock } from '../clock.js';
import type { DomainEvent } from '../events.js';
import { withLease } from './leases.js';
import { openStore, type Store } from './open.js';
import { claimEvents, enqueueEvent, heartbeat, onEventEnqueued, retireInstance } from './outbox.js';

const created = (i: number): DomainEvent => ({
  type: 'user.created',
  userId: `u-${i}`,
  userName: `p${i}@contoso.example`,
});
const deactivated = (i: number): DomainEvent => ({
  type: 'user.deactivated',
  userId: `u-${i}`,
  userName: `p${i}@contoso.example`,
});

describe.each(ENGINES)('outbox lanes, dead instances and leases (%s)', (engine) => {
  const database = migratedStore(engine);
  let store: Store;
  let clock: ManualClock;
  beforeAll(() => {
    store = database.store;
  });
  beforeEach(async () => {
    await store.db.deleteFrom('outbox').execute();
    await store.db.deleteFrom('worker_instances').execute();
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
  });

  const enqueue = (events: DomainEvent[]) =>
    store.db.transaction().execute(async (trx) => {
      const ids: string[] = [];
      for (const e of events) ids.push(await enqueueEvent(trx, clock, e));
      return ids;
    });

  it('an offboarding queued behind 200 bulk events is claimed first by the urgent lane, and bulk never takes it', async () => {
    await enqueue(Array.from({ length: 200 }, (_, i) => created(i)));
    const [urgent] = await enqueue([deactivated(7)]);
    const fromUrgent = await claimEvents(store, clock, 'w-1', 16, 60_000, { lane: 'urgent' });
    expect(fromUrgent.map((e) => e.id)).toEqual([urgent]);
    const fromBulk = await claimEvents(store, clock, 'w-2', 500, 60_000, { lane: 'bulk' });
    expect(fromBulk).toHaveLength(200);
    expect(fromBulk.every((e) => e.event.type === 'user.created')).toBe(true);
    const lanes = await store.db.selectFrom('outbox').select(['type', 'lane']).distinct().execute();
    expect(lanes.sort((a, b) => a.type.localeCompare(b.type))).toEqual([
      { type: 'user.created', lane: 'bulk' },
      { type: 'user.deactivated', lane: 'urgent' },
    ]);
  });

  it('what a dead instance claimed is taken over once its heartbeat is 5 s old, long before its lease ends', async () => {
    await heartbeat(store, 'dead');
    await heartbeat(store, 'alive');
    const [id] = await enqueue([deactivated(1)]);
    expect(await claimEvents(store, clock, 'dead', 10, 60_000)).toHaveLength(1);
    // Still beating (4 s ago): its claim holds.
    await ageHeartbeat(store, 'dead', 4_000);
    expect(await claimEvents(store, clock, 'alive', 10, 60_000)).toEqual([]);
    // 'dead' stopped beating (kill -9): 5 s after its last beat the claim is free, 55 s before the lease.
    await ageHeartbeat(store, 'dead', 5_001);
    const retaken = await claimEvents(store, clock, 'alive', 10, 60_000);
    expect(retaken.map((e) => ({ id: e.id, attempts: e.attempts }))).toEqual([{ id, attempts: 2 }]);
  });

  it('instances whose clocks disagree by minutes judge heartbeats alike: a live one is never taken for dead', async () => {
    // 'behind' runs 10 minutes slow, 'ahead' 10 minutes fast. Before heartbeats were database time,
    // 'ahead' read the beat 'behind' had just written as 20 minutes old, and took its claims.
    const behind = clock;
    behind.set('2026-03-02T08:50:00.000Z');
    const ahead = new ManualClock('2026-03-02T09:10:00.000Z');
    await heartbeat(store, 'behind');
    await heartbeat(store, 'ahead');
    await enqueue([deactivated(1)]);
    // a claim term longer than the skew (claim terms are still each host's time): the beat decides
    expect(await claimEvents(store, behind, 'behind', 10, 3_600_000)).toHaveLength(1);
    await heartbeat(store, 'behind');
    expect(await claimEvents(store, ahead, 'ahead', 10, 60_000)).toEqual([]);
    // and it stops beating: dead 5 s later for every instance, whatever its clock says
    await ageHeartbeat(store, 'behind', 5_001);
    expect(await claimEvents(store, ahead, 'ahead', 10, 60_000)).toHaveLength(1);
  });

  it('a live instance keeps its claims, and a claimer that never registered keeps its lease', async () => {
    await heartbeat(store, 'a');
    await enqueue([created(1), created(2)]);
    expect(await claimEvents(store, clock, 'a', 1, 60_000)).toHaveLength(1);
    expect(await claimEvents(store, clock, 'unregistered', 1, 60_000)).toHaveLength(1);
    // 'a' beats on (its beat is always under a second old); 30 s pass on the clock
    clock.advance(30_000);
    await heartbeat(store, 'a');
    expect(await claimEvents(store, clock, 'b', 10, 60_000)).toEqual([]);
    await retireInstance(store.db, 'a');
    const left = await store.db.selectFrom('worker_instances').select('id').execute();
    expect(left).toEqual([]);
  });

  it('tells this process’s worker the lane of every event enqueued', async () => {
    const seen: string[] = [];
    const off = onEventEnqueued((lane) => seen.push(lane));
    try {
      await enqueue([created(1), deactivated(1)]);
    } finally {
      off();
    }
    await enqueue([created(2)]);
    expect(seen).toEqual(['bulk', 'urgent']);
  });

  it('a named lease has one holder at a time across stores, and passes on when released', async () => {
    const other = openStore(database.url, { poolSize: 2 });
    try {
      let inside = 0;
      let most = 0;
      const work = (s: Store) =>
        withLease(s, 'test-lease', async () => {
          inside += 1;
          most = Math.max(most, inside);
          await new Promise((r) => setTimeout(r, 15));
          inside -= 1;
        });
      await Promise.all(Array.from({ length: 6 }, (_, i) => work(i % 2 ? other : store)));
      expect(most).toBe(1);
      const row = await store.db
        .selectFrom('leases')
        .selectAll()
        .where('name', '=', 'test-lease')
        .executeTakeFirstOrThrow();
      expect(row.holder).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('a lease whose holder died is taken over once it ran out unrenewed', async () => {
    await store.db
      .insertInto('leases')
      .values({ name: 'dead-lease', holder: 'gone', lease_until: null })
      .execute();
    await setLeaseTerm(store, 'dead-lease', 10_000);
    await expect(withLease(store, 'dead-lease', async () => 'ran', { waitMs: 50 })).rejects.toThrow(
      /held by another instance/,
    );
    await setLeaseTerm(store, 'dead-lease', -1);
    expect(await withLease(store, 'dead-lease', async () => 'ran', { waitMs: 50 })).toBe('ran');
  });
});
