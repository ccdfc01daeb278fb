import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { configSchema } from '../src/app/config.js';
import { createServices } from '../src/app/services.js';
import { systemClock } from '../src/clock.js';
import { MasterKey, parseMasterKey } from '../src/keys/master-key.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';
import { CpuMeter } from './lib/cpu.js';
import type { BenchEnv } from './lib/env.js';
import { LoadGenerator, type LoadKind, type LoadResult } from './lib/load-generator.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';
import { checkBuild, type FerryProcess, startFerryProcess } from './lib/server.js';
import { stat } from './lib/stats.js';

/** Requests in flight, over all instances: the same load whether one instance serves it or two. */
const CONCURRENCY = 16;
const RUN_MS = 2_000;
const WARMUP_MS = 1_000;

const basicOf = (id: string, secret: string) =>
  Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

/** Requests per second of a run, refusing a run in which Ferry answered errors (it would flatter it). */
function rateOf(r: LoadResult, what: string): number {
  if (r.ok === 0 || r.errors > r.ok * 0.01)
    throw new Error(`${what}: ${r.errors} errors in ${r.ok + r.errors} requests (first: ${r.firstError})`);
  return (r.ok * 1000) / r.ms;
}

type Shares = Record<string, number>;

/** The median share of a core of each process group over runs, as "A 0.81, B 0.79, …". */
function cpuText(runs: Shares[]): string {
  const names = Object.keys(runs[0] ?? {});
  return names.map((n) => `${n} ${stat(runs.map((r) => r[n] ?? 0)).median.toFixed(2)}`).join(', ');
}

/**
 * Scale-out (issue 16 point 4): grants and SCIM user creates per second from one `ferry serve`, and from
 * two on the same PostgreSQL database with the load split between them in turn, driven by one load
 * generator in a process of its own at a fixed total concurrency. Ratio = two ÷ one, runs interleaved
 * (one, two, one, two …: both instances stay up, the second just gets no requests in a "one" run). The
 * generator's own ceiling is measured against a trivial node:http endpoint, and the CPU each process
 * used (from /proc, like pidstat) is given in the notes: on a small machine the instances, PostgreSQL
 * and the generator share the same cores, and that, not Ferry, bounds the ratio.
 */
export const scaleOut: Scenario = {
  name: 'scale-out',
  title: 'two `ferry serve` on one PostgreSQL vs one: grants and SCIM creates, same generator',
  async run(env: BenchEnv): Promise<Row[]> {
    if (!env.engines.includes('postgres')) {
      env.log('  scale-out: needs PostgreSQL; skipped');
      return [];
    }
    checkBuild(env);
    const url = await env.freshDatabase('postgres', 'scale-out');
    const masterKey = randomBytes(32).toString('base64');
    const ctx = { actor: { type: 'operator' as const, name: 'bench' } };
    let basic: string;
    let bearer: string;
    {
      const store = openStore(url, { poolSize: 2 });
      try {
        await migrateToLatest(store);
        const config = configSchema.parse({ database: { url }, log: { level: 'silent' } });
        const services = createServices(config, store, systemClock, new MasterKey(parseMasterKey(masterKey)));
        const { client, secret } = await services.oidcClients.create(ctx, {
          name: 'bench-scale-out',
          kind: 'workload',
        });
        basic = basicOf(client.clientId, secret!);
        bearer = (await services.scimConnections.create(ctx, { name: 'bench-scale-out' })).token;
      } finally {
        await store.close();
      }
    }

    const instances: FerryProcess[] = [];
    let generator: LoadGenerator | undefined;
    const trivial = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
        res.end('{}');
      });
    });
    const pgClient = new pg.Client({ connectionString: url });
    try {
      // One after the other: the first start checks the (already migrated) schema, the second finds it done.
      for (const name of ['a', 'b']) {
        instances.push(
          await startFerryProcess(env, {
            databaseUrl: url,
            masterKey,
            cwd: env.dir(`scale-out-${name}`),
            extraEnv: { FERRY_LOG_LEVEL: 'silent' },
          }),
        );
      }
      const [a, b] = instances as [FerryProcess, FerryProcess];
      generator = await LoadGenerator.start(env);
      const gen = generator;
      trivial.listen(0, '127.0.0.1');
      await once(trivial, 'listening');
      const trivialUrl = `http://127.0.0.1:${(trivial.address() as AddressInfo).port}`;
      await pgClient.connect();
      const backends = async () =>
        (
          await pgClient.query<{ pid: number }>(
            'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
          )
        ).rows.map((r) => r.pid);
      const meter = new CpuMeter({
        A: [a.child.pid ?? 0],
        B: [b.child.pid ?? 0],
        postgres: backends,
        generator: [gen.pid],
        bench: [process.pid],
      });
      const measured = async (targets: string[], load: LoadKind, what: string) => {
        await meter.start();
        const r = await gen.run({ targets, load, concurrency: CONCURRENCY, ms: RUN_MS });
        const cpu = await meter.stop();
        return { rate: rateOf(r, what), cpu };
      };

      /** Interleaved one/two runs of one kind of request. */
      const compare = async (load: LoadKind, what: string) => {
        await gen.run({ targets: [a.url], load, concurrency: CONCURRENCY, ms: WARMUP_MS });
        await gen.run({ targets: [a.url, b.url], load, concurrency: CONCURRENCY, ms: WARMUP_MS });
        const one: number[] = [];
        const two: number[] = [];
        const cpuOne: Shares[] = [];
        const cpuTwo: Shares[] = [];
        for (let i = 0; i < env.runs; i++) {
          const x = await measured([a.url], load, `${what}, one instance`);
          one.push(x.rate);
          cpuOne.push(x.cpu);
          const y = await measured([a.url, b.url], load, `${what}, two instances`);
          two.push(y.rate);
          cpuTwo.push(y.cpu);
        }
        return { one: stat(one), two: stat(two), cpuOne, cpuTwo };
      };

      env.log(`  scale-out: generator ceiling against a trivial endpoint, ${CONCURRENCY} in flight`);
      const ceiling: number[] = [];
      const cpuCeiling: Shares[] = [];
      await gen.run({
        targets: [trivialUrl],
        load: { kind: 'trivial' },
        concurrency: CONCURRENCY,
        ms: WARMUP_MS,
      });
      for (let i = 0; i < env.runs; i++) {
        const x = await measured([trivialUrl], { kind: 'trivial' }, 'trivial endpoint');
        ceiling.push(x.rate);
        cpuCeiling.push(x.cpu);
      }
      env.log('  scale-out: client-credential grants, one instance vs two');
      const grants = await compare({ kind: 'grant', basic }, 'grants');
      env.log('  scale-out: SCIM user creates, one instance vs two');
      const creates = await compare(
        { kind: 'scim-create', bearer, prefix: `so${process.pid}` },
        'SCIM creates',
      );

      const cores = availableParallelism();
      const bound = (r: { cpuOne: Shares[]; cpuTwo: Shares[] }) =>
        `${cores} cores shared by both instances, PostgreSQL and the generator. ` +
        `CPU in cores (median; machine = all processes, other work included): ` +
        `one instance: ${cpuText(r.cpuOne.map(({ B: _b, bench: _x, ...s }) => s))}; ` +
        `two: ${cpuText(r.cpuTwo.map(({ bench: _x, ...s }) => s))}`;
      return [
        {
          scenario: 'load generator ceiling (trivial node:http endpoint)',
          unit: 'requests/s',
          better: 'higher',
          ferry: null,
          reference: stat(ceiling),
          referenceName: `the scale-out generator, ${CONCURRENCY} in flight, against a node:http server answering {} at once`,
          goal: null,
          note: `generator and endpoint in separate processes; CPU in cores: ${cpuText(cpuCeiling.map(({ A: _a, B: _b, postgres: _p, ...s }) => s))} (bench = the endpoint)`,
        },
        {
          scenario: 'client-credential grants, two instances ÷ one (postgres)',
          unit: 'grants/s',
          better: 'higher',
          ferry: grants.two,
          reference: grants.one,
          referenceName: `one \`ferry serve\` on the same database, same generator, ${CONCURRENCY} in flight`,
          goal: ratioAtLeast(1.7),
          note: bound(grants),
        },
        {
          scenario: 'SCIM user creates, two instances ÷ one (postgres)',
          unit: 'creates/s',
          better: 'higher',
          ferry: creates.two,
          reference: creates.one,
          referenceName: `one \`ferry serve\` on the same database, same generator, ${CONCURRENCY} in flight`,
          goal: ratioAtLeast(1.7),
          note: bound(creates),
        },
      ];
    } finally {
      await generator?.stop();
      await pgClient.end().catch(() => {});
      trivial.close();
      for (const i of instances) await i.stop();
    }
  },
};
