import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { ManualClock } from '../clock.js';
import { LeaseBusy, withLease } from './leases.js';
import { migrateToLatest } from './migrate.js';
import { openStore, type Store } from './open.js';
import { heartbeat } from './outbox.js';

/** A holder that keeps the lease until `release` is called (a push in flight). */
function holdLease(store: Store, clock: ManualClock, name: string, instanceId: string | undefined) {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let taken!: () => void;
  const holding = new Promise<void>((r) => {
    taken = r;
  });
  const done = withLease(
    store,
    clock,
    name,
    async () => {
      taken();
      await released;
    },
    { leaseMs: 15_000, instanceId },
  );
  return { holding, release, done };
}

describe.each(ENGINES)('leases of dead and live instances (%s)', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;

  beforeAll(async () => {
    tdb = await createTestDatabase(engine);
    store = openStore(tdb.url, { poolSize: 4 });
    await migrateToLatest(store);
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  beforeEach(async () => {
    await store.db.deleteFrom('leases').execute();
    await store.db.deleteFrom('worker_instances').execute();
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
  });

  const tryLease = (instanceId: string) =>
    withLease(store, clock, 'push', async () => 'ran', { instanceId, waitMs: 30 });

  it('a lease whose instance stopped heartbeating (kill -9) is taken 5 s after its last beat, not after its 15 s term', async () => {
    await heartbeat(store.db, clock, 'dead');
    await heartbeat(store.db, clock, 'survivor');
    const dead = holdLease(store, clock, 'push', 'dead');
    await dead.holding;
    // 4 s after its last beat 'dead' may only be slow: its lease holds.
    clock.advance(4_000);
    await heartbeat(store.db, clock, 'survivor');
    await expect(tryLease('survivor')).rejects.toBeInstanceOf(LeaseBusy);
    // Its heartbeat is over 5 s old: dead, by the outbox's rule. 10 s of its term were left.
    clock.advance(1_001);
    await heartbeat(store.db, clock, 'survivor');
    const row = await store.db
      .selectFrom('leases')
      .selectAll()
      .where('name', '=', 'push')
      .executeTakeFirstOrThrow();
    expect(row.holder_instance).toBe('dead');
    expect(row.lease_until! > clock.now().toISOString()).toBe(true);
    expect(await tryLease('survivor')).toBe('ran');
    // The survivor left it free; the old holder's late release clears nothing of anyone else's.
    dead.release();
    await dead.done;
    expect(await tryLease('survivor')).toBe('ran');
  });

  it('a holder whose instance beats keeps its lease; one without a heartbeat (the CLI) keeps it for its term', async () => {
    await heartbeat(store.db, clock, 'alive');
    await heartbeat(store.db, clock, 'other');
    const alive = holdLease(store, clock, 'push', 'alive');
    await alive.holding;
    for (let s = 0; s < 12; s++) {
      clock.advance(1_000);
      await heartbeat(store.db, clock, 'alive');
      await heartbeat(store.db, clock, 'other');
      await expect(tryLease('other')).rejects.toBeInstanceOf(LeaseBusy);
    }
    alive.release();
    await alive.done;

    const cli = holdLease(store, clock, 'push', undefined);
    await cli.holding;
    // No heartbeat row to go stale: only its 15 s term frees it (renewals run every 5 s of real time).
    clock.advance(10_000);
    await heartbeat(store.db, clock, 'other');
    await expect(tryLease('other')).rejects.toBeInstanceOf(LeaseBusy);
    clock.advance(5_001);
    await heartbeat(store.db, clock, 'other');
    expect(await tryLease('other')).toBe('ran');
    cli.release();
    await cli.done;
  });

  it('a burst of acquirers on live instances, after a dead holder, has exactly one holder at a time', async () => {
    const others = [openStore(tdb.url, { poolSize: 4 }), openStore(tdb.url, { poolSize: 4 })];
    try {
      await heartbeat(store.db, clock, 'dead');
      const dead = holdLease(store, clock, 'push', 'dead');
      await dead.holding;
      clock.advance(6_000);
      const instances = ['i-0', 'i-1', 'i-2'];
      for (const id of instances) await heartbeat(store.db, clock, id);
      let inside = 0;
      let most = 0;
      let ran = 0;
      const work = (s: Store, instanceId: string) =>
        withLease(
          s,
          clock,
          'push',
          async () => {
            inside += 1;
            most = Math.max(most, inside);
            // A few round trips while holding it, as a push does.
            for (let q = 0; q < 3; q++) await s.db.selectFrom('leases').select('holder').execute();
            await new Promise((r) => setTimeout(r, 5));
            inside -= 1;
            ran += 1;
          },
          { instanceId, leaseMs: 15_000 },
        );
      const stores = [store, ...others];
      await Promise.all(Array.from({ length: 24 }, (_, i) => work(stores[i % 3]!, instances[i % 3]!)));
      expect(ran).toBe(24);
      expect(most).toBe(1);
      dead.release();
      await dead.done;
      const row = await store.db
        .selectFrom('leases')
        .selectAll()
        .where('name', '=', 'push')
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ name: 'push', holder: null, lease_until: null, holder_instance: null });
    } finally {
      await Promise.all(others.map((s) => s.close()));
    }
  });
});
