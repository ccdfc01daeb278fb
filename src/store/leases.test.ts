import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { ageHeartbeat, dbNow, setLeaseTerm } from '../../test/support/db-time.js';
import { gate } from '../../test/support/gate.js';
import { migratedStore } from '../../test/support/migrated-store.js';
import { LeaseBusy, LeaseLost, withLease } from './leases.js';
import { openStore, type Store } from './open.js';
import { heartbeat } from './outbox.js';

/** A holder that keeps the lease until `release` is called (a push in flight). */
function holdLease(store: Store, name: string, instanceId: string | undefined) {
  const released = gate();
  const taken = gate();
  const done = withLease(
    store,
    name,
    async () => {
      taken.open();
      await released.opened;
    },
    { leaseMs: 15_000, instanceId },
  );
  return { holding: taken.opened, release: released.open, done };
}

describe.each(ENGINES)('leases of dead and live instances (%s)', (engine) => {
  const database = migratedStore(engine);
  let store: Store;
  beforeAll(() => {
    store = database.store;
  });
  beforeEach(async () => {
    await store.db.deleteFrom('leases').execute();
    await store.db.deleteFrom('worker_instances').execute();
  });

  const tryLease = (instanceId: string) =>
    withLease(store, 'push', async () => 'ran', { instanceId, waitMs: 30 });

  it('a lease whose instance stopped heartbeating (kill -9) is taken 5 s after its last beat, not after its 15 s term', async () => {
    await heartbeat(store, 'dead');
    await heartbeat(store, 'survivor');
    const dead = holdLease(store, 'push', 'dead');
    await dead.holding;
    // 4 s after its last beat 'dead' may only be slow: its lease holds.
    await ageHeartbeat(store, 'dead', 4_000);
    await expect(tryLease('survivor')).rejects.toBeInstanceOf(LeaseBusy);
    // Its heartbeat is over 5 s old: dead, by the outbox's rule. Most of its term was left.
    await ageHeartbeat(store, 'dead', 5_001);
    const row = await store.db
      .selectFrom('leases')
      .selectAll()
      .where('name', '=', 'push')
      .executeTakeFirstOrThrow();
    expect(row.holder_instance).toBe('dead');
    expect(row.lease_until! > (await dbNow(store))).toBe(true);
    expect(await tryLease('survivor')).toBe('ran');
    // The survivor left it free; the old holder's late release clears nothing of anyone else's.
    dead.release();
    await dead.done;
    expect(await tryLease('survivor')).toBe('ran');
  });

  it('a holder whose instance beats keeps its lease; one without a heartbeat (the CLI) keeps it for its term', async () => {
    await heartbeat(store, 'alive');
    await heartbeat(store, 'other');
    const alive = holdLease(store, 'push', 'alive');
    await alive.holding;
    // (a second of margin: real time passes between the statements)
    for (const age of [0, 3_000, 4_000]) {
      await ageHeartbeat(store, 'alive', age);
      await expect(tryLease('other')).rejects.toBeInstanceOf(LeaseBusy);
    }
    alive.release();
    await alive.done;

    const cli = holdLease(store, 'push', undefined);
    await cli.holding;
    // No heartbeat row to go stale: only its 15 s term frees it (renewals run every 5 s of real time).
    await setLeaseTerm(store, 'push', 5_000);
    await expect(tryLease('other')).rejects.toBeInstanceOf(LeaseBusy);
    await setLeaseTerm(store, 'push', -1);
    expect(await tryLease('other')).toBe('ran');
    cli.release();
    await cli.done;
  });

  it('a burst of acquirers on live instances, after a dead holder, has exactly one holder at a time', async () => {
    const others = [openStore(database.url, { poolSize: 4 }), openStore(database.url, { poolSize: 4 })];
    try {
      await heartbeat(store, 'dead');
      const dead = holdLease(store, 'push', 'dead');
      await dead.holding;
      await ageHeartbeat(store, 'dead', 6_000);
      const instances = ['i-0', 'i-1', 'i-2'];
      for (const id of instances) await heartbeat(store, id);
      let inside = 0;
      let most = 0;
      let ran = 0;
      const work = (s: Store, instanceId: string) =>
        withLease(
          s,
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
      // the live instances beat on while the burst runs (each worker beats every second)
      const beating = setInterval(() => {
        for (const id of instances) void heartbeat(store, id).catch(() => {});
      }, 500);
      try {
        await Promise.all(Array.from({ length: 24 }, (_, i) => work(stores[i % 3]!, instances[i % 3]!)));
      } finally {
        clearInterval(beating);
      }
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

describe.each(ENGINES)('a holder learns it lost its lease (%s)', (engine) => {
  const database = migratedStore(engine);
  let store: Store;
  beforeAll(() => {
    store = database.store;
  });
  beforeEach(async () => {
    await store.db.deleteFrom('leases').execute();
  });

  it('when another holder takes the lease of an instance taken for dead, the first is aborted before its next effect', async () => {
    await store.db.deleteFrom('worker_instances').execute();
    await heartbeat(store, 'stalled');
    const effects: string[] = [];
    let reason: unknown;
    const first = withLease(
      store,
      'push',
      async (signal) => {
        effects.push('first:1');
        // work in steps, each checking the signal before its outside effect
        for (let i = 2; ; i++) {
          await new Promise((r) => setTimeout(r, 20));
          if (signal.aborted) {
            reason = signal.reason;
            signal.throwIfAborted();
          }
          effects.push(`first:${i}`);
        }
      },
      { leaseMs: 300, instanceId: 'stalled' },
    );
    const firstOutcome = first.then(
      () => null,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 50));
    // the first holder's instance stopped beating (a paused process): taken for dead, its renewals
    // notwithstanding
    await ageHeartbeat(store, 'stalled', 6_000);
    const second = await withLease(
      store,
      'push',
      async (signal) => {
        effects.push('second');
        // stays while the first holder's renewal (every 100 ms) finds the lease gone
        await new Promise((r) => setTimeout(r, 300));
        expect(signal.aborted).toBe(false);
        return effects.length;
      },
      { leaseMs: 15_000, waitMs: 0 },
    );
    expect(await firstOutcome).toBeInstanceOf(LeaseLost);
    expect(reason).toBeInstanceOf(LeaseLost);
    expect((reason as Error).message).toMatch(/lease push lost: another holder has it/);
    // nothing of the first holder's happened after the second took over and its renewal noticed
    const stoppedAt = effects.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(effects.length).toBe(stoppedAt);
    expect(second).toBeGreaterThan(1);
    expect(effects.filter((e) => e === 'second')).toHaveLength(1);
  });

  it('a renewal that finds its row gone (or cannot write) aborts the holder too', async () => {
    const run = withLease(
      store,
      'archive',
      (signal) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      { leaseMs: 150 },
    );
    const outcome = run.then(
      () => null,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 20));
    await store.db.updateTable('leases').set({ holder: null }).where('name', '=', 'archive').execute();
    expect(String(await outcome)).toMatch(/lease archive lost/);
  });

  it('a holder that keeps its lease is never aborted', async () => {
    const aborted = await withLease(
      store,
      'steady',
      async (signal) => {
        await new Promise((r) => setTimeout(r, 400)); // eight renewals
        return signal.aborted;
      },
      { leaseMs: 150 },
    );
    expect(aborted).toBe(false);
  });
});
