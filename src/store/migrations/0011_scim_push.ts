import type { Kysely } from 'kysely';

// SCIM push to AWS IAM Identity Center: where to push (endpoint and sealed bearer token), and what
// Ferry last pushed. Identity Center's GetGroup returns no members, so the pushed member set lives here.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('identity_center_targets')
    .addColumn('id', 'text', (c) => c.primaryKey()) // one target today: 'default'
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('token_sealed', 'text', (c) => c.notNull()) // MasterKey.seal, bound to the row id
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('identity_center_users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('user_name', 'text', (c) => c.notNull())
    .addColumn('remote_id', 'text') // null: a create was sent and its answer is not recorded yet
    .addColumn('pushed', 'text', (c) => c.notNull()) // JSON: the representation last pushed
    .addColumn('pushed_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('identity_center_groups')
    .addColumn('group_id', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('remote_id', 'text')
    .addColumn('pushed', 'text', (c) => c.notNull())
    .addColumn('pushed_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('identity_center_members')
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('pushed_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_center_members_pk', ['group_id', 'user_id'])
    .execute();
  await db.schema
    .createIndex('identity_center_members_user')
    .on('identity_center_members')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'identity_center_members',
    'identity_center_groups',
    'identity_center_users',
    'identity_center_targets',
  ])
    await db.schema.dropTable(t).ifExists().execute();
}
