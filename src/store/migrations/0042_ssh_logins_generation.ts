import { type Kysely, PostgresAdapter, sql } from 'kysely';

// decide() keeps the SSH login mappings it read for a set of groups while the policy generation
// (ca_policy_set) stays the same (issue 16: the read cost a third of an SSH certificate's decision).
// Every change to ssh_logins, by whatever writer and also by a group's deletion cascading to its
// mappings, bumps that generation in the same transaction, so every instance reads them again.
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`create or replace function ferry_ssh_logins_changed() returns trigger language plpgsql as $$
      begin
        update ca_policy_set set generation = generation + 1 where id = 1;
        return null;
      end $$`.execute(db);
    // for each row: a statement that changes nothing (a group's deletion cascading to no mappings, as
    // every SCIM deprovisioning does) must not make every instance recompile its policies
    await sql`create trigger ssh_logins_changed after insert or update or delete on ssh_logins
      for each row execute function ferry_ssh_logins_changed()`.execute(db);
    return;
  }
  for (const event of ['insert', 'update', 'delete']) {
    await sql
      .raw(
        `create trigger ssh_logins_${event} after ${event} on ssh_logins
        begin update ca_policy_set set generation = generation + 1 where id = 1; end`,
      )
      .execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`drop trigger if exists ssh_logins_changed on ssh_logins`.execute(db);
    await sql`drop function if exists ferry_ssh_logins_changed()`.execute(db);
    return;
  }
  for (const event of ['insert', 'update', 'delete'])
    await sql.raw(`drop trigger if exists ssh_logins_${event}`).execute(db);
}
