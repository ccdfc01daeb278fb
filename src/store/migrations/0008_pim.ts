import { type Kysely, sql } from 'kysely';

// Just-in-time elevation: who may activate which role under which rules, and each activation's life.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pim_eligibilities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_type', 'text', (c) => c.notNull()) // group | user
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('max_duration', 'integer', (c) => c.notNull()) // seconds
    .addColumn('require_justification', 'integer', (c) => c.notNull())
    .addColumn('require_ticket', 'integer', (c) => c.notNull())
    .addColumn('require_mfa', 'integer', (c) => c.notNull())
    .addColumn('approvers', 'text', (c) => c.notNull()) // JSON [{type,id,name}]; [] = no approval
    .addColumn('approvals_required', 'integer', (c) => c.notNull())
    .addColumn('auto_approve', 'text') // JSON conditions or null
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('pim_eligibilities_target_uq', [
      'principal_type',
      'principal_id',
      'account_id',
      'role_name',
    ])
    .execute();
  await db.schema
    .createTable('pim_activations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('eligibility_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('user_name', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('duration', 'integer', (c) => c.notNull()) // seconds asked for
    .addColumn('justification', 'text')
    .addColumn('ticket', 'text')
    .addColumn('approvers', 'text', (c) => c.notNull()) // JSON snapshot of the rule at request time
    .addColumn('approvals_required', 'integer', (c) => c.notNull())
    .addColumn('approvals', 'text', (c) => c.notNull()) // JSON [{userId,userName,at,reason}]
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addColumn('answer_by', 'text', (c) => c.notNull()) // lapses when still requested then
    .addColumn('activated_at', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('ended_at', 'text')
    .addColumn('ended_by', 'text')
    .addColumn('end_reason', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('pim_activations_due_idx')
    .on('pim_activations')
    .columns(['state', 'expires_at'])
    .execute();
  // One open activation per person and role, even when two requests race.
  await db.schema
    .createIndex('pim_activations_open_uq')
    .on('pim_activations')
    .columns(['user_id', 'account_id', 'role_name'])
    .unique()
    .where(sql.ref('state'), 'in', ['requested', 'approved', 'active'])
    .execute();
  await db.schema
    .createIndex('pim_activations_user_idx')
    .on('pim_activations')
    .columns(['user_id', 'state'])
    .execute();
  // Access reviews: a campaign snapshots memberships and eligibilities as items reviewers decide on.
  await db.schema
    .createTable('review_campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('reviewers', 'text', (c) => c.notNull()) // JSON [{type,id,name}]
    .addColumn('deadline', 'text', (c) => c.notNull())
    .addColumn('remove_unreviewed', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // open | closed
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('closed_at', 'text')
    .addColumn('closed_by', 'text')
    .execute();
  await db.schema
    .createTable('review_items')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // membership | eligibility
    .addColumn('group_id', 'text')
    .addColumn('user_id', 'text')
    .addColumn('eligibility_id', 'text')
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('decision', 'text') // approve | deny | null (not reviewed)
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'text')
    .addColumn('reason', 'text')
    .addColumn('outcome', 'text') // kept | removed, when the campaign closed
    .execute();
  await db.schema
    .createIndex('review_items_campaign_idx')
    .on('review_items')
    .columns(['campaign_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('review_items').execute();
  await db.schema.dropTable('review_campaigns').execute();
  await db.schema.dropTable('pim_activations').execute();
  await db.schema.dropTable('pim_eligibilities').execute();
}
