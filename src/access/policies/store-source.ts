import type { BlockList } from 'node:net';
import { appendAudit } from '../../audit/ledger.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/open.js';
import type { PolicySource } from './engine.js';
import { currentPolicyGeneration } from './generation.js';
import type { NamedLocations } from './named-locations.js';
import type { ConditionalAccessPolicies } from './policies.js';
import type { RiskLevel } from './policy.js';

const ORDER: RiskLevel[] = ['none', 'low', 'medium', 'high'];

/** The highest level among a user's open or confirmed detections (dismissed ones no longer count). */
export async function userRiskOf(store: Store, userId: string): Promise<RiskLevel> {
  const rows = await store.db
    .selectFrom('risk_detections')
    .select('level')
    .distinct()
    .where('user_id', '=', userId)
    .where('state', 'in', ['open', 'confirmed'])
    .execute();
  return rows.reduce<RiskLevel>(
    (max, r) => (ORDER.indexOf(r.level) > ORDER.indexOf(max) ? r.level : max),
    'none',
  );
}

/** What the engine reads, from the database (and the offline GeoIP table). */
export function storePolicySource(
  store: Store,
  policies: ConditionalAccessPolicies,
  locations: NamedLocations,
  country: (ip: string) => string | null,
  clock: Clock,
): PolicySource {
  return {
    generation: () => currentPolicyGeneration(store),
    active: () => policies.active(),
    locations: (): Promise<Map<string, BlockList>> => locations.matchers(),
    userRisk: (userId) => userRiskOf(store, userId),
    country,
    recordReportOnly: async (principal, target, signals, would) => {
      await store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: 'access.report-only',
          outcome: 'success',
          actor:
            principal.kind === 'workload'
              ? { type: 'workload', id: principal.id, name: principal.userName }
              : { type: 'user', id: principal.id, name: principal.userName },
          subject: principal.userName,
          ip: signals.ip ?? null,
          data: {
            target,
            client: signals.client,
            policies: would.map((e) => ({
              policy: e.policy,
              wouldHave: e.result,
              require: e.require ?? [],
              why: e.why,
            })),
          },
        }),
      );
    },
  };
}
