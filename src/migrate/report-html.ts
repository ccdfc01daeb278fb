import type { MigrationPlan, MigrationState } from './plan.js';
import { accountTables, day, figures, findingsTable } from './report-data.js';

const esc = (v: unknown) =>
  String(v ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const COLORS: Record<string, string> = {
  critical: '#7f1d1d',
  high: '#dc2626',
  medium: '#f59e0b',
  low: '#3b82f6',
  info: '#6b7280',
  unmapped: '#9ca3af',
  mapped: '#3b82f6',
  'signed-in': '#f59e0b',
  removed: '#16a34a',
};

/** A horizontal bar chart as inline SVG: no script, no external asset. */
export function barChart(title: string, bars: Array<{ label: string; value: number }>): string {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = 26;
  const width = 420;
  const labelW = 110;
  const rows = bars
    .map((b, i) => {
      const w = Math.round(((width - labelW - 50) * b.value) / max);
      const y = i * rowH + 30;
      return `<text x="0" y="${y + 15}" class="l">${esc(b.label)}</text><rect x="${labelW}" y="${y}" width="${w}" height="${rowH - 8}" fill="${COLORS[b.label] ?? '#2563eb'}"><title>${esc(b.label)}: ${b.value}</title></rect><text x="${labelW + w + 6}" y="${y + 15}" class="v">${b.value}</text>`;
    })
    .join('');
  return `<figure><svg role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bars.length * rowH + 36}" viewBox="0 0 ${width} ${bars.length * rowH + 36}"><text x="0" y="16" class="t">${esc(title)}</text>${rows}</svg></figure>`;
}

function table(header: string[], rows: unknown[][], raw = false): string {
  if (rows.length === 0) return '<p class="none">none</p>';
  return `<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${raw ? String(c) : esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#111;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f4f6}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}.t{font-weight:600;font-size:14px}.l,.v{font-size:12px}
.sev{display:inline-block;padding:0 .4rem;border-radius:.3rem;color:#fff;font-size:12px}.none{color:#666}code{font-size:12px}`;

/** The plan as one self-contained HTML page (inline CSS and SVG; works with scripts and networks off). */
export function htmlReport(plan: MigrationPlan, states?: Map<string, MigrationState>): string {
  const f = figures(plan, states);
  const sev = (s: string) => `<span class="sev" style="background:${COLORS[s]}">${esc(s)}</span>`;
  const parts: string[] = [];
  parts.push(
    `<h1>IAM migration plan</h1><p>As of ${esc(day(plan.asOf))} · ${plan.accounts.length} account(s) · ${plan.findings.length} finding(s)</p>`,
  );
  parts.push(
    `<div class="charts">${barChart('Findings by severity', f.findingsBySeverity)}${barChart('Active access keys by age', f.keyAges)}${barChart('Users by migration state', f.usersByState)}</div>`,
  );
  const findings = findingsTable(plan);
  parts.push(`<h2>${esc(findings.title)}</h2>`);
  parts.push(
    table(
      findings.header,
      findings.rows.map(([severity, account, subject, title, fix]) => [
        sev(String(severity)),
        esc(account),
        `<code>${esc(subject)}</code>`,
        esc(title),
        esc(fix),
      ]),
      true,
    ),
  );
  for (const a of plan.accounts) {
    parts.push(`<h2>Account ${esc(a.alias)} (${esc(a.accountId)})</h2>`);
    for (const section of accountTables(a, states)) {
      parts.push(`<h3>${esc(section.title)}</h3>`);
      parts.push(table(section.header, section.rows));
      if (section.note) parts.push(`<p>${esc(section.note).replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`);
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>IAM migration plan</title><style>${CSS}</style></head><body>${parts.join('\n')}</body></html>\n`;
}
