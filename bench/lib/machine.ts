import { availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  os: string;
  memoryGiB: number;
  date: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews figures */
  load: { start: number; end: number | null };
}

export function machine(): Machine {
  const list = cpus();
  return {
    cores: availableParallelism(),
    cpu: list[0]?.model.trim() ?? 'unknown',
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    date: new Date().toISOString(),
    load: { start: round2(loadavg()[0] ?? 0), end: null },
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Records the load average at the end of the run. */
export function finish(m: Machine): Machine {
  return { ...m, load: { ...m.load, end: round2(loadavg()[0] ?? 0) } };
}
