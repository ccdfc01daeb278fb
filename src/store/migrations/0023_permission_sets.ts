import type { Kysely } from 'kysely';

// IAM Identity Center permission sets and account assignments as code (issue 19), and what AWS
// Organizations said about accounts and OUs. Identity Center (and moto) keep no tag Ferry could read
// back on an assignment, so what Ferry made there is recorded here: only those rows are ever changed
// or removed by Ferry.
export async function up(db: Kysely<unknown>): Promise<void> {
  // What the operator declared (tenant file, API, CLI).
  await db.schema
    .createTable('permission_sets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('description', 'text')
    .addColumn('session_duration', 'text', (c) => c.notNull()) // ISO-8601, PT1H..PT12H
    .addColumn('relay_state', 'text')
    .addColumn('managed_policies', 'text', (c) => c.notNull()) // JSON array of ARNs
    .addColumn('customer_managed_policies', 'text', (c) => c.notNull()) // JSON array of {name, path}
    .addColumn('inline_policy', 'text')
    .addColumn('permissions_boundary', 'text') // JSON {managedPolicyArn} or {name, path}
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('permission_set_assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_type', 'text', (c) => c.notNull()) // group | user
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('scope_type', 'text', (c) => c.notNull()) // account | ou
    .addColumn('scope_id', 'text', (c) => c.notNull()) // 12-digit account id, or ou-… / r-…
    .addColumn('permission_set', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('permission_set_assignments_one', [
      'principal_type',
      'principal_id',
      'scope_id',
      'permission_set',
    ])
    .execute();
  await db.schema
    .createIndex('permission_set_assignments_principal')
    .on('permission_set_assignments')
    .columns(['principal_type', 'principal_id'])
    .execute();
  // What Ferry made in Identity Center (its "tags").
  await db.schema
    .createTable('iic_permission_sets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('instance_arn', 'text', (c) => c.notNull())
    .addColumn('arn', 'text') // null while the create is pending (a crash before the answer)
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('iic_assignments')
    .addColumn('permission_set', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('principal_type', 'text', (c) => c.notNull()) // GROUP | USER
    .addColumn('principal_id', 'text', (c) => c.notNull()) // the Identity Center id
    .addColumn('principal_name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // creating | created | deleting | failed
    .addColumn('request_id', 'text')
    .addColumn('failure', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('iic_assignments_pk', [
      'permission_set',
      'account_id',
      'principal_type',
      'principal_id',
    ])
    .execute();
  await db.schema
    .createTable('aws_org_units')
    .addColumn('id', 'text', (c) => c.primaryKey()) // ou-… or the root r-…
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    .addColumn('path', 'text', (c) => c.notNull()) // /Root/Workloads/Prod
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('aws_org_accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'aws_org_accounts',
    'aws_org_units',
    'iic_assignments',
    'iic_permission_sets',
    'permission_set_assignments',
    'permission_sets',
  ])
    await db.schema.dropTable(t).execute();
}
