import { type Kysely, sql } from 'kysely';

// Detections and alerts (docs/activity.md, "Detections and alerts"): spike counters per rule, subject
// and window; alerts (one row per deduplication key and window); the sinks they go to, with their
// secrets sealed; one delivery row per alert and sink; and the position in the audit trail the
// Ferry-side detections have read up to.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('detection_counts')
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('window_start', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('detection_counts_pk', ['rule', 'subject', 'window_start'])
    .execute();
  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('account', 'text')
    .addColumn('dedup_key', 'text', (c) => c.notNull())
    .addColumn('dedup_slot', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('occurrences', 'integer', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('suppressed_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('alerts_dedup_unique', ['dedup_key', 'dedup_slot'])
    .execute();
  await db.schema.createIndex('alerts_created_at').on('alerts').columns(['created_at']).execute();
  await db.schema
    .createTable('alert_sinks')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('min_severity', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('alert_deliveries')
    .addColumn('alert_id', 'text', (c) => c.notNull())
    .addColumn('sink', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(sql`0`))
    .addColumn('last_error', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('delivered_at', 'text')
    .addPrimaryKeyConstraint('alert_deliveries_pk', ['alert_id', 'sink'])
    .execute();
  await db.schema
    .createIndex('alert_deliveries_sink_delivered')
    .on('alert_deliveries')
    .columns(['sink', 'delivered_at'])
    .execute();
  await db.schema
    .createTable('detection_cursors')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('position', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['detection_cursors', 'alert_deliveries', 'alert_sinks', 'alerts', 'detection_counts'])
    await db.schema.dropTable(t).execute();
}
