import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The real `ferry` command (bin/ferry.js over dist/, built by `npm run build`). */
export const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** added to a clean environment (no inherited FERRY_* variables) */
  env?: Record<string, string | undefined>;
  /** written to standard input, which is then closed */
  input?: string;
  /** the command is killed after this long (default 30 s) */
  timeoutMs?: number;
}

/** A free TCP port on 127.0.0.1: bind port 0, read the port the kernel chose, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * The environment a spawned `ferry` sees: this process's, minus every FERRY_* variable (so a
 * developer's own settings can't leak in), quiet logs unless asked, plus the test's variables.
 */
function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  const merged: NodeJS.ProcessEnv = { ...inherited, FERRY_LOG_LEVEL: 'warn', NO_COLOR: '1' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

/** Live children, killed if this process exits before a test stopped them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Runs `ferry ARGS…` to completion; a non-zero exit is returned, not thrown. */
export function runFerry(args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      cwd: options.cwd,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => stdout.push(c));
    child.stderr!.on('data', (c: Buffer) => stderr.push(c));
    const timeoutMs = options.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `ferry ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${Buffer.concat(stderr).toString()}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    child.stdin!.end(options.input ?? '');
  });
}

export interface FerryProcess {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  pid: number;
  /** stdout and stderr so far, interleaved as they arrived */
  output(): string;
  /** true until the process has exited */
  alive(): boolean;
  /** resolves with how the process ended (whenever that happens) */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; after `timeoutMs` (default 10 s) it
   * is killed with SIGKILL. Safe to call more than once and after the process has exited.
   */
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartProcessOptions {
  cwd: string;
  /** added to a clean environment; FERRY_LISTEN is set to a free loopback port unless given */
  env?: Record<string, string | undefined>;
  /** extra arguments after `serve` (e.g. ['--config', path]) */
  args?: string[];
  /** how long to wait for /healthz (default 20 s) */
  readyTimeoutMs?: number;
}

const started = new Set<FerryProcess>();

/**
 * Starts `ferry serve` as a child process on a free loopback port and waits until /healthz
 * answers 200. Rejects (and kills the child) if it exits first or doesn't answer in time.
 */
export async function startFerryProcess(options: StartProcessOptions): Promise<FerryProcess> {
  // Another process could take the port between our probe and Ferry's bind: retry on EADDRINUSE.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortTaken)) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(options: StartProcessOptions): Promise<FerryProcess> {
  const explicit = options.env?.FERRY_LISTEN;
  const port = explicit ? Number(explicit.slice(explicit.lastIndexOf(':') + 1)) : await freePort();
  const env = { FERRY_LISTEN: `127.0.0.1:${port}`, ...options.env };
  const child = spawn(process.execPath, [FERRY_BIN, 'serve', ...(options.args ?? [])], {
    cwd: options.cwd,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const chunks: string[] = [];
  child.stdout!.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', () => {
      exitInfo = { code: null, signal: null };
      resolve(exitInfo);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const output = () => chunks.join('');

  const proc: FerryProcess = {
    url,
    port,
    pid: child.pid ?? -1,
    output,
    alive: () => exitInfo === null,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (exitInfo) return exitInfo;
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, timeoutMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      const result = await exited;
      started.delete(proc);
      return result;
    },
  };
  started.add(proc);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (exitInfo) {
      started.delete(proc);
      const text = output();
      const message = `ferry serve exited (${JSON.stringify(exitInfo)}) before it was healthy:\n${text}`;
      throw text.includes('EADDRINUSE') && !explicit ? new PortTaken(message) : new Error(message);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return proc;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error(`ferry serve did not answer /healthz within the deadline:\n${output()}`);
    }
    await sleep(100);
  }
}

/** Stops every `ferry serve` this file started that is still running (use in afterAll/afterEach). */
export async function stopAllFerryProcesses(): Promise<void> {
  await Promise.all([...started].map((p) => p.stop('SIGTERM', 5_000)));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`
 * with the last error or value. Every wait in the e2e tests is bounded this way.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`,
      );
    }
    await sleep(intervalMs);
  }
}

/** True when nothing accepts connections on 127.0.0.1:port. */
export async function portClosed(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return false;
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return code === 'ECONNREFUSED';
  }
}

/**
 * Which of `pids` holds the TCP connection whose local port is `localPort` (Linux: the socket's inode
 * in /proc/net/tcp{,6}, then each process's fds). Tells a test which instance sent a request it sees.
 */
export function socketOwner(localPort: number, pids: number[]): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (local && Number.parseInt(local.split(':').pop()!, 16) === localPort) inodes.add(cols[9]!);
    }
  }
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return pid;
      } catch {
        // the fd closed meanwhile
      }
    }
  }
  return undefined;
}
