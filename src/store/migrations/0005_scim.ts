import type { Kysely } from 'kysely';

// SCIM provisioning: one bearer token per provisioning connection (Entra ID, …), the multi-valued
// profile attributes SCIM carries (phone numbers, addresses), and an index for `externalId eq` on groups.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('scim_connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull()) // SHA-256 of the token's 256-bit secret
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema
    .alterTable('users')
    .addColumn('phone_numbers', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
  await db.schema
    .alterTable('users')
    .addColumn('addresses', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
  await db.schema.createIndex('groups_external_id').on('groups').column('external_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('groups_external_id').ifExists().execute();
  await db.schema.alterTable('users').dropColumn('addresses').execute();
  await db.schema.alterTable('users').dropColumn('phone_numbers').execute();
  await db.schema.dropTable('scim_connections').ifExists().execute();
}
