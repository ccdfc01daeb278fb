import { performance } from 'node:perf_hooks';
import { percentile, type Stat, stat } from './stats.js';

export type Op = () => unknown;

export interface ThroughputOptions {
  /** measured runs per operation (the median of these is the figure) */
  runs: number;
  /** how long one run lasts */
  runMs: number;
  /** untimed calls before the first run, per operation */
  warmupMs: number;
  /** operations in flight at once (default 1) */
  concurrency?: number;
}

const isPromise = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** Calls `op` back to back for `ms` (with `concurrency` loops); returns operations per second. */
export async function runFor(op: Op, ms: number, concurrency = 1): Promise<number> {
  let count = 0;
  const start = performance.now();
  const end = start + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const r = op();
      if (isPromise(r)) await r;
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return (count * 1000) / (performance.now() - start);
}

/**
 * Throughput of several operations measured in the same process, runs interleaved (a b a b …) so
 * that drift (thermal, other load, a database growing) falls on all of them alike.
 */
export async function throughputs<K extends string>(
  ops: Record<K, Op>,
  o: ThroughputOptions,
): Promise<Record<K, Stat>> {
  const names = Object.keys(ops) as K[];
  for (const name of names) await runFor(ops[name], o.warmupMs, o.concurrency);
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let run = 0; run < o.runs; run++) {
    for (const name of names) samples[name].push(await runFor(ops[name], o.runMs, o.concurrency));
  }
  return Object.fromEntries(names.map((n) => [n, stat(samples[n])])) as Record<K, Stat>;
}

export interface LatencyOptions {
  runs: number;
  /** timed calls per run */
  perRun: number;
  /** untimed calls before the first run, per operation */
  warmup: number;
}

export interface LatencyStat {
  /** each run's median, summarised over runs */
  p50: Stat;
  /** each run's 99th percentile, summarised over runs */
  p99: Stat;
}

/**
 * Per-call latency in microseconds of several operations, one after another (never overlapping),
 * runs interleaved. `op(i)` gets the call's index so it can walk through a sample of inputs.
 */
export async function latencies<K extends string>(
  ops: Record<K, (i: number) => unknown>,
  o: LatencyOptions,
): Promise<Record<K, LatencyStat>> {
  const names = Object.keys(ops) as K[];
  for (const name of names) {
    for (let i = 0; i < o.warmup; i++) {
      const r = ops[name](i);
      if (isPromise(r)) await r;
    }
  }
  const p50 = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  const p99 = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  const times = new Float64Array(o.perRun);
  let index = o.warmup;
  for (let run = 0; run < o.runs; run++) {
    for (const name of names) {
      const op = ops[name];
      for (let i = 0; i < o.perRun; i++) {
        const t0 = process.hrtime.bigint();
        const r = op(index + i);
        if (isPromise(r)) await r;
        times[i] = Number(process.hrtime.bigint() - t0) / 1000;
      }
      p50[name].push(percentile(times, 50));
      p99[name].push(percentile(times, 99));
    }
    index += o.perRun;
  }
  return Object.fromEntries(names.map((n) => [n, { p50: stat(p50[n]), p99: stat(p99[n]) }])) as Record<
    K,
    LatencyStat
  >;
}

/** Runs `fn` `runs` times (after `warmup` untimed ones) and summarises what it returns. */
export async function repeat(fn: () => Promise<number>, runs: number, warmup = 1): Promise<Stat> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await fn());
  return stat(samples);
}
