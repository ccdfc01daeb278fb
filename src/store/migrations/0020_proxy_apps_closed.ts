import { type Kysely, sql } from 'kysely';

// Proxied apps: whether one with no group assigned is open to every active user. Apps registered before
// this migration keep being open (as they were); apps registered after it are reachable only by the
// groups assigned to them unless configured open (docs/proxy.md, "Upgrade notes").
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('proxy_apps')
    .addColumn('open_to_all', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update proxy_apps set open_to_all = 1`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('proxy_apps').dropColumn('open_to_all').execute();
}
