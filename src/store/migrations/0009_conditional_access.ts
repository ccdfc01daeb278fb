import type { Kysely } from 'kysely';

// Conditional access: policies and named locations (admin-defined), identity protection (sign-in
// history the detections read, detections, each user's risk level) and the sign-in's own risk on
// its session. Portable column types only, as in 0001.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ca_policies')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull().unique())
    .addColumn('state', 'text', (c) => c.notNull()) // on | report-only | off
    .addColumn('definition', 'text', (c) => c.notNull()) // JSON: assignments, targets, conditions, controls
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // One row: bumped in the transaction of every policy or named-location change, so decide() can keep
  // the compiled policies and ask only "has anything changed?" (one tiny read) per request.
  await db.schema
    .createTable('ca_policy_set')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('generation', 'integer', (c) => c.notNull())
    .execute();
  await db
    .insertInto('ca_policy_set' as never)
    .values({ id: 1, generation: 0 } as never)
    .execute();
  await db.schema
    .createTable('named_locations')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('ranges', 'text', (c) => c.notNull()) // JSON: CIDR strings
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('signin_history')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text') // null when the user name matched nobody
    .addColumn('user_key', 'text', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('country', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull()) // success | failure
    .addColumn('password_fp', 'text') // keyed hash of a failed password: spray detection, never the password
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('signin_history_user')
    .on('signin_history')
    .columns(['user_key', 'at'])
    .execute();
  await db.schema.createIndex('signin_history_ip').on('signin_history').columns(['ip', 'at']).execute();
  await db.schema
    .createTable('risk_detections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text')
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull()) // low | medium | high
    .addColumn('ip', 'text')
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // open | confirmed | dismissed
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'text')
    .addColumn('resolved_by', 'text')
    .execute();
  await db.schema
    .createIndex('risk_detections_user')
    .on('risk_detections')
    .columns(['user_id', 'state'])
    .execute();
  await db.schema
    .createTable('webauthn_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey()) // the credential id, base64url
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull()) // COSE public key, base64url
    .addColumn('counter', 'integer', (c) => c.notNull())
    .addColumn('transports', 'text', (c) => c.notNull()) // JSON
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .execute();
  await db.schema
    .createIndex('webauthn_credentials_user')
    .on('webauthn_credentials')
    .column('user_id')
    .execute();
  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('challenge', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull()) // register | authenticate
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('recovery_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey()) // SHA-256: the codes are random, 50 bits each
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema
    .createTable('token_sources')
    .addColumn('grant_hash', 'text', (c) => c.primaryKey()) // SHA-256 of the OpenID grant id (one `ferry login`)
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .alterTable('users')
    .addColumn('mfa_registration_required', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('sessions')
    .addColumn('signin_risk', 'text', (c) => c.notNull().defaultTo('none'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('signin_risk').execute();
  await db.schema.alterTable('users').dropColumn('mfa_registration_required').execute();
  await db.schema.dropTable('token_sources').execute();
  await db.schema.dropTable('recovery_codes').execute();
  await db.schema.dropTable('webauthn_challenges').execute();
  await db.schema.dropTable('webauthn_credentials').execute();
  await db.schema.dropTable('risk_detections').execute();
  await db.schema.dropTable('signin_history').execute();
  await db.schema.dropTable('named_locations').execute();
  await db.schema.dropTable('ca_policy_set').execute();
  await db.schema.dropTable('ca_policies').execute();
}
