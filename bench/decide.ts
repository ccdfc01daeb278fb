import { randomBytes } from 'node:crypto';
import type { Principal } from '../src/access/principal.js';
import type { Target } from '../src/access/targets.js';
import { configSchema } from '../src/app/config.js';
import { createServices } from '../src/app/services.js';
import { systemClock } from '../src/clock.js';
import { MasterKey } from '../src/keys/master-key.js';
import { openStore } from '../src/store/open.js';
import { principalFor, prng, targetsFor } from './lib/directory.js';
import type { BenchEnv } from './lib/env.js';
import { largeDirectory } from './lib/large-directory.js';
import { latencies } from './lib/measure.js';
import { insertPolicies, POLICY_COUNT, removePolicies } from './lib/policies.js';
import { atMost, type Row, type Scenario } from './lib/scenario.js';

const SAMPLE = 1000;

/**
 * decide() and entitlements() latency over a large directory (100k users, 10k groups, ~300k
 * memberships, ~17k assignments), for principals picked at random and a role each is entitled to,
 * against one database round trip (`select 1`, what /readyz sends) measured in the same run.
 */
export const decideLatency: Scenario = {
  name: 'decide',
  title: 'decide() and entitlements() p50/p99 over a large directory vs one round trip',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    for (const engine of env.engines) {
      const { store, url, directory } = await largeDirectory(env, engine, async (u) => openStore(u));
      try {
        const config = configSchema.parse({ database: { url }, log: { level: 'silent' } });
        const services = createServices(config, store, systemClock, new MasterKey(randomBytes(32)));
        const rnd = prng(0xdec1de);
        const principals: Principal[] = [];
        const targets: Target[] = [];
        for (let i = 0; i < SAMPLE; i++) {
          const u = Math.floor(rnd() * directory.userIds.length);
          const mine = targetsFor(directory, u);
          principals.push(principalFor(directory, u));
          targets.push(mine[Math.floor(rnd() * mine.length)]!);
        }
        const signals = { client: 'browser' as const, ip: '198.51.100.7', userAgent: 'ferry-bench' };
        for (let i = 0; i < 20; i++) {
          const d = await services.access.decide(principals[i]!, targets[i]!, signals);
          if (d.effect !== 'allow') throw new Error(`decide: expected allow, got ${JSON.stringify(d)}`);
        }
        const at = (i: number) => i % SAMPLE;
        const r = await latencies(
          {
            decide: (i) => services.access.decide(principals[at(i)]!, targets[at(i)]!, signals),
            entitlements: (i) => services.access.entitlements(principals[at(i)]!, signals),
            roundTrip: () => store.ping(),
          },
          { runs: env.runs, perRun: engine === 'sqlite' ? 2000 : 1000, warmup: 300 },
        );
        const ref = `one round trip, select 1 (${engine})`;
        const row = (what: string, p: 'p50' | 'p99', s: typeof r.decide, goalUs: number): Row => ({
          scenario: `${what} ${p} (${engine})`,
          unit: `µs, ${p}`,
          better: 'lower',
          ferry: s[p],
          reference: r.roundTrip[p],
          referenceName: ref,
          goal: atMost(goalUs, 'µs'),
          note:
            what === 'entitlements()'
              ? 'two queries whatever the number of roles (one prepared statement on PostgreSQL, ADR 0058); p99 catches garbage-collection pauses'
              : undefined,
        });
        rows.push(
          row('decide()', 'p50', r.decide, 1000),
          row('decide()', 'p99', r.decide, 5000),
          row('entitlements()', 'p50', r.entitlements, 1000),
          row('entitlements()', 'p99', r.entitlements, 5000),
        );
        // The same with 500 conditional access policies (compiled once per generation).
        await insertPolicies(store, directory);
        try {
          // The policies do apply: count what they answer for the sample (password-only sign-ins).
          const effects: Record<string, number> = {};
          for (let i = 0; i < SAMPLE; i++) {
            const d = await services.access.decide(principals[i]!, targets[i]!, signals);
            effects[d.effect] = (effects[d.effect] ?? 0) + 1;
          }
          if ((effects['step-up'] ?? 0) + (effects.deny ?? 0) === 0)
            throw new Error('decide: no policy applied');
          const answered = Object.entries(effects)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ');
          const p = await latencies(
            {
              decide: (i) => services.access.decide(principals[at(i)]!, targets[at(i)]!, signals),
              roundTrip: () => store.ping(),
            },
            { runs: env.runs, perRun: engine === 'sqlite' ? 2000 : 1000, warmup: 300 },
          );
          for (const q of ['p50', 'p99'] as const)
            rows.push({
              scenario: `decide() with ${POLICY_COUNT} policies ${q} (${engine})`,
              unit: `µs, ${q}`,
              better: 'lower',
              ferry: p.decide[q],
              reference: p.roundTrip[q],
              referenceName: ref,
              // issue 16: p99 ≤ 1 ms on SQLite, ≤ 2 ms on PostgreSQL (a round trip per read)
              goal: atMost(q === 'p99' && engine === 'postgres' ? 2000 : 1000, 'µs'),
              note:
                q === 'p99'
                  ? `compiled policies cached per policy-set generation (one tiny read per request; on PostgreSQL in the one statement of the decision's reads, ADR 0053, prepared with one generic plan, ADR 0058), evaluated in memory; for ${SAMPLE} password-only sign-ins they answered ${answered}`
                  : undefined,
            });
        } finally {
          await removePolicies(store);
        }
      } finally {
        await store.close();
      }
    }
    return rows;
  },
};
