import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type BenchEnv, REPO_ROOT } from './env.js';

export const FERRY_BIN = join(REPO_ROOT, 'bin', 'ferry.js');

/** bin/ferry.js runs the build in dist/: refuse to measure a missing one, warn about a stale one. */
export function checkBuild(env: BenchEnv): void {
  const main = join(REPO_ROOT, 'dist', 'app', 'main.js');
  if (!existsSync(main))
    throw new Error('dist/ is missing: run `npm run build` first (bin/ferry.js runs dist/)');
  const built = statSync(main).mtimeMs;
  const start = join(REPO_ROOT, 'src', 'app', 'start.ts');
  if (existsSync(start) && statSync(start).mtimeMs > built) {
    env.log('  warning: dist/ looks older than src/; `npm run build` first to measure the current code');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** GET url; resolves with the status code, rejects when nothing listens yet. */
function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

export interface FerryProcess {
  child: ChildProcess;
  url: string;
  /** milliseconds from spawn() to the first 200 from /readyz */
  readyMs: number;
  stop(): Promise<void>;
}

/** Environment for a child: the caller's, without any FERRY_* settings of the shell it was started from. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FERRY_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Spawns `node bin/ferry.js serve` and polls /readyz every 2 ms until it answers 200. The time is
 * taken from just before spawn(), so it includes loading Node, the modules, migrating and key setup.
 */
export async function startFerryProcess(
  env: BenchEnv,
  o: { databaseUrl: string; masterKey: string; cwd: string; extraEnv?: Record<string, string> },
): Promise<FerryProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = env.spawn(process.execPath, [FERRY_BIN, 'serve'], {
    cwd: o.cwd,
    env: cleanEnv({
      FERRY_DATABASE_URL: o.databaseUrl,
      FERRY_MASTER_KEY: o.masterKey,
      FERRY_LISTEN: `127.0.0.1:${port}`,
      FERRY_PUBLIC_URL: url,
      ...o.extraEnv,
    }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`ferry serve exited (${code ?? signal}) before ready: ${stderr}`)),
    ),
  );
  exited.catch(() => {});
  const deadline = t0 + 60_000;
  let readyMs = -1;
  while (performance.now() < deadline) {
    const code = await Promise.race([status(`${url}/readyz`).catch(() => 0), exited]);
    if (code === 200) {
      readyMs = performance.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };
  if (readyMs < 0) {
    await stop();
    throw new Error(`ferry serve was not ready within 60 s: ${stderr}`);
  }
  return { child, url, readyMs, stop };
}

/** Resident set size of a process in MB (10^6 bytes, as Keycloak's sizing guide counts): /proc, else ps. */
export function rssMB(pid: number): number {
  let kib: number | undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (m) kib = Number(m[1]);
  } catch {
    // not Linux
  }
  kib ??= Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim());
  return (kib * 1024) / 1e6;
}
