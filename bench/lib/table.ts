import type { Machine } from './machine.js';
import { metOf, type ResultRow, type Row, ratioOf } from './scenario.js';
import type { Stat } from './stats.js';

/** Three significant digits, thousands separated: 0.0123, 1.23, 12.3, 123, 1,234. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}

function figure(s: Stat | null, publishedConstant = false): string {
  if (!s) return '—';
  if (publishedConstant) return `${num(s.median)} (published)`;
  return `${num(s.median)} [${num(s.min)}–${num(s.max)}]`;
}

const HEADERS = [
  'scenario',
  'unit',
  'Ferry median [min–max]',
  'reference median [min–max]',
  'reference',
  'ratio',
  'goal',
  'met?',
];

function cells(row: Row): string[] {
  const ratio = ratioOf(row);
  const met = metOf(row);
  return [
    row.scenario,
    row.unit,
    figure(row.ferry),
    figure(row.reference, row.referencePublished),
    row.referenceName,
    ratio === null ? '—' : num(ratio),
    row.goal?.text ?? '—',
    met === null ? '—' : met ? 'yes' : 'NO',
  ];
}

export function textTable(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd();
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

export function markdownTable(rows: Row[]): string {
  const esc = (c: string) => c.replaceAll('|', '\\|');
  const out = [`| ${HEADERS.join(' | ')} |`, `|${HEADERS.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  return out.join('\n');
}

/** One line per distinct note, naming the rows it belongs to. */
export function notes(rows: Row[]): string[] {
  const byNote = new Map<string, string[]>();
  for (const r of rows) if (r.note) byNote.set(r.note, [...(byNote.get(r.note) ?? []), r.scenario]);
  return [...byNote].map(([note, scenarios]) => `${scenarios.join('; ')}: ${note}`);
}

export function machineLine(m: Machine): string {
  const load = `load ${m.load.start}${m.load.end === null ? '' : ` → ${m.load.end}`}`;
  return `${m.date} · ${m.cores} cores · ${m.cpu} · ${m.memoryGiB} GiB · Node ${m.node} · ${m.os} · ${load}`;
}

/** The JSON the issue asks for, with the spread and the machine alongside. */
export function jsonRows(rows: Row[], m: Machine) {
  return rows.map((r) => {
    const base: ResultRow = {
      scenario: r.scenario,
      unit: r.unit,
      ferry: r.ferry?.median ?? null,
      reference: r.reference?.median ?? null,
      referenceName: r.referenceName,
      ratio: ratioOf(r),
      goal: r.goal?.text ?? null,
      met: metOf(r),
    };
    const spread = (s: Stat | null) =>
      s ? { min: s.min, q1: s.q1, q3: s.q3, max: s.max, runs: s.samples } : null;
    return {
      ...base,
      better: r.better,
      ferrySpread: spread(r.ferry),
      referenceSpread: r.referencePublished ? null : spread(r.reference),
      referencePublished: r.referencePublished ?? false,
      note: r.note ?? null,
      machine: m,
    };
  });
}
