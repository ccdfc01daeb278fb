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
import { CpuMeter, parentPid, schedSeconds } from './lib/cpu.js';
import type { BenchEnv } from './lib/env.js';
import { LoadGenerator, type LoadKind, type LoadResult } from './lib/load-generator.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';
import { checkBuild, type FerryProcess, startFerryProcess } from './lib/server.js';
import { stat } from './lib/stats.js';
import { num } from './lib/table.js';

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

/** One measured run: its rate and the CPU (in cores) of each process group while it ran. */
interface Run {
  rate: number;
  cpu: Shares;
  /** requests answered by each target, in order */
  perTarget: number[];
  /** each instance's main thread (event loop) over the run: shares of the wall time */
  loop: Record<'A' | 'B', Loop>;
}

/** Where an event loop's wall time went: on a CPU, waiting for one, asleep (I/O, PostgreSQL). */
interface Loop {
  running: number;
  runnable: number;
  asleep: number;
}

/** The median shares of an instance's event loop over runs, as "running 0.62, waiting for a CPU 0.30, asleep 0.08". */
function loopText(runs: Run[], which: 'A' | 'B'): string {
  const m = (k: keyof Loop) => stat(runs.map((r) => r.loop[which][k])).median.toFixed(2);
  return `running ${m('running')}, waiting for a CPU ${m('runnable')}, asleep ${m('asleep')}`;
}

/**
 * Where a run's CPU went, in cores: Ferry (both instances: in a "one" run the idle second instance
 * still runs its background work, and counts), PostgreSQL (the bench database's backends, the
 * server's background processes and the postmaster), the generator, the bench process itself (IPC and
 * this meter), other work on the machine, and idle.
 */
function splitOf(r: Run, cores: number) {
  const ferry = (r.cpu.A ?? 0) + (r.cpu.B ?? 0);
  const postgres = r.cpu.postgres ?? 0;
  const generator = r.cpu.generator ?? 0;
  const bench = r.cpu.bench ?? 0;
  const ours = ferry + postgres + generator + bench;
  const machine = r.cpu.machine ?? ours;
  const other = Math.max(0, machine - ours);
  return { ferry, postgres, generator, bench, ours, other, idle: Math.max(0, cores - machine) };
}

/**
 * The best two ÷ one this machine could show, from a "one" run: the cores the request path used (Ferry,
 * PostgreSQL, generator, bench) against the cores available to it (all of them less other work, and
 * never less than what was used). Two instances cannot serve more than available ÷ used times as many
 * requests at the same CPU per request, nor more than twice as many. `costTwoOverOne`: the CPU per
 * request of two instances ÷ that of one, when the ceiling should allow for two costing more.
 */
function ceilingOf(one: Run, cores: number, costTwoOverOne = 1): number {
  const s = splitOf(one, cores);
  const available = Math.max(s.ours, cores - s.other);
  return Math.min(2, available / (s.ours * costTwoOverOne));
}

/** CPU per request in µs by group (median over runs), and cores idle / used by other work. */
function perRequestText(runs: Run[], cores: number): string {
  const us = (f: (s: ReturnType<typeof splitOf>) => number) =>
    stat(runs.map((r) => (f(splitOf(r, cores)) / r.rate) * 1e6)).median;
  const cores_ = (f: (s: ReturnType<typeof splitOf>) => number) =>
    stat(runs.map((r) => f(splitOf(r, cores)))).median.toFixed(2);
  return (
    `CPU µs per request: Ferry ${us((s) => s.ferry).toFixed(0)}, PostgreSQL ${us((s) => s.postgres).toFixed(0)}, ` +
    `generator ${us((s) => s.generator).toFixed(0)}, bench ${us((s) => s.bench).toFixed(0)}, ` +
    `total ${us((s) => s.ours).toFixed(0)}; cores used by these ${cores_((s) => s.ours)}, ` +
    `by other work ${cores_((s) => s.other)}, idle ${cores_((s) => s.idle)}`
  );
}

/**
 * Scale-out (issue 16 point 4): grants and SCIM user creates per second from one `ferry serve`, and from
 * two on the same PostgreSQL database with the load split between them in turn, driven by one load
 * generator in a process of its own at a fixed total concurrency. Ratio = two ÷ one, runs interleaved
 * (one, two, one, two …: both instances stay up, the second just gets no requests in a "one" run). The
 * generator's own ceiling is measured against a trivial node:http endpoint, and the CPU each process
 * used (from /proc, like pidstat) is given in the notes: on a small machine the instances, PostgreSQL
 * and the generator share the same cores, and that, not Ferry, bounds the ratio. So each kind of request
 * also gets a row with this machine's ceiling for two ÷ one, min(2, cores available ÷ cores the
 * one-instance run used), next to the measured two ÷ one of the same rounds.
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
        const cwd = env.dir(`scale-out-${name}`);
        instances.push(
          await startFerryProcess(env, {
            databaseUrl: url,
            masterKey,
            cwd,
            extraEnv: { FERRY_LOG_LEVEL: 'silent' },
          }),
        );
      }
      const [a, b] = instances as [FerryProcess, FerryProcess];
      const cores = availableParallelism();
      generator = await LoadGenerator.start(env);
      const gen = generator;
      trivial.listen(0, '127.0.0.1');
      await once(trivial, 'listening');
      const trivialUrl = `http://127.0.0.1:${(trivial.address() as AddressInfo).port}`;
      await pgClient.connect();
      // PostgreSQL's processes for this run: the bench database's backends (not other databases' on a
      // shared server), the server's background processes (WAL writer, checkpointer, …: they do this
      // run's commits' work) and the postmaster, the parent of them all.
      const postmaster = parentPid(
        (await pgClient.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid,
      );
      const postgresPids = async () => [
        ...(
          await pgClient.query<{ pid: number }>(
            `select pid from pg_stat_activity
              where pid <> pg_backend_pid() and (datname = current_database() or datname is null)`,
          )
        ).rows.map((r) => r.pid),
        ...(postmaster === null ? [] : [postmaster]),
      ];
      const meter = new CpuMeter({
        A: [a.child.pid ?? 0],
        B: [b.child.pid ?? 0],
        postgres: postgresPids,
        generator: [gen.pid],
        bench: [process.pid],
      });
      const measured = async (
        targets: string[],
        load: LoadKind,
        what: string,
        concurrency = CONCURRENCY,
      ): Promise<Run> => {
        const pids = { A: a.child.pid ?? 0, B: b.child.pid ?? 0 };
        const sched0 = { A: schedSeconds(pids.A), B: schedSeconds(pids.B) };
        const t0 = performance.now();
        await meter.start();
        const r = await gen.run({ targets, load, concurrency, ms: RUN_MS });
        const cpu = await meter.stop();
        const wall = (performance.now() - t0) / 1000;
        const loopOf = (k: 'A' | 'B'): Loop => {
          const s0 = sched0[k];
          const s1 = schedSeconds(pids[k]);
          if (!s0 || !s1) return { running: Number.NaN, runnable: Number.NaN, asleep: Number.NaN };
          const running = (s1.running - s0.running) / wall;
          const runnable = (s1.runnable - s0.runnable) / wall;
          return { running, runnable, asleep: Math.max(0, 1 - running - runnable) };
        };
        return {
          rate: rateOf(r, what),
          cpu,
          perTarget: r.okPerTarget,
          loop: { A: loopOf('A'), B: loopOf('B') },
        };
      };

      /**
       * Interleaved one/two runs of one kind of request, and two more runs per round with twice the
       * requests in flight, one instance and two: if neither gains, CONCURRENCY already saturates both
       * configurations (two instances get half of it each), and the comparison is fair both ways.
       */
      const compare = async (load: LoadKind, what: string) => {
        await gen.run({ targets: [a.url], load, concurrency: CONCURRENCY, ms: WARMUP_MS });
        await gen.run({ targets: [a.url, b.url], load, concurrency: CONCURRENCY, ms: WARMUP_MS });
        const one: Run[] = [];
        const two: Run[] = [];
        const oneDouble: Run[] = [];
        const twoDouble: Run[] = [];
        for (let i = 0; i < env.runs; i++) {
          one.push(await measured([a.url], load, `${what}, one instance`));
          two.push(await measured([a.url, b.url], load, `${what}, two instances`));
          oneDouble.push(
            await measured(
              [a.url],
              load,
              `${what}, one instance, ${2 * CONCURRENCY} in flight`,
              2 * CONCURRENCY,
            ),
          );
          twoDouble.push(
            await measured(
              [a.url, b.url],
              load,
              `${what}, two instances, ${2 * CONCURRENCY} in flight`,
              2 * CONCURRENCY,
            ),
          );
        }
        const ratios = one.map((o, i) => two[i]!.rate / o.rate);
        const ceilings = one.map((o) => ceilingOf(o, cores));
        // The same ceiling at the CPU per request the two-instance run of the round needed (smaller
        // batches per instance cost more per request): what two could show if only the cores limited it.
        const ceilingsAtTwo = one.map((o, i) => {
          const t = two[i]!;
          return ceilingOf(o, cores, splitOf(t, cores).ours / t.rate / (splitOf(o, cores).ours / o.rate));
        });
        const split = two.map((t) => Math.min(...t.perTarget) / Math.max(...t.perTarget));
        env.log(
          `    one: ${one.map((r) => r.rate.toFixed(0)).join(' ')}/s; two: ${two.map((r) => r.rate.toFixed(0)).join(' ')}/s; ` +
            `at ${2 * CONCURRENCY} in flight: one ${oneDouble.map((r) => r.rate.toFixed(0)).join(' ')}/s, two ${twoDouble.map((r) => r.rate.toFixed(0)).join(' ')}/s`,
        );
        env.log(
          `    two ÷ one per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}; ceiling: ${ceilings.map((x) => x.toFixed(2)).join(' ')}; at two's CPU per request: ${ceilingsAtTwo.map((x) => x.toFixed(2)).join(' ')}`,
        );
        env.log(`    one: ${perRequestText(one, cores)}; event loop A: ${loopText(one, 'A')}`);
        env.log(
          `    two: ${perRequestText(two, cores)}; event loop A: ${loopText(two, 'A')}; B: ${loopText(two, 'B')}`,
        );
        return {
          one: stat(one.map((r) => r.rate)),
          two: stat(two.map((r) => r.rate)),
          oneDouble: stat(oneDouble.map((r) => r.rate)),
          twoDouble: stat(twoDouble.map((r) => r.rate)),
          ceilingsAtTwo: stat(ceilingsAtTwo),
          ratios: stat(ratios),
          ceilings: stat(ceilings),
          split: stat(split),
          runsOne: one,
          runsTwo: two,
        };
      };

      env.log(`  scale-out: generator ceiling against a trivial endpoint, ${CONCURRENCY} in flight`);
      const ceiling: Run[] = [];
      await gen.run({
        targets: [trivialUrl],
        load: { kind: 'trivial' },
        concurrency: CONCURRENCY,
        ms: WARMUP_MS,
      });
      for (let i = 0; i < env.runs; i++) {
        ceiling.push(await measured([trivialUrl], { kind: 'trivial' }, 'trivial endpoint'));
      }
      // The generator's CPU per request against the trivial endpoint: at the rates below, the share of
      // a core it needs (rate × this) shows how far it is from being the limit.
      const genUs = stat(ceiling.map((r) => ((r.cpu.generator ?? 0) / r.rate) * 1e6)).median;
      env.log('  scale-out: client-credential grants, one instance vs two');
      const grants = await compare({ kind: 'grant', basic }, 'grants');
      env.log('  scale-out: SCIM user creates, one instance vs two');
      const creates = await compare(
        { kind: 'scim-create', bearer, prefix: `so${process.pid}` },
        'SCIM creates',
      );

      type Compared = typeof grants;
      const bound = (r: Compared) =>
        `${cores} cores shared by both instances, PostgreSQL and the generator. ` +
        `One instance: ${perRequestText(r.runsOne, cores)}; its event loop (main thread, /proc/<pid>/schedstat): ${loopText(r.runsOne, 'A')}. ` +
        `Two: ${perRequestText(r.runsTwo, cores)}; event loops: ${loopText(r.runsTwo, 'A')} / ${loopText(r.runsTwo, 'B')}. ` +
        `CPU in cores (median; machine = all processes, other work included): ` +
        `one instance: ${cpuText(r.runsOne.map(({ cpu: { bench: _x, ...s } }) => s))}; ` +
        `two: ${cpuText(r.runsTwo.map(({ cpu: { bench: _x, ...s } }) => s))}`;
      const againstCeiling = (r: Compared, what: string) => ({
        scenario: `${what}, two instances ÷ one, against this machine's ceiling (postgres)`,
        unit: 'two ÷ one',
        better: 'higher' as const,
        ferry: r.ratios,
        reference: r.ceilings,
        referenceName:
          "this machine's ceiling, same round: min(2, cores available ÷ cores the one-instance run used (Ferry + PostgreSQL + generator))",
        goal: null,
        note:
          `two ÷ one and the ceiling per interleaved round (median of rounds; the goal row divides medians). ` +
          `At the CPU per request of the two-instance runs the ceiling would be ${num(r.ceilingsAtTwo.median)}. ` +
          `Saturation, ${2 * CONCURRENCY} in flight against ${CONCURRENCY}: one instance ${num(r.oneDouble.median)}/s against ${num(r.one.median)}/s, ` +
          `two ${num(r.twoDouble.median)}/s against ${num(r.two.median)}/s. ` +
          `Split between the two instances (fewer ÷ more answered) ${r.split.median.toFixed(2)}. ` +
          `Generator: ${genUs.toFixed(0)} µs CPU per request against the trivial endpoint, ` +
          `${((genUs * r.two.median) / 1e6).toFixed(2)} core at the two-instance rate.`,
      });
      return [
        {
          scenario: 'load generator ceiling (trivial node:http endpoint)',
          unit: 'requests/s',
          better: 'higher',
          ferry: null,
          reference: stat(ceiling.map((r) => r.rate)),
          referenceName: `the scale-out generator, ${CONCURRENCY} in flight, against a node:http server answering {} at once`,
          goal: null,
          note: `generator and endpoint in separate processes; CPU in cores: ${cpuText(ceiling.map(({ cpu: { A: _a, B: _b, postgres: _p, ...s } }) => s))} (bench = the endpoint)`,
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
        againstCeiling(grants, 'client-credential grants'),
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
        againstCeiling(creates, 'SCIM user creates'),
      ];
    } finally {
      await generator?.stop();
      await pgClient.end().catch(() => {});
      trivial.close();
      for (const i of instances) await i.stop();
    }
  },
};
