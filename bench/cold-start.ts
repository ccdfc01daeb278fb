import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchEnv } from './lib/env.js';
import { atMost, type Row, type Scenario } from './lib/scenario.js';
import { checkBuild, cleanEnv, startFerryProcess } from './lib/server.js';
import { type Stat, stat } from './lib/stats.js';

/** Spawn-to-exit of `node -e 0`: the floor of starting any Node program on this machine. */
async function bareNode(env: BenchEnv): Promise<number> {
  const t0 = performance.now();
  const child = env.spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env: cleanEnv({}) });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`node -e 0 exited ${code}`))));
  });
  return performance.now() - t0;
}

/**
 * Time from spawning `node bin/ferry.js serve` (SQLite in a fresh temp directory) to the first 200
 * from /readyz. The first start also migrates the empty database and generates the RSA-3072 SAML
 * signing key; the second (warm) start on the same directory does neither.
 */
export const coldStart: Scenario = {
  name: 'cold-start',
  title: 'spawn `ferry serve` to /readyz 200 (first and warm start) vs `node -e 0`',
  async run(env: BenchEnv): Promise<Row[]> {
    checkBuild(env);
    const masterKey = randomBytes(32).toString('base64');
    const first: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i <= env.runs; i++) {
      const dir = env.dir(`cold-start-${i}`);
      const o = { databaseUrl: `sqlite:${join(dir, 'ferry.db')}`, masterKey, cwd: dir };
      const a = await startFerryProcess(env, o);
      await a.stop();
      const b = await startFerryProcess(env, o);
      await b.stop();
      // The first pair warms the OS file cache and is not counted.
      if (i > 0) {
        first.push(a.readyMs);
        warm.push(b.readyMs);
      }
    }
    await bareNode(env);
    const bare: number[] = [];
    for (let i = 0; i < Math.max(10, env.runs); i++) bare.push(await bareNode(env));
    const node: Stat = stat(bare);
    return [
      {
        scenario: 'cold start, first (migrate + RSA-3072 key)',
        unit: 'ms to /readyz 200',
        better: 'lower',
        ferry: stat(first),
        reference: node,
        referenceName: 'spawn `node -e 0` to exit',
        goal: atMost(5000, 'ms'),
        note: 'RSA-3072 key generation takes a random time (prime search), hence the wide spread of first starts',
      },
      {
        scenario: 'cold start, warm (second start)',
        unit: 'ms to /readyz 200',
        better: 'lower',
        ferry: stat(warm),
        reference: node,
        referenceName: 'spawn `node -e 0` to exit',
        goal: atMost(1000, 'ms'),
        note: "mostly loading modules (Ferry's own and its pure-ESM packages as one bundle: ADR 0054; oidc-provider, the AWS SDK, WebAuthn and others load at first use, and route schemas compile on a route's first request: ADR 0046)",
      },
    ];
  },
};
