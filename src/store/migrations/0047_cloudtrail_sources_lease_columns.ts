import type { Kysely } from 'kysely';

// cloudtrail_sources.lease_holder / lease_until have been neither read nor written since a source's
// sync lease became the `cloudtrail-source:<id>` row of leases (withLease, ADR 0055). Nothing indexes
// them, so both engines drop them in place (SQLite ≥ 3.35); a lease held in them when this runs is
// meaningless already.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('cloudtrail_sources').dropColumn('lease_holder').execute();
  await db.schema.alterTable('cloudtrail_sources').dropColumn('lease_until').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('cloudtrail_sources').addColumn('lease_holder', 'text').execute();
  await db.schema.alterTable('cloudtrail_sources').addColumn('lease_until', 'text').execute();
}
