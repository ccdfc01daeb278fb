/** A figure measured several times: the median and the spread around it. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  /** first and third quartile */
  q1: number;
  q3: number;
  /** every run's value, in the order measured */
  samples: number[];
}

/** Linear interpolation between closest ranks (the usual "type 7" quantile). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function stat(samples: number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    samples,
  };
}

/** A constant that was published, not measured here (e.g. a vendor's sizing guide). */
export function published(value: number): Stat {
  return { median: value, min: value, max: value, q1: value, q3: value, samples: [] };
}

/** p-th percentile (0..100) of raw observations. */
export function percentile(values: Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort();
  return quantile(sorted, p / 100);
}
