import type { MigrationPlan, MigrationState } from './plan.js';
import { figures, policyRows } from './report-data.js';

const cell = (v: unknown) =>
  String(v ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');
function table(header: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '_none_\n';
  return `| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |\n${rows.map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n')}\n`;
}
const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '—');

/** The plan as Markdown: for a pull request or a ticket. */
export function markdownReport(plan: MigrationPlan, states?: Map<string, MigrationState>): string {
  const f = figures(plan, states);
  const out: string[] = [`# IAM migration plan (as of ${day(plan.asOf)})\n`];
  out.push('## Summary\n');
  out.push(
    table(
      ['severity', 'findings'],
      f.findingsBySeverity.map((x) => [x.label, x.value]),
    ),
  );
  out.push(
    `\n${table(
      ['access key age', 'active keys'],
      f.keyAges.map((x) => [x.label, x.value]),
    )}`,
  );
  out.push(
    `\n${table(
      ['migration state', 'users'],
      f.usersByState.map((x) => [x.label, x.value]),
    )}`,
  );
  out.push('\n## Findings\n');
  out.push(
    table(
      ['severity', 'account', 'subject', 'finding', 'fix'],
      plan.findings.map((x) => [x.severity, x.account, x.subject, x.title, x.fix]),
    ),
  );
  for (const a of plan.accounts) {
    const inv = a.inventory;
    out.push(`\n## Account ${a.alias} (${a.accountId})\n`);
    out.push('### Proposed roles and directory groups\n');
    out.push(
      table(
        ['directory group', 'role', 'replaces', 'managed policies', 'inline policies'],
        a.roles.map((r) => [
          r.directoryGroup,
          r.name,
          r.replaces
            .map((x) => `${x.source}${x.equivalence === 'first' ? '' : ` (${x.equivalence})`}`)
            .join(', '),
          r.managedPolicies.join(', '),
          r.inlinePolicies.map((p) => p.name).join(', '),
        ]),
      ),
    );
    out.push("\nEach role trusts Ferry's SAML provider only (`ferry aws setup-account` adds the trust).\n");
    out.push('\n### Users: migration checklist\n');
    out.push(
      table(
        ['user', 'kind', 'directory groups', 'state', 'console', 'MFA', 'password last used', 'active keys'],
        a.users.map((u) => {
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
      ),
    );
    out.push('\n### Groups\n');
    out.push(
      table(
        ['group', 'members', 'managed policies', 'inline policies'],
        inv.groups.map((g) => [
          g.name,
          g.members.join(', '),
          g.attachedPolicies.join(', '),
          g.inlinePolicies.join(', '),
        ]),
      ),
    );
    out.push('\n### Roles\n');
    out.push(
      table(
        ['role', 'type', 'trusted principals', 'managed policies', 'last used'],
        inv.roles.map((r) => [
          r.name,
          r.serviceLinked ? 'service-linked' : 'custom',
          r.trustedPrincipals.join(', '),
          r.attachedPolicies.join(', '),
          day(r.lastUsed),
        ]),
      ),
    );
    out.push('\n### Policies\n');
    out.push(table(['policy', 'kind', 'attached to'], policyRows(inv)));
    out.push('\n### Identity providers to replace\n');
    out.push(
      table(
        ['provider', 'kind', 'trusted by'],
        inv.identityProviders.map((p) => [p.arn, p.kind, p.trustedBy.join(', ') || '—']),
      ),
    );
    if (a.emptyGroups.length)
      out.push(`\nGroups that grant nothing (no role proposed): ${a.emptyGroups.join(', ')}\n`);
  }
  return `${out.join('')}`;
}
