import type { Kysely } from 'kysely';

// Retention of the audit ledger (docs/audit.md, ADR 0034): the oldest sealed events are written to an
// archive as signed segments, then pruned from audit_events. One row per archived segment; the newest
// row's end_leaf is the checkpoint: leaves below it are no longer in the database, and the signed head
// of that size (kept in audit_tree_heads with its frontier) lets verification start there.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_archive_segments')
    .addColumn('first_leaf', 'integer', (c) => c.primaryKey())
    .addColumn('end_leaf', 'integer', (c) => c.notNull().unique()) // exclusive; a signed head's tree size
    .addColumn('events', 'integer', (c) => c.notNull())
    .addColumn('first_time', 'text', (c) => c.notNull())
    .addColumn('last_time', 'text', (c) => c.notNull())
    .addColumn('destination', 'text', (c) => c.notNull()) // e.g. file:/srv/archive, s3://bucket/prefix
    .addColumn('name', 'text', (c) => c.notNull()) // the segment's base name there
    .addColumn('events_sha256', 'text', (c) => c.notNull())
    .addColumn('manifest_sha256', 'text', (c) => c.notNull())
    .addColumn('archived_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_archive_segments').execute();
}
