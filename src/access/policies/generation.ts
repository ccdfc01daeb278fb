import { type Kysely, type RawBuilder, sql } from 'kysely';
import { readNowIfIdle } from '../../store/at-once.js';
import type { Store } from '../../store/open.js';
import type { Database } from '../../store/schema.js';

/** Marks the policy set changed (in the caller's transaction): every instance reloads its compiled policies. */
export async function bumpPolicyGeneration(trx: Kysely<Database>): Promise<void> {
  await trx
    .updateTable('ca_policy_set')
    .set((eb) => ({ generation: eb('generation', '+', 1) }))
    .where('id', '=', 1)
    .execute();
}

const GENERATION_SQL = 'select generation from ca_policy_set where id = 1';

/**
 * Read by every decide(): SQL text, a fraction of the cost of building the query node by node; also
 * embedded as it is in decide()'s single PostgreSQL read.
 */
export const policyGenerationQuery = (): RawBuilder<{ generation: number | string }> =>
  sql.raw<{ generation: number | string }>(GENERATION_SQL);

/** The policy set's generation: changes whenever a policy or named location does. */
export async function policyGeneration(db: Kysely<Database>): Promise<number> {
  const { rows } = await policyGenerationQuery().execute(db);
  return Number(rows[0]?.generation ?? 0);
}

/**
 * The generation as decide() reads it for every decision: on SQLite at once when no transaction holds
 * the connection (the same committed value the read through `db` would give, without its promises and
 * queue), else through `db`. Never cached: a policy change governs the next decision on every instance.
 */
export function currentPolicyGeneration(store: Store): Promise<number> {
  const now = readNowIfIdle<{ generation: number | string }>(store, GENERATION_SQL);
  return now ? Promise.resolve(Number(now.row?.generation ?? 0)) : policyGeneration(store.db);
}
