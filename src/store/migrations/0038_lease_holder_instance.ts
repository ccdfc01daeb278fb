import type { Kysely } from 'kysely';

// The instance (worker_instances id) whose heartbeat vouches for a lease's holder: a lease held by an
// instance that stopped beating (kill -9) is taken over at once, as its outbox claims are, not after
// its term (docs/decisions/0042). Null for holders without a heartbeat (the CLI): those run out.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('leases').addColumn('holder_instance', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('leases').dropColumn('holder_instance').execute();
}
