import type { Kysely } from 'kysely';

// CloudTrail ingestion (docs/activity.md): the S3 places Ferry reads log files from, how far it has read
// in each account/region folder of them, and the records it kept, each attributed to a person or not.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('cloudtrail_sources')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('bucket', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull()) // '' or ending in '/'; AWSLogs/ follows it
    .addColumn('region', 'text') // the bucket's region; null = config aws.region
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_sync_at', 'text')
    .addColumn('last_error', 'text')
    // one instance syncs a source at a time: a lease taken by a conditional update
    .addColumn('lease_holder', 'text')
    .addColumn('lease_until', 'text')
    .execute();
  await db.schema
    .createIndex('cloudtrail_sources_place')
    .unique()
    .on('cloudtrail_sources')
    .columns(['bucket', 'prefix'])
    .execute();

  // Keys within one .../CloudTrail/<region>/ folder sort by time; across folders they do not, so the
  // position (S3 list-after key) is kept per folder.
  await db.schema
    .createTable('cloudtrail_positions')
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('folder', 'text', (c) => c.notNull())
    .addColumn('after_key', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('cloudtrail_positions_pk', ['source_id', 'folder'])
    .execute();

  await db.schema
    .createTable('cloudtrail_records')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('event_time', 'text', (c) => c.notNull())
    .addColumn('event_source', 'text', (c) => c.notNull())
    .addColumn('event_name', 'text', (c) => c.notNull())
    .addColumn('aws_region', 'text')
    .addColumn('account', 'text', (c) => c.notNull())
    .addColumn('source_ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('identity_type', 'text', (c) => c.notNull())
    .addColumn('access_key_id', 'text')
    .addColumn('role_arn', 'text')
    .addColumn('role_name', 'text')
    .addColumn('role_session_name', 'text')
    .addColumn('source_identity', 'text')
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('user_name', 'text')
    .addColumn('credential_id', 'text')
    .addColumn('issued_by_ferry', 'integer', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('ingested_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('cloudtrail_records_user')
    .on('cloudtrail_records')
    .columns(['user_id', 'event_time'])
    .execute();
  await db.schema
    .createIndex('cloudtrail_records_role')
    .on('cloudtrail_records')
    .columns(['account', 'role_name', 'event_time'])
    .execute();
  await db.schema
    .createIndex('cloudtrail_records_time')
    .on('cloudtrail_records')
    .column('event_time')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('cloudtrail_records').execute();
  await db.schema.dropTable('cloudtrail_positions').execute();
  await db.schema.dropTable('cloudtrail_sources').execute();
}
