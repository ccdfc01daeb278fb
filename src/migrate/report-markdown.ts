import type { MigrationPlan, MigrationState } from './plan.js';
import { accountTables, day, figures, findingsTable } from './report-data.js';

const cell = (v: unknown) =>
  String(v ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');
function table(header: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '_none_\n';
  return `| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |\n${rows.map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n')}\n`;
}

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
  const findings = findingsTable(plan);
  out.push(`\n## ${findings.title}\n`, table(findings.header, findings.rows));
  for (const a of plan.accounts) {
    out.push(`\n## Account ${a.alias} (${a.accountId})\n`);
    for (const [i, section] of accountTables(a, states).entries()) {
      out.push(`${i === 0 ? '' : '\n'}### ${section.title}\n`, table(section.header, section.rows));
      if (section.note) out.push(`\n${section.note}\n`);
    }
    if (a.emptyGroups.length)
      out.push(`\nGroups that grant nothing (no role proposed): ${a.emptyGroups.join(', ')}\n`);
  }
  return `${out.join('')}`;
}
