import { type Kysely, PostgresAdapter, sql } from 'kysely';

// SCIM creates (issue 16 point 4, ADR 0065): on SQLite, scim_managed_objects was a rowid table with a
// two-column text key, so every lane row was written to three b-trees (the table by rowid, the key's
// own index, the connection index). Nothing reads it by rowid: as a WITHOUT ROWID table the key is the
// table, one b-tree fewer per created user or group. The connection index stays: `ScimLane.managed`
// lists a lane by (connection_id, kind). PostgreSQL's heap has no such second copy: unchanged there.
const table = (name: string, withoutRowid: boolean) =>
  sql.raw(`create table ${name} (kind text not null, object_id text not null, connection_id text not null,
    origin text not null, since text not null,
    constraint scim_managed_objects_pk primary key (kind, object_id))${withoutRowid ? ' without rowid' : ''}`);

async function sqliteRebuild(db: Kysely<unknown>, withoutRowid: boolean): Promise<void> {
  await table('scim_managed_objects_rebuilt', withoutRowid).execute(db);
  await sql`insert into scim_managed_objects_rebuilt (kind, object_id, connection_id, origin, since)
    select kind, object_id, connection_id, origin, since from scim_managed_objects order by kind, object_id`.execute(
    db,
  );
  await sql`drop table scim_managed_objects`.execute(db);
  await sql`alter table scim_managed_objects_rebuilt rename to scim_managed_objects`.execute(db);
  await sql`create index scim_managed_objects_connection on scim_managed_objects (connection_id, kind)`.execute(
    db,
  );
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) return;
  await sqliteRebuild(db, true);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) return;
  await sqliteRebuild(db, false);
}
