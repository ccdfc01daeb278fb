import { type Kysely, sql } from 'kysely';
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
  // Read by every decide(): SQL text, a fraction of the cost of building the query node by node.
  const { rows } = await sql<{
    generation: number | string;
  }>`select generation from ca_policy_set where id = 1`.execute(db);
  return Number(rows[0]?.generation ?? 0);
}
