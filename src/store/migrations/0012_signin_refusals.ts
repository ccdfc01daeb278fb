import { type Kysely, sql } from 'kysely';

// Sign-in attempts refused by an existing lock are counted on the throttle row instead of being
// audited one by one; one summary event per key and lock carries the count (docs/decisions/0018).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('signin_throttle')
    .addColumn('refused', 'integer', (c) => c.notNull().defaultTo(sql`0`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('signin_throttle').dropColumn('refused').execute();
}
