import type { BenchEnv } from './env.js';
import type { Stat } from './stats.js';

/** Which way a figure is good: more per second, or fewer microseconds / megabytes. */
export type Better = 'higher' | 'lower';

/** One line of the table. `ratio` is always ferry ÷ reference. */
export interface Row {
  scenario: string;
  unit: string;
  better: Better;
  /** null for reference-only rows (e.g. raw signatures other scenarios compare against) */
  ferry: Stat | null;
  reference: Stat | null;
  referenceName: string;
  /** the reference is a published constant, not measured in this run */
  referencePublished?: boolean;
  goal: Goal | null;
  /** one line: why a goal is not met, or what the figure leaves out */
  note?: string;
}

export interface Goal {
  /** as printed, e.g. "ratio ≥ 0.6" or "p99 ≤ 5 ms" */
  text: string;
  met(ferry: number, ratio: number | null): boolean;
}

export const ratioAtLeast = (x: number): Goal => ({
  text: `ratio ≥ ${x}`,
  met: (_f, r) => r !== null && r >= x,
});
export const ratioAtMost = (x: number): Goal => ({
  text: `ratio ≤ ${x}`,
  met: (_f, r) => r !== null && r <= x,
});
export const atMost = (x: number, unit: string): Goal => ({ text: `≤ ${x} ${unit}`, met: (f) => f <= x });
export const atLeast = (x: number, unit: string): Goal => ({ text: `≥ ${x} ${unit}`, met: (f) => f >= x });

export interface Scenario {
  /** what `--only` takes */
  name: string;
  /** one line for the progress log and the docs */
  title: string;
  run(env: BenchEnv): Promise<Row[]>;
}

export interface ResultRow {
  scenario: string;
  unit: string;
  ferry: number | null;
  reference: number | null;
  referenceName: string;
  ratio: number | null;
  goal: string | null;
  met: boolean | null;
}

export function ratioOf(row: Row): number | null {
  if (!row.ferry || !row.reference || row.reference.median === 0) return null;
  return row.ferry.median / row.reference.median;
}

export function metOf(row: Row): boolean | null {
  if (!row.goal || !row.ferry) return null;
  return row.goal.met(row.ferry.median, ratioOf(row));
}
