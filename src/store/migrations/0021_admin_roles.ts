import type { Kysely } from 'kysely';

// Admin rights as access decisions (docs/decisions/0026-admin-rights-as-access-decisions.md):
// standing admin role assignments (group or user → admin:<role>), and scopes on admin API tokens.
// Tokens made before this migration get `*` (every permission), so they keep working as they did.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('admin_role_assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_type', 'text', (c) => c.notNull()) // group | user
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('admin_role_assignments_unique', ['principal_type', 'principal_id', 'role'])
    .execute();
  await db.schema
    .createIndex('admin_role_assignments_principal')
    .on('admin_role_assignments')
    .columns(['principal_type', 'principal_id'])
    .execute();
  // space-separated permissions, as OAuth writes scopes
  await db.schema
    .alterTable('api_tokens')
    .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('*'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_tokens').dropColumn('scopes').execute();
  await db.schema.dropTable('admin_role_assignments').execute();
}
