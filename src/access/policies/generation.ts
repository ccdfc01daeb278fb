import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from '../../store/schema.js';

/** Marks the policy set changed (in the caller's transaction): every instance reloads its compiled policies. */
export async function bumpPolicyGeneration(trx: Kysely<Database>): Promise<void> {
  await trx
    .updateTable('ca_policy_set')
    .set((eb) => ({ generation: eb('generation', '+', 1) }))
    .where('id', '=', 1)
    .execute();
}

/**
 * Read by every decide(): SQL text, a fraction of the cost of building the query node by node; also
 * embedded as it is in decide()'s single PostgreSQL read.
 */
export const policyGenerationQuery = (): RawBuilder<{ generation: number | string }> =>
  sql<{ generation: number | string }>`select generation from ca_policy_set where id = 1`;

/** The policy set's generation: changes whenever a policy or named location does. */
export async function policyGeneration(db: Kysely<Database>): Promise<number> {
  const { rows } = await policyGenerationQuery().execute(db);
  return Number(rows[0]?.generation ?? 0);
}
