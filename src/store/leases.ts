import { randomUUID } from 'node:crypto';
import { dbTime } from './db-time.js';
import type { Store } from './open.js';
import { DEAD_AFTER_MS } from './outbox.js';

export interface LeaseOptions {
  /** how long the lease lasts unrenewed (it is renewed every third of it while held) */
  leaseMs?: number;
  /** how long to wait for another holder before giving up (then LeaseBusy) */
  waitMs?: number;
  /**
   * This process's instance id (the one its worker heartbeats under, worker_instances): once that
   * heartbeat is older than `deadAfterMs` the instance is dead and its lease is taken over at once,
   * not after the rest of its term. Without one (the CLI) the lease only runs out.
   */
  instanceId?: string;
  /** how old a heartbeat makes its instance dead (default DEAD_AFTER_MS, the outbox's rule) */
  deadAfterMs?: number;
}

export class LeaseBusy extends Error {
  constructor(readonly lease: string) {
    super(`lease ${lease} is held by another instance`);
  }
}

/**
 * The holder lost its lease while working: a renewal found it held by another (its term ran out, or
 * its instance was taken for dead) or could not reach the database. The reason of the signal that
 * `withLease` gives the holder; work with outside effects stops at the next check of that signal.
 */
export class LeaseLost extends Error {
  constructor(
    readonly lease: string,
    detail: string,
  ) {
    super(`lease ${lease} lost: ${detail}`);
    this.name = 'LeaseLost';
  }
}

/**
 * Runs `fn` while holding the named lease across every instance on the database: a conditional update
 * that succeeds for nobody else until it is released, has run out unrenewed, or its holder's instance
 * stopped heartbeating (a holder killed with -9: taken over seconds after its last beat, not its term).
 * A holder whose instance still beats keeps it.
 * For work with outside effects that must not run twice at once (pushing to Identity Center).
 *
 * `fn` gets a signal that aborts (reason: LeaseLost) as soon as a renewal fails or finds the lease no
 * longer this holder's: from then on another instance may hold it, so the holder must stop before its
 * next outside effect (check `signal.throwIfAborted()`, or pass the signal to the I/O).
 */
export async function withLease<T>(
  store: Store,
  name: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options: LeaseOptions = {},
): Promise<T> {
  const holder = randomUUID();
  const leaseMs = options.leaseMs ?? 15_000;
  const giveUpAt = performance.now() + (options.waitMs ?? 30_000);
  await store.db
    .insertInto('leases')
    .values({ name, holder: null, lease_until: null })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const { engine } = store;
  const take = async () => {
    // On PostgreSQL concurrent takers queue on the row and each re-checks it as the winner left it
    // (read committed): the winner's instance beats, so no second taker matches. Terms and heartbeats
    // are the database's time (ADR 0062): holders on hosts whose clocks disagree judge them alike.
    const r = await store.db
      .updateTable('leases')
      .set({ holder, lease_until: dbTime(engine, leaseMs), holder_instance: options.instanceId ?? null })
      .where('name', '=', name)
      .where((eb) =>
        eb.or([
          eb('holder', 'is', null),
          eb('holder', '=', holder),
          eb('lease_until', 'is', null),
          eb('lease_until', '<', dbTime(engine)),
          eb(
            'holder_instance',
            'in',
            eb
              .selectFrom('worker_instances')
              .select('id')
              .where('heartbeat_at', '<', dbTime(engine, -(options.deadAfterMs ?? DEAD_AFTER_MS))),
          ),
        ]),
      )
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  };
  for (let wait = 5; !(await take()); wait = Math.min(wait * 2, 100)) {
    if (performance.now() > giveUpAt) throw new LeaseBusy(name);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  // A renewal extends only this holder's lease: a lease someone else took in the meantime (and maybe
  // let go again) is lost, never silently taken back.
  const lost = new AbortController();
  const renewOnce = async () => {
    const r = await store.db
      .updateTable('leases')
      .set({ lease_until: dbTime(engine, leaseMs) })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new LeaseLost(name, 'another holder has it');
  };
  let renewing = false;
  const renew = setInterval(
    () => {
      if (renewing || lost.signal.aborted) return;
      renewing = true;
      renewOnce()
        .catch((err: unknown) => {
          clearInterval(renew);
          lost.abort(
            err instanceof LeaseLost
              ? err
              : new LeaseLost(name, `renewal failed (${(err as Error).message ?? String(err)})`),
          );
        })
        .finally(() => {
          renewing = false;
        });
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  renew.unref();
  try {
    return await fn(lost.signal);
  } finally {
    clearInterval(renew);
    await store.db
      .updateTable('leases')
      .set({ holder: null, lease_until: null, holder_instance: null })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute()
      .catch(() => {});
  }
}
