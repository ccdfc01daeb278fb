import { type Kysely, sql } from 'kysely';

// Issue 16: a client-credential grant writes one oidc_artifacts row whose grant_id, user_code, uid and
// session_id are all null, yet each of their indexes took an entry for it (SQLite and PostgreSQL
// index nulls), four more index pages dirtied per commit on the token endpoint's hottest path.
// Every reader of these columns looks a value up (`= ?`, `in (…)`), which implies `is not null`, so
// indexes of the non-null rows only serve them all (both engines prove the implication).
const PARTIAL = [
  ['oidc_artifacts_grant', 'grant_id'],
  ['oidc_artifacts_user_code', 'user_code'],
  ['oidc_artifacts_uid', 'uid'],
  ['oidc_artifacts_session', 'session_id'],
] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [index, column] of PARTIAL) {
    await sql`drop index if exists ${sql.id(index)}`.execute(db);
    await sql`create index ${sql.id(index)} on oidc_artifacts (${sql.id(column)}) where ${sql.id(column)} is not null`.execute(
      db,
    );
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const [index, column] of PARTIAL) {
    await sql`drop index if exists ${sql.id(index)}`.execute(db);
    await sql`create index ${sql.id(index)} on oidc_artifacts (${sql.id(column)})`.execute(db);
  }
}
