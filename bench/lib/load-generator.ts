import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { BenchEnv } from './env.js';

/** One kind of request the generator sends, the same to every target. */
export type LoadKind =
  | { kind: 'grant'; basic: string }
  | { kind: 'scim-create'; bearer: string; prefix: string }
  | { kind: 'trivial' };

export interface LoadRun {
  /** base URLs; requests go to them in turn (round-robin) */
  targets: string[];
  load: LoadKind;
  /** requests in flight at once, over all targets */
  concurrency: number;
  ms: number;
}

export interface LoadResult {
  /** answered with the expected status */
  ok: number;
  /** answered with the expected status, per target (a two-target run should split about evenly) */
  okPerTarget: number[];
  errors: number;
  firstError: string | null;
  ms: number;
  /** the generator's own CPU time over the run, microseconds */
  cpuUs: number;
}

interface Call {
  path: string;
  headers: Record<string, string | number>;
  body: string;
  status: number;
}

function callOf(load: LoadKind, n: number): Call {
  switch (load.kind) {
    case 'grant': {
      const body = 'grant_type=client_credentials';
      return {
        path: '/oidc/token',
        headers: {
          authorization: `Basic ${load.basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
        },
        body,
        status: 200,
      };
    }
    case 'scim-create': {
      const userName = `${load.prefix}-${n}@bench.example`;
      const body = JSON.stringify({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName,
        externalId: `${load.prefix}-${n}`,
        name: { givenName: 'Bench', familyName: `User ${n}` },
        emails: [{ value: userName, type: 'work', primary: true }],
        active: true,
      });
      return {
        path: '/scim/v2/Users',
        headers: {
          authorization: `Bearer ${load.bearer}`,
          'content-type': 'application/scim+json',
          'content-length': Buffer.byteLength(body),
        },
        body,
        status: 201,
      };
    }
    case 'trivial':
      return { path: '/', headers: { 'content-length': 2 }, body: '{}', status: 200 };
  }
}

/** POSTs one call; resolves with the status once the body is read (keep-alive). */
function send(agent: Agent, base: URL, call: Call): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: base.hostname, port: base.port, path: call.path, method: 'POST', agent, headers: call.headers },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', reject);
    req.end(call.body);
  });
}

/** Runs `concurrency` loops for `ms`, each sending to the next target in turn. */
async function generate(run: LoadRun, counter: { n: number }): Promise<LoadResult> {
  const bases = run.targets.map((t) => new URL(t));
  const agents = bases.map(() => new Agent({ keepAlive: true, maxSockets: run.concurrency }));
  let next = 0;
  let ok = 0;
  const okPerTarget = bases.map(() => 0);
  let errors = 0;
  let firstError: string | null = null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + run.ms;
  await Promise.all(
    Array.from({ length: run.concurrency }, async () => {
      while (performance.now() < end) {
        const i = next++ % bases.length;
        const call = callOf(run.load, counter.n++);
        try {
          const status = await send(agents[i]!, bases[i]!, call);
          if (status === call.status) {
            ok++;
            okPerTarget[i]!++;
          } else {
            errors++;
            firstError ??= `${call.path} answered ${status}`;
          }
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const a of agents) a.destroy();
  return { ok, okPerTarget, errors, firstError, ms, cpuUs: cpu.user + cpu.system };
}

/**
 * A load generator in a process of its own (so its CPU is its own and can be read from /proc), driven
 * over IPC: `run(r)` sends one run and resolves with what it measured.
 */
export class LoadGenerator {
  private constructor(readonly child: ChildProcess) {}

  static async start(env: BenchEnv): Promise<LoadGenerator> {
    const child = env.spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, FERRY_BENCH_LOAD_GENERATOR: '1' },
    });
    await once(child, 'spawn');
    return new LoadGenerator(child);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  run(r: LoadRun): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited (${code})`));
      this.child.once('exit', onExit);
      this.child.once('message', (m: LoadResult) => {
        this.child.off('exit', onExit);
        resolve(m);
      });
      this.child.send(r);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = once(this.child, 'exit');
    this.child.disconnect();
    await gone;
  }
}

// The child: one run per message, until the parent disconnects.
if (process.env.FERRY_BENCH_LOAD_GENERATOR === '1' && process.send) {
  const counter = { n: 0 };
  process.on('message', (r: LoadRun) => {
    void generate(r, counter).then((result) => process.send?.(result));
  });
  process.on('disconnect', () => process.exit(0));
}
