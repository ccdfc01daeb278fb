import type { Kysely } from 'kysely';

// AWS accounts and roles, assignments, signing keys, SAML service providers, and the ledger of what
// every issuer issued. Portable column types only, as in 0001.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('aws_accounts')
    .addColumn('id', 'text', (c) => c.primaryKey()) // 12 digits
    .addColumn('alias', 'text', (c) => c.notNull())
    .addColumn('alias_key', 'text', (c) => c.notNull().unique())
    .addColumn('partition', 'text', (c) => c.notNull())
    .addColumn('saml_provider_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('aws_roles')
    .addColumn('account_id', 'text', (c) => c.notNull().references('aws_accounts.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull().defaultTo('/'))
    .addColumn('max_session_duration', 'integer', (c) => c.notNull().defaultTo(3600))
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('aws_roles_pk', ['account_id', 'name'])
    .execute();

  await db.schema
    .createTable('assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_type', 'text', (c) => c.notNull()) // group | user
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addForeignKeyConstraint(
      'assignments_role_fk',
      ['account_id', 'role_name'],
      'aws_roles',
      ['account_id', 'name'],
      (fk) => fk.onDelete('cascade'),
    )
    .addUniqueConstraint('assignments_unique', ['principal_type', 'principal_id', 'account_id', 'role_name'])
    .execute();
  await db.schema
    .createIndex('assignments_principal')
    .on('assignments')
    .columns(['principal_type', 'principal_id'])
    .execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull()) // saml
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('private_key_sealed', 'text', (c) => c.notNull())
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // next | current | retired
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('activated_at', 'text')
    .addColumn('retired_at', 'text')
    .execute();
  await db.schema
    .createIndex('signing_keys_purpose_state')
    .on('signing_keys')
    .columns(['purpose', 'state'])
    .execute();

  await db.schema
    .createTable('service_providers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('entity_id', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('acs_urls', 'text', (c) => c.notNull()) // JSON [{ url, binding, index, isDefault }]
    .addColumn('name_id_format', 'text', (c) => c.notNull())
    .addColumn('attribute_map', 'text', (c) => c.notNull().defaultTo('{}')) // JSON { samlName: userField }
    .addColumn('signing_certificates', 'text', (c) => c.notNull().defaultTo('[]')) // JSON [pem]
    .addColumn('require_signed_requests', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // What every issuer issued, with the id the far side logs (assertion id, AccessKeyId, SSH serial):
  // what revocation and CloudTrail correlation read.
  await db.schema
    .createTable('issued_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull()) // saml-assertion | sts-credentials | ssh-certificate | …
    .addColumn('user_id', 'text')
    .addColumn('subject', 'text', (c) => c.notNull()) // user name or workload name
    .addColumn('target', 'text', (c) => c.notNull()) // e.g. aws:123456789012/Developer, or an SP entity id
    .addColumn('audience', 'text')
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('issued_credentials_user').on('issued_credentials').column('user_id').execute();
  await db.schema
    .createIndex('issued_credentials_external')
    .on('issued_credentials')
    .column('external_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'issued_credentials',
    'service_providers',
    'signing_keys',
    'assignments',
    'aws_roles',
    'aws_accounts',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
