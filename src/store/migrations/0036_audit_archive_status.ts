import type { Kysely } from 'kysely';

// The scheduled archive's health (docs/audit.md "Retention and archive", ADR 0048): one row per archive
// destination, shared by every instance, like audit_exports for the head export. A destination that
// fails (directory unwritable, S3 unreachable) is retried with backoff and reported in /readyz and
// /metrics from this row.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_archive_status')
    .addColumn('destination', 'text', (c) => c.primaryKey())
    .addColumn('archived_at', 'text') // the last run that archived a segment
    .addColumn('checked_at', 'text') // the last run that succeeded (archived or found nothing due)
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)) // failures since the last success
    .addColumn('next_attempt_at', 'text')
    .addColumn('last_error', 'text')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_archive_status').execute();
}
