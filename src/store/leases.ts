import { randomUUID } from 'node:crypto';
import { addMs, type Clock, iso } from '../clock.js';
import type { Store } from './open.js';

export interface LeaseOptions {
  /** how long the lease lasts unrenewed (it is renewed every third of it while held) */
  leaseMs?: number;
  /** how long to wait for another holder before giving up (then LeaseBusy) */
  waitMs?: number;
}

export class LeaseBusy extends Error {
  constructor(readonly lease: string) {
    super(`lease ${lease} is held by another instance`);
  }
}

/**
 * Runs `fn` while holding the named lease across every instance on the database: a conditional update
 * that succeeds for nobody else until it is released or has run out unrenewed (a holder that died).
 * For work with outside effects that must not run twice at once (pushing to Identity Center).
 */
export async function withLease<T>(
  store: Store,
  clock: Clock,
  name: string,
  fn: () => Promise<T>,
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
  const take = async () => {
    const now = clock.now();
    const r = await store.db
      .updateTable('leases')
      .set({ holder, lease_until: iso(addMs(now, leaseMs)) })
      .where('name', '=', name)
      .where((eb) =>
        eb.or([
          eb('holder', 'is', null),
          eb('holder', '=', holder),
          eb('lease_until', 'is', null),
          eb('lease_until', '<', iso(now)),
        ]),
      )
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  };
  for (let wait = 5; !(await take()); wait = Math.min(wait * 2, 100)) {
    if (performance.now() > giveUpAt) throw new LeaseBusy(name);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const renew = setInterval(() => void take().catch(() => {}), Math.max(50, Math.floor(leaseMs / 3)));
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await store.db
      .updateTable('leases')
      .set({ holder: null, lease_until: null })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute()
      .catch(() => {});
  }
}
