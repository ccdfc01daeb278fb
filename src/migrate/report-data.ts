import { SEVERITIES, type Severity } from './findings.js';
import type { AccountInventory } from './inventory.js';
import { MIGRATION_STATES, type MigrationPlan, type MigrationState } from './plan.js';

/** The numbers every report format shows: findings by severity, access key ages, users by state. */
export interface ReportFigures {
  findingsBySeverity: Array<{ label: Severity; value: number }>;
  keyAges: Array<{ label: string; value: number }>;
  usersByState: Array<{ label: MigrationState; value: number }>;
}

const BUCKETS: Array<{ label: string; max: number }> = [
  { label: '0–30 d', max: 30 },
  { label: '31–90 d', max: 90 },
  { label: '91–180 d', max: 180 },
  { label: '181–365 d', max: 365 },
  { label: '> 1 year', max: Number.POSITIVE_INFINITY },
];

export function figures(plan: MigrationPlan, states?: Map<string, MigrationState>): ReportFigures {
  const asOf = Date.parse(plan.asOf);
  const keyAges = BUCKETS.map((b) => ({ label: b.label, value: 0 }));
  for (const a of plan.accounts)
    for (const u of a.inventory.users)
      for (const k of u.accessKeys) {
        if (!k.active || !k.lastRotated) continue;
        const days = (asOf - Date.parse(k.lastRotated)) / 86_400_000;
        keyAges[BUCKETS.findIndex((b) => days <= b.max)]!.value++;
      }
  const users = plan.accounts.flatMap((a) => a.users);
  return {
    findingsBySeverity: SEVERITIES.map((s) => ({
      label: s,
      value: plan.findings.filter((f) => f.severity === s).length,
    })),
    keyAges,
    usersByState: MIGRATION_STATES.map((s) => ({
      label: s,
      value: users.filter((u) => (states?.get(`${u.account}/${u.user}`) ?? u.state) === s).length,
    })),
  };
}

/**
 * The policy rows of a report: every policy something is attached to, one row each; AWS-managed and
 * job-function policies that nothing uses (an export lists every one of them, about 1,500) summarised
 * in a single row, so the report is about this account rather than AWS's catalogue.
 */
export function policyRows(inv: Pick<AccountInventory, 'policies'>): string[][] {
  const catalogue = (p: AccountInventory['policies'][number]) =>
    (p.kind === 'aws-managed' || p.kind === 'job-function') && p.attachedTo.length === 0;
  const rows = inv.policies
    .filter((p) => !catalogue(p))
    .map((p) => [p.id, p.kind, p.attachedTo.join(', ') || '—']);
  const unused = inv.policies.filter(catalogue).length;
  if (unused > 0) rows.push([`${unused} AWS managed policies`, 'aws-managed', 'nothing (not listed)']);
  return rows;
}
