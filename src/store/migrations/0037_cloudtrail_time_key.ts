import { type Kysely, PostgresAdapter, sql } from 'kysely';

// CloudTrail ingestion throughput (issue 20 point 7, ADR 0047):
// - cloudtrail_records is keyed by (event_time, event_id) instead of event_id alone. eventIDs are random
//   UUIDs, so every insert into an index led by them lands on a random page of a tree as large as the
//   table: measured on SQLite at 25 µs/row on an empty table and 45–50 µs/row at 200,000 rows, against
//   17–24 µs/row with the time first (new records arrive in time order, so they append). A duplicate
//   delivery is the same record, same eventTime, so it still collides. The key also serves retention
//   (`event_time < cutoff`), so cloudtrail_records_time goes: one index fewer per row.
// - detection_counts (fixed spike windows) has been neither written nor read since 0034's
//   detection_events replaced it.
const COLUMNS = `event_id, event_time, event_source, event_name, aws_region, account, source_ip, user_agent,
  error_code, error_message, identity_type, access_key_id, role_arn, role_name, role_session_name,
  source_identity, method, user_id, user_name, credential_id, issued_by_ferry, raw, source_id, object_key,
  ingested_at`;

/** cloudtrail_records as 0025 made it, with the given key clause (SQLite cannot change a primary key in place). */
const table = (name: string, key: string) =>
  sql.raw(`create table ${name} (
    event_id text not null, event_time text not null, event_source text not null,
    event_name text not null, aws_region text, account text not null, source_ip text, user_agent text,
    error_code text, error_message text, identity_type text not null, access_key_id text, role_arn text,
    role_name text, role_session_name text, source_identity text, method text not null, user_id text,
    user_name text, credential_id text, issued_by_ferry integer not null, raw text not null,
    source_id text not null, object_key text not null, ingested_at text not null, ${key})`);

async function sqliteRekey(db: Kysely<unknown>, key: string): Promise<void> {
  await table('cloudtrail_records_rekeyed', key).execute(db);
  await sql
    .raw(
      `insert into cloudtrail_records_rekeyed (${COLUMNS}) select ${COLUMNS} from cloudtrail_records order by event_time, event_id`,
    )
    .execute(db);
  await sql`drop table cloudtrail_records`.execute(db);
  await sql`alter table cloudtrail_records_rekeyed rename to cloudtrail_records`.execute(db);
  await sql`create index cloudtrail_records_user on cloudtrail_records (user_id, event_time) where user_id is not null`.execute(
    db,
  );
  await sql`create index cloudtrail_records_role on cloudtrail_records (account, role_name, event_time) where role_name is not null`.execute(
    db,
  );
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`alter table cloudtrail_records drop constraint cloudtrail_records_pkey`.execute(db);
    await sql`alter table cloudtrail_records add constraint cloudtrail_records_pkey primary key (event_time, event_id)`.execute(
      db,
    );
    await sql`drop index cloudtrail_records_time`.execute(db);
  } else {
    await sqliteRekey(db, 'primary key (event_time, event_id)');
  }
  await db.schema.dropTable('detection_counts').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('detection_counts')
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('window_start', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('detection_counts_pk', ['rule', 'subject', 'window_start'])
    .execute();
  // Going back to event_id alone fails if the same eventID was stored at two times (not from AWS).
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`alter table cloudtrail_records drop constraint cloudtrail_records_pkey`.execute(db);
    await sql`alter table cloudtrail_records add constraint cloudtrail_records_pkey primary key (event_id)`.execute(
      db,
    );
  } else {
    await sqliteRekey(db, 'primary key (event_id)');
  }
  await sql`create index cloudtrail_records_time on cloudtrail_records (event_time)`.execute(db);
}
