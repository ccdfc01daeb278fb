import type { Kysely } from 'kysely';

// Admin API tokens made by a person are bounded by that person's rights (docs/decisions/0041): the
// person whose admin roles a token may not outgrow, directly or through the token that made it. Null
// for tokens made beside the server's config (`ferry admin token create`) and for tokens made before.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_tokens').addColumn('creator_user_id', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_tokens').dropColumn('creator_user_id').execute();
}
