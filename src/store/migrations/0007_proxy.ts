import type { Kysely } from 'kysely';

// The identity-aware proxy: applications it serves (upstream, public URL) and which groups may
// reach an application (decide() reads app_assignments for `app:` targets, whatever the issuer).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('proxy_apps')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('upstream_url', 'text', (c) => c.notNull())
    // scheme://host[:port] the proxy answers for this app (matched against the Host header)
    .addColumn('public_url', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('app_assignments')
    .addColumn('app_name', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('app_assignments_pk', ['app_name', 'group_id'])
    .execute();
  await db.schema.createIndex('app_assignments_group').on('app_assignments').column('group_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('app_assignments').execute();
  await db.schema.dropTable('proxy_apps').execute();
}
