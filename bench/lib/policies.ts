import { bumpPolicyGeneration } from '../../src/access/policies/generation.js';
import type { Store } from '../../src/store/open.js';
import type { Directory } from './directory.js';
import { prng } from './directory.js';

export const POLICY_COUNT = 500;

/**
 * 500 conditional access policies of the shapes admins write: most name a few groups, some apply to
 * everyone with exclusions; targets are all roles, wildcard patterns or one account; conditions mix
 * client types, IP ranges, risk levels and business hours; grants ask for MFA or block. All are `on`
 * (a report-only policy that applies writes to the sign-in log, which would measure the audit trail).
 */
export async function insertPolicies(store: Store, d: Directory): Promise<void> {
  const rnd = prng(0x9011c1);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const ref = (g: number) => ({ id: d.groupIds[g]!, name: d.groupNames[g]! });
  const rows = [];
  const now = new Date().toISOString();
  for (let i = 0; i < POLICY_COUNT; i++) {
    const everyone = rnd() < 0.2;
    const groups = Array.from({ length: 5 }, () => Math.floor(rnd() * d.groupIds.length));
    const definition = {
      include: { all: everyone, users: [], groups: everyone ? [] : groups.map(ref), workloads: [] },
      exclude: { users: [], groups: everyone ? [ref(groups[0]!)] : [], workloads: [] },
      targets: [
        pick([
          'all',
          'aws:*/Admin*',
          `aws:${pick(d.accountIds)}/*`,
          'aws:*/Developer*',
          'ssh:*.prod.internal',
        ]),
      ],
      excludeTargets: [],
      conditions: pick([
        { clients: ['cli'] },
        { locations: { include: ['any'], exclude: ['10.0.0.0/8', '192.168.0.0/16'] } },
        { signInRisk: ['high'] },
        {
          time: {
            days: ['sat', 'sun'],
            from: '00:00',
            to: '23:59',
            timezone: 'Europe/Berlin',
            outside: false,
          },
        },
        {},
      ]),
      grant:
        rnd() < 0.1
          ? { block: true, require: [], operator: 'AND' }
          : { block: false, require: ['mfa'], operator: 'AND' },
      session: rnd() < 0.3 ? { maxCredentialLifetime: 3600 } : {},
    };
    rows.push({
      id: `bench-policy-${i}`,
      name: `bench policy ${i}`,
      name_key: `bench policy ${i}`,
      state: 'on' as const,
      definition: JSON.stringify(definition),
      created_at: now,
      updated_at: now,
      version: 1,
    });
  }
  for (let i = 0; i < rows.length; i += 100)
    await store.db
      .insertInto('ca_policies')
      .values(rows.slice(i, i + 100))
      .execute();
  await bumpPolicyGeneration(store.db);
}

export async function removePolicies(store: Store): Promise<void> {
  await store.db.deleteFrom('ca_policies').where('id', 'like', 'bench-policy-%').execute();
  await bumpPolicyGeneration(store.db);
}
