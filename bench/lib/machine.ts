import { availableParallelism, cpus, platform, release, totalmem } from 'node:os';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  os: string;
  memoryGiB: number;
  date: string;
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
  };
}
