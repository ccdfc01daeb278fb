import type { Kysely } from 'kysely';

// One person, one AWS identity: every value Ferry has ever issued as RoleSessionName and SourceIdentity,
// and whose it is. A value is claimed once and never handed to anyone else, so a per-person deny
// (aws:SourceIdentity) can only ever match that person's sessions — also after a UPN is reused.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('aws_identities')
    .addColumn('identity_key', 'text', (c) => c.primaryKey()) // lower-cased identity: claims ignore case
    .addColumn('identity', 'text', (c) => c.notNull())
    .addColumn('owner_key', 'text', (c) => c.notNull()) // user:<id> or workload:<client id>
    .addColumn('user_name', 'text', (c) => c.notNull()) // the name it was derived from, for operators
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('aws_identities_owner').on('aws_identities').column('owner_key').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('aws_identities').execute();
}
