import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux almost everywhere). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, or null off Linux / when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

/** The parent's pid of a process (field 4 of /proc/<pid>/stat), or null off Linux / when it is gone. */
export function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : null;
  } catch {
    return null;
  }
}

/**
 * A thread's time on a CPU and waiting for one (runnable, not running), in seconds so far, from
 * /proc/<pid>/schedstat (the process's main thread: Node's event loop); null off Linux / when gone.
 * Over an interval, what is neither was spent asleep: waiting for the network, the database, a timer.
 */
export function schedSeconds(pid: number): { running: number; runnable: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (!Number.isFinite(run) || !Number.isFinite(wait)) return null;
    return { running: run! / 1e9, runnable: wait! / 1e9 };
  } catch {
    return null;
  }
}

/** The whole machine's busy and total CPU seconds so far (all cores), from /proc/stat; null off Linux. */
export function machineCpuSeconds(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/**
 * CPU use of named processes over an interval, as a share of one core (1.0 = one core busy the whole
 * time), like pidstat. `pids()` is asked at the start and the end (processes may come and go: a pool
 * opening connections); a process first seen at the end counts all its CPU time as used in the interval.
 */
export class CpuMeter {
  readonly #start = new Map<string, Map<number, number>>();
  #t0 = 0;
  #machine0: { busy: number; total: number } | null = null;

  constructor(private readonly groups: Record<string, number[] | (() => Promise<number[]>)>) {}

  async #pids(name: string): Promise<number[]> {
    const g = this.groups[name]!;
    return Array.isArray(g) ? g : g();
  }

  async start(): Promise<void> {
    this.#t0 = performance.now();
    this.#machine0 = machineCpuSeconds();
    for (const name of Object.keys(this.groups)) {
      const at = new Map<number, number>();
      for (const pid of await this.#pids(name)) {
        const s = processCpuSeconds(pid);
        if (s !== null) at.set(pid, s);
      }
      this.#start.set(name, at);
    }
  }

  /** Share of one core per group, and `machine`: all cores' busy time, in cores. */
  async stop(): Promise<Record<string, number>> {
    const seconds = (performance.now() - this.#t0) / 1000;
    const out: Record<string, number> = {};
    for (const name of Object.keys(this.groups)) {
      const at = this.#start.get(name) ?? new Map<number, number>();
      const seen = new Set([...at.keys(), ...(await this.#pids(name))]);
      let used = 0;
      for (const pid of seen) {
        const now = processCpuSeconds(pid);
        if (now !== null) used += now - (at.get(pid) ?? 0);
      }
      out[name] = used / seconds;
    }
    const m1 = machineCpuSeconds();
    if (m1 && this.#machine0) out.machine = (m1.busy - this.#machine0.busy) / seconds;
    return out;
  }
}
