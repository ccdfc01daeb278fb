import { SEVERITIES, type Severity } from './findings.js';
import type { AccountInventory } from './inventory.js';
import { type AccountPlan, MIGRATION_STATES, type MigrationPlan, type MigrationState } from './plan.js';

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

/** One table of a report, in plain values: each format escapes and lays it out its own way. */
export interface ReportTable {
  title: string;
  header: string[];
  rows: unknown[][];
  /** a sentence under the table; `code` in backticks */
  note?: string;
}

/** A date as the reports show it: the day, or a dash for never. */
export const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '—');

/** The findings table: severity first, as both formats lead with it. */
export function findingsTable(plan: MigrationPlan): ReportTable {
  return {
    title: 'Findings',
    header: ['severity', 'account', 'subject', 'finding', 'fix'],
    rows: plan.findings.map((x) => [x.severity, x.account, x.subject, x.title, x.fix]),
  };
}

/** The tables of one account's section, in the order every format shows them. */
export function accountTables(a: AccountPlan, states?: Map<string, MigrationState>): ReportTable[] {
  const inv = a.inventory;
  return [
    {
      title: 'Proposed roles and directory groups',
      header: ['directory group', 'role', 'replaces', 'managed policies', 'inline policies'],
      rows: a.roles.map((r) => [
        r.directoryGroup,
        r.name,
        r.replaces
          .map((x) => `${x.source}${x.equivalence === 'first' ? '' : ` (${x.equivalence})`}`)
          .join(', '),
        r.managedPolicies.join(', '),
        r.inlinePolicies.map((p) => p.name).join(', '),
      ]),
      note: "Each role trusts Ferry's SAML provider only (`ferry aws setup-account` adds the trust).",
    },
    {
      title: 'Users: migration checklist',
      header: [
        'user',
        'kind',
        'directory groups',
        'state',
        'console',
        'MFA',
        'password last used',
        'active keys',
      ],
      rows: a.users.map((u) => {
        const iu = inv.users.find((x) => x.name === u.user);
        return [
          u.user,
          u.kind,
          u.directoryGroups.join(', ') || '—',
          states?.get(`${u.account}/${u.user}`) ?? u.state,
          iu?.console ?? 'unknown',
          iu?.mfa ?? 'unknown',
          day(iu?.passwordLastUsed ?? null),
          iu?.accessKeys
            .filter((k) => k.active)
            .map((k) => `#${k.slot} rotated ${day(k.lastRotated)}, used ${day(k.lastUsed)}`)
            .join('; ') || '—',
        ];
      }),
    },
    {
      title: 'Groups',
      header: ['group', 'members', 'managed policies', 'inline policies'],
      rows: inv.groups.map((g) => [
        g.name,
        g.members.join(', '),
        g.attachedPolicies.join(', '),
        g.inlinePolicies.join(', '),
      ]),
    },
    {
      title: 'Roles',
      header: ['role', 'type', 'trusted principals', 'managed policies', 'last used'],
      rows: inv.roles.map((r) => [
        r.name,
        r.serviceLinked ? 'service-linked' : 'custom',
        r.trustedPrincipals.join(', '),
        r.attachedPolicies.join(', '),
        day(r.lastUsed),
      ]),
    },
    { title: 'Policies', header: ['policy', 'kind', 'attached to'], rows: policyRows(inv) },
    {
      title: 'Identity providers to replace',
      header: ['provider', 'kind', 'trusted by'],
      rows: inv.identityProviders.map((p) => [p.arn, p.kind, p.trustedBy.join(', ') || '—']),
    },
  ];
}
