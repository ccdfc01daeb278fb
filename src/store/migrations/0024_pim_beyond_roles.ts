import type { Kysely } from 'kysely';

// PIM beyond IAM roles (issue 19, points 4 and 5): an eligibility or activation names a target kind.
// The existing (account_id, role_name) pair carries the kind's two parts, so the unique constraint of
// eligibilities and the "one open activation per person and target" index keep working unchanged:
//   aws-role        (account id, role name)
//   permission-set  (account id, 'permission-set/<name>')   never a role name: IAM names have no '/'
//   group           ('group:<group id>', group display name when granted, a label only)
//   ssh             ('ssh:<host pattern>', login)
// An activation's effect outside Ferry's tables (an Identity Center account assignment, a temporary
// group membership) has its own status beside the lifecycle state, written by the outbox handlers.
// A group membership granted by an activation carries that activation and its end.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('pim_eligibilities')
    .addColumn('target_kind', 'text', (c) => c.notNull().defaultTo('aws-role'))
    .execute();
  await db.schema
    .alterTable('pim_activations')
    .addColumn('target_kind', 'text', (c) => c.notNull().defaultTo('aws-role'))
    .execute();
  // pending | applied | failed | removing | removed | kept (null: the kind has no effect to apply)
  await db.schema.alterTable('pim_activations').addColumn('effect_state', 'text').execute();
  await db.schema.alterTable('pim_activations').addColumn('effect_detail', 'text').execute();
  await db.schema.alterTable('pim_activations').addColumn('effect_at', 'text').execute();
  await db.schema.alterTable('group_members').addColumn('activation_id', 'text').execute();
  await db.schema.alterTable('group_members').addColumn('expires_at', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('group_members').dropColumn('expires_at').execute();
  await db.schema.alterTable('group_members').dropColumn('activation_id').execute();
  await db.schema.alterTable('pim_activations').dropColumn('effect_at').execute();
  await db.schema.alterTable('pim_activations').dropColumn('effect_detail').execute();
  await db.schema.alterTable('pim_activations').dropColumn('effect_state').execute();
  await db.schema.alterTable('pim_activations').dropColumn('target_kind').execute();
  await db.schema.alterTable('pim_eligibilities').dropColumn('target_kind').execute();
}
