import type { Kysely } from 'kysely';

// Upstream sign-in (Entra ID): the sign-ins sent to the identity provider and not yet returned (so
// any instance can finish one, and a state is used once), and the link from an upstream account
// (tenant id + object id) to a Ferry user.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('upstream_signin_requests')
    .addColumn('state_hash', 'text', (c) => c.primaryKey()) // SHA-256 of the state parameter
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier_sealed', 'text', (c) => c.notNull()) // PKCE verifier, sealed
    .addColumn('return_to', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('upstream_identities')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_signin_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('upstream_identities_pk', ['provider', 'tenant_id', 'object_id'])
    .execute();
  await db.schema
    .createIndex('upstream_identities_user')
    .on('upstream_identities')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('upstream_identities').ifExists().execute();
  await db.schema.dropTable('upstream_signin_requests').ifExists().execute();
}
