import type { Kysely } from 'kysely';

// The OpenID provider's artifacts (codes, tokens, grants, sessions, interactions), its registered
// clients (relying parties and workload identities), and the AWS endpoint an account is reached at
// (the local AWS in the demo; null for real AWS).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oidc_artifacts')
    .addColumn('model', 'text', (c) => c.notNull()) // AccessToken, RefreshToken, Grant, Session, …
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull()) // JSON, as oidc-provider hands it over
    .addColumn('grant_id', 'text')
    .addColumn('user_code', 'text')
    .addColumn('uid', 'text')
    .addColumn('account_id', 'text')
    .addColumn('expires_at', 'text') // ISO; null = no expiry
    .addColumn('consumed_at', 'text')
    .addPrimaryKeyConstraint('oidc_artifacts_pk', ['model', 'id'])
    .execute();
  await db.schema.createIndex('oidc_artifacts_grant').on('oidc_artifacts').column('grant_id').execute();
  await db.schema.createIndex('oidc_artifacts_user_code').on('oidc_artifacts').column('user_code').execute();
  await db.schema.createIndex('oidc_artifacts_uid').on('oidc_artifacts').column('uid').execute();
  await db.schema.createIndex('oidc_artifacts_account').on('oidc_artifacts').column('account_id').execute();
  await db.schema.createIndex('oidc_artifacts_expiry').on('oidc_artifacts').column('expires_at').execute();

  await db.schema
    .createTable('oidc_clients')
    .addColumn('id', 'text', (c) => c.primaryKey()) // the client_id
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // relying-party | workload
    .addColumn('metadata', 'text', (c) => c.notNull()) // JSON client metadata, secret as its SHA-256
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('aws_accounts').addColumn('endpoint_url', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('aws_accounts').dropColumn('endpoint_url').execute();
  await db.schema.dropTable('oidc_clients').execute();
  await db.schema.dropTable('oidc_artifacts').execute();
}
