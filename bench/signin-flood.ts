import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { configSchema } from '../src/app/config.js';
import { createServices } from '../src/app/services.js';
import { systemClock } from '../src/clock.js';
import { MasterKey } from '../src/keys/master-key.js';
import type { BenchEnv } from './lib/env.js';
import { atLeast, atMost, type Row, type Scenario } from './lib/scenario.js';
import { startFerryProcess } from './lib/server.js';
import { percentile, stat } from './lib/stats.js';

const FLOOD = 200;
const PASSWORD = 'correct horse battery staple';
const LEGIT = 'legit@contoso.example';
const RUN_MS = 3_000;

interface Answer {
  status: number;
  ms: number;
}

function call(
  agent: Agent,
  url: URL,
  o: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.once('error', reject);
    req.end(o.body);
  });
}

const form = (userName: string, password: string, ip: string) => {
  const csrf = randomBytes(32).toString('base64url');
  return {
    method: 'POST',
    body: new URLSearchParams({ csrf, username: userName, password, return_to: '/account' }).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `ferry_csrf=${csrf}`,
      'x-forwarded-for': ip,
    },
  };
};

/**
 * Waves of 200 concurrent anonymous sign-ins (unknown names from 200 addresses, the next wave as
 * soon as the last is answered: a botnet guessing) against a `ferry serve` process, while /healthz is probed every 5 ms and the person who
 * knows their password signs in (retrying on 503). Reference: the same probes with no flood, in the
 * same run. The flood's hashes are bounded by the sign-in queue; beyond it the answer is a fast 503.
 */
export const signinFlood: Scenario = {
  name: 'signin-flood',
  title: '/healthz p99 and legitimate sign-ins under 200 concurrent anonymous sign-ins vs idle',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    for (const engine of env.engines) {
      const { store, url } = await env.freshStore(engine, `signin-flood-${engine}`);
      const masterKey = randomBytes(32).toString('base64');
      const config = configSchema.parse({ database: { url }, log: { level: 'silent' } });
      const services = createServices(config, store, systemClock, new MasterKey(randomBytes(32)));
      await services.users.create(
        { actor: { type: 'operator', name: 'bench' } },
        { userName: LEGIT, password: PASSWORD },
      );
      await store.close();
      const configFile = join(env.tmp, `signin-flood-${engine}.yaml`);
      writeFileSync(
        configFile,
        'http:\n  trustProxy: true\nsignin:\n  requireMfa: false\nlog:\n  level: silent\n',
      );
      const ferry = await startFerryProcess(env, {
        databaseUrl: url,
        masterKey,
        cwd: env.tmp,
        extraEnv: { FERRY_CONFIG: configFile },
      });
      try {
        const base = new URL(ferry.url);
        const probeAgent = new Agent({ keepAlive: true, maxSockets: 1 });
        const legitAgent = new Agent({ keepAlive: true, maxSockets: 1 });
        const floodAgent = new Agent({ keepAlive: true, maxSockets: FLOOD });
        const healthz = new URL('/healthz', base);
        const signinUrl = new URL('/signin', base);

        /** One run: probes and legitimate sign-ins for RUN_MS, with or without the flood. */
        const measure = async (flood: boolean) => {
          const end = performance.now() + RUN_MS;
          const probes: number[] = [];
          let legitOk = 0;
          let floodBusy = 0;
          let floodAnswers = 0;
          let n = 0;
          const loops: Promise<void>[] = [];
          if (flood) {
            // Waves: 200 attempts at once, the next wave as soon as the last answered.
            loops.push(
              (async () => {
                while (performance.now() < end) {
                  const answers = await Promise.all(
                    Array.from({ length: FLOOD }, (_, i) =>
                      call(
                        floodAgent,
                        signinUrl,
                        form(
                          `guess-${i}-${n++}@contoso.example`,
                          'Summer2026!',
                          `198.18.${i >> 8}.${i & 255}`,
                        ),
                      ),
                    ),
                  );
                  floodAnswers += answers.length;
                  floodBusy += answers.filter((a) => a.status === 503).length;
                }
              })(),
            );
          }
          loops.push(
            (async () => {
              while (performance.now() < end) {
                probes.push((await call(probeAgent, healthz)).ms);
                await new Promise((r) => setTimeout(r, 5));
              }
            })(),
            (async () => {
              while (performance.now() < end) {
                const a = await call(legitAgent, signinUrl, form(LEGIT, PASSWORD, '192.0.2.10'));
                if (a.status === 303) legitOk++;
                else await new Promise((r) => setTimeout(r, 100));
              }
            })(),
          );
          await Promise.all(loops);
          return {
            p99: percentile(Float64Array.from(probes), 99),
            legitPerSecond: (legitOk * 1000) / RUN_MS,
            busyShare: floodAnswers ? floodBusy / floodAnswers : 0,
          };
        };

        await measure(false); // warm-up
        const idle: Array<Awaited<ReturnType<typeof measure>>> = [];
        const flooded: Array<Awaited<ReturnType<typeof measure>>> = [];
        for (let run = 0; run < env.runs; run++) {
          idle.push(await measure(false));
          flooded.push(await measure(true));
        }
        const busy = stat(flooded.map((f) => f.busyShare * 100)).median.toFixed(0);
        rows.push(
          {
            scenario: `/healthz p99 under ${FLOOD} concurrent sign-ins (${engine})`,
            unit: 'ms',
            better: 'lower',
            ferry: stat(flooded.map((f) => f.p99)),
            reference: stat(idle.map((f) => f.p99)),
            referenceName: '/healthz p99 with no flood, same process and run',
            goal: atMost(50, 'ms'),
            note: `${busy}% of the flood answered 503 at once (queue full); the rest hashed one per core`,
          },
          {
            scenario: `legitimate sign-ins during the flood (${engine})`,
            unit: 'sign-ins/s',
            better: 'higher',
            ferry: stat(flooded.map((f) => f.legitPerSecond)),
            reference: stat(idle.map((f) => f.legitPerSecond)),
            referenceName: 'the same person signing in with no flood',
            goal: atLeast(0.5, 'sign-ins/s'),
            note: 'one person retrying 100 ms after a 503; each sign-in is a full argon2id check',
          },
        );
        probeAgent.destroy();
        legitAgent.destroy();
        floodAgent.destroy();
      } finally {
        await ferry.stop();
      }
    }
    return rows;
  },
};
