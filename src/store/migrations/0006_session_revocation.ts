import type { Kysely } from 'kysely';

// Revocation of live AWS sessions: who is denied on which role with which cutoff (the rows the
// FerryRevokedSessions inline policy is rendered from), and per role the version last written to IAM.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('aws_session_revocations')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('source_identity', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('cutoff', 'text', (c) => c.notNull()) // sessions issued before it are denied
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('aws_session_revocations_pk', ['account_id', 'role_name', 'source_identity'])
    .execute();
  await db.schema
    .createTable('aws_revocation_policies')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('applied_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('applied_at', 'text')
    .addPrimaryKeyConstraint('aws_revocation_policies_pk', ['account_id', 'role_name'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('aws_revocation_policies').execute();
  await db.schema.dropTable('aws_session_revocations').execute();
}
