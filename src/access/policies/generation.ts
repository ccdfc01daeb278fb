import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';

/** Marks the policy set changed (in the caller's transaction): every instance reloads its compiled policies. */
export async function bumpPolicyGeneration(trx: Kysely<Database>): Promise<void> {
  await trx
    .updateTable('ca_policy_set')
    .set((eb) => ({ generation: eb('generation', '+', 1) }))
    .where('id', '=', 1)
    .execute();
}

/** The policy set's generation: changes whenever a policy or named location does. */
export async function policyGeneration(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('ca_policy_set')
    .select('generation')
    .where('id', '=', 1)
    .executeTakeFirst();
  return Number(row?.generation ?? 0);
}
