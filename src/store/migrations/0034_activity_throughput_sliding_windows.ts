import { type Kysely, sql } from 'kysely';

// Issue 20, the rest (ADR 0040):
// - CloudTrail records: the per-person and per-role indexes leave out the rows they can never find
//   (records no person made: AWS services, IAM users, root; records of no role). On a real trail those
//   are a large share, and every index a row enters costs ingestion time. The timeline and least
//   privilege queries name a user or a role, so they still use them (checked with EXPLAIN on both engines).
// - Spike detections count in sliding windows: each counted event is kept (rule, subject, time) until it
//   is older than the rule's window, and the alert fires when the events in (t − window, t] reach the
//   threshold. `weight` lets one row stand for several events (SCIM authentication failures, aggregated).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index cloudtrail_records_user`.execute(db);
  await sql`drop index cloudtrail_records_role`.execute(db);
  await sql`create index cloudtrail_records_user on cloudtrail_records (user_id, event_time) where user_id is not null`.execute(
    db,
  );
  await sql`create index cloudtrail_records_role on cloudtrail_records (account, role_name, event_time) where role_name is not null`.execute(
    db,
  );
  await db.schema
    .createTable('detection_events')
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'text', (c) => c.notNull())
    .addColumn('weight', 'integer', (c) => c.notNull().defaultTo(sql`1`))
    .addPrimaryKeyConstraint('detection_events_pk', ['rule', 'subject', 'evidence'])
    .execute();
  await db.schema
    .createIndex('detection_events_window')
    .on('detection_events')
    .columns(['rule', 'subject', 'occurred_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('detection_events').execute();
  await sql`drop index cloudtrail_records_user`.execute(db);
  await sql`drop index cloudtrail_records_role`.execute(db);
  await sql`create index cloudtrail_records_user on cloudtrail_records (user_id, event_time)`.execute(db);
  await sql`create index cloudtrail_records_role on cloudtrail_records (account, role_name, event_time)`.execute(
    db,
  );
}
