import { type Kysely, PostgresAdapter, sql } from 'kysely';

// The outbox in lanes (docs/operations.md, ADR 0032): revocations and offboarding ('urgent') are
// claimed and handled apart from bulk work (Identity Center pushes, notifications), so they never wait
// behind it. Events already queued keep the bulk lane, except the urgent types.
// `leases` holds named cross-instance leases (the Identity Center push: one instance at a time).
// On PostgreSQL an insert into the outbox notifies `ferry_outbox` (delivered at commit) so every
// instance's worker wakes at once instead of at its next poll.
export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .alterTable('outbox')
    .addColumn('lane', 'text', (c) => c.notNull().defaultTo('bulk'))
    .execute();
  await sql`update outbox set lane = 'urgent' where type in ('user.deactivated', 'user.deleted', 'session.revoked', 'aws.sessions-revoke-requested')`.execute(
    db,
  );
  await sql`create index outbox_pending_lane on outbox (lane, created_at, id) where processed_at is null`.execute(
    db,
  );
  await db.schema
    .createTable('leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text')
    .addColumn('lease_until', 'text')
    .execute();
  await sql`create index worker_instances_heartbeat on worker_instances (heartbeat_at)`.execute(db);
  if (postgres) {
    await sql`create or replace function ferry_outbox_notify() returns trigger language plpgsql as $$
      begin
        perform pg_notify('ferry_outbox', new.lane);
        return null;
      end $$`.execute(db);
    await sql`create trigger outbox_notify after insert on outbox
      for each row execute function ferry_outbox_notify()`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  if (postgres) {
    await sql`drop trigger if exists outbox_notify on outbox`.execute(db);
    await sql`drop function if exists ferry_outbox_notify()`.execute(db);
  }
  await sql`drop index if exists worker_instances_heartbeat`.execute(db);
  await db.schema.dropTable('leases').execute();
  await sql`drop index if exists outbox_pending_lane`.execute(db);
  await db.schema.alterTable('outbox').dropColumn('lane').execute();
}
