import type { Kysely } from 'kysely';

// Secrets at rest (docs/decisions/0019). oidc-provider's artifacts were stored under their own value
// (an opaque access or refresh token, a code, a session cookie is its id) with a plain JSON payload:
// they are deleted, not converted, since a keyed hash needs the master key, which migrations do not
// have. People sign in again (`ferry login`, the browser); nothing else is lost. From now on the
// adapter stores keyed hashes and sealed payloads. Grants remember the Ferry sign-in session they
// were given under, so revoking that session ends them. The other stored secrets (sessions, API and
// SCIM tokens, recovery codes) keep their rows: they are re-keyed at start (identity/secrets.ts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.deleteFrom('oidc_artifacts' as never).execute();
  await db.schema.alterTable('oidc_artifacts').addColumn('session_id', 'text').execute();
  await db.schema.createIndex('oidc_artifacts_session').on('oidc_artifacts').column('session_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('oidc_artifacts_session').execute();
  await db.schema.alterTable('oidc_artifacts').dropColumn('session_id').execute();
}
