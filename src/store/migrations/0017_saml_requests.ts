import { type Kysely, sql } from 'kysely';

// SAML: AuthnRequest IDs remembered for their validity window (a replay is refused on every instance),
// and per-SP settings: the minimum authentication context, whether status responses are signed, and
// whether an SP with no group assigned is open to everyone. SPs registered before this migration keep
// being open to all active users (as they were); new ones are reachable only by assigned groups.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('saml_request_ids')
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('saml_request_ids_pk', ['issuer', 'request_id'])
    .execute();
  await db.schema
    .createIndex('saml_request_ids_expiry')
    .on('saml_request_ids')
    .column('expires_at')
    .execute();
  await db.schema
    .alterTable('service_providers')
    .addColumn('minimum_authn_context', 'text', (c) => c.notNull().defaultTo('single-factor'))
    .execute();
  await db.schema
    .alterTable('service_providers')
    .addColumn('sign_status_responses', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('service_providers')
    .addColumn('open_to_all', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update service_providers set open_to_all = 1`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('saml_request_ids').execute();
  for (const column of ['open_to_all', 'sign_status_responses', 'minimum_authn_context'])
    await db.schema.alterTable('service_providers').dropColumn(column).execute();
}
