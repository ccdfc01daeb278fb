import { sql } from 'kysely';
import { dbTime } from '../../src/store/db-time.js';
import type { Store } from '../../src/store/open.js';

/**
 * Lease terms and heartbeats are the database's time (ADR 0062), so tests move them there rather
 * than on a ManualClock: these set a row's time relative to the database's now.
 */
export async function dbNow(store: Store): Promise<string> {
  const { rows } = await sql<{ now: string }>`select ${dbTime(store.engine)} as now`.execute(store.db);
  return rows[0]!.now;
}

/** As if `instanceId` last beat `ms` ago. */
export async function ageHeartbeat(store: Store, instanceId: string, ms: number): Promise<void> {
  await store.db
    .updateTable('worker_instances')
    .set({ heartbeat_at: dbTime(store.engine, -ms) })
    .where('id', '=', instanceId)
    .execute();
}

/** Lease `name` runs out `ms` from now (negative: it ran out that long ago). */
export async function setLeaseTerm(store: Store, name: string, ms: number): Promise<void> {
  await store.db
    .updateTable('leases')
    .set({ lease_until: dbTime(store.engine, ms) })
    .where('name', '=', name)
    .execute();
}
