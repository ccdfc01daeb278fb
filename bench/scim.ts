import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { configSchema } from '../src/app/config.js';
import { buildServer } from '../src/app/server.js';
import { createServices } from '../src/app/services.js';
import { iso, systemClock } from '../src/clock.js';
import { MasterKey } from '../src/keys/master-key.js';
import type { BenchEnv } from './lib/env.js';
import { latencies, repeat } from './lib/measure.js';
import { atMost, type Row, type Scenario } from './lib/scenario.js';

const CONCURRENCY = 8;

/**
 * Entra ID importing a directory through SCIM over HTTP: user creates per second (each one a
 * transaction with its outbox event and hash-chained audit row) against raw single-row inserts at the
 * same concurrency, and the `userName eq` lookup Entra makes before every change against one
 * database round trip (`select 1`), all measured in the same run.
 */
export const scimImport: Scenario = {
  name: 'scim',
  title: 'SCIM import: creates/s vs raw inserts, userName eq p99 vs one round trip',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    // Creates are timed over HTTP, 1000 per run; the directory is then filled up to --users (100,000 by
    // default) with bulk inserts, so the lookups run at that size and the whole run stays short.
    const perRun = 1000;
    for (const engine of env.engines) {
      const { store, url } = await env.freshStore(engine, `scim-${engine}`, 20);
      const config = configSchema.parse({ database: { url }, log: { level: 'silent' } });
      const services = createServices(config, store, systemClock, new MasterKey(randomBytes(32)));
      const app = await buildServer(services, { logger: false });
      try {
        await app.listen({ host: '127.0.0.1', port: 0 });
        const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        config.publicUrl = base;
        const { token } = await services.scimConnections.create(
          { actor: { type: 'operator', name: 'bench' } },
          { name: 'bench' },
        );
        const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' };
        const names: string[] = [];
        let n = 0;

        const createOne = async () => {
          const userName = `user${++n}@bench.example`;
          const res = await fetch(`${base}/scim/v2/Users`, {
            method: 'POST',
            headers,
            body: JSON.stringify({
              schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
              userName,
              externalId: randomUUID(),
              name: { givenName: 'Bench', familyName: `User ${n}` },
              emails: [{ value: userName, type: 'work', primary: true }],
              active: true,
              'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: `D${n % 50}` },
            }),
          });
          if (res.status !== 201) throw new Error(`SCIM create answered ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
          names.push(userName);
        };
        let raw = 0;
        const rawInsert = async () => {
          const id = randomUUID();
          const now = iso(systemClock.now());
          await store.db
            .insertInto('users')
            .values({
              id,
              user_name: `raw${++raw}@bench.example`,
              user_name_key: `raw${raw}@bench.example`,
              display_name: null,
              given_name: 'Bench',
              family_name: 'Raw',
              emails: '[]',
              active: 1,
              external_id: id,
              attributes: '{}',
              password_hash: null,
              created_at: now,
              updated_at: now,
              version: 1,
            })
            .execute();
        };
        const rate = (op: () => Promise<void>) => async () => {
          let left = perRun;
          const start = performance.now();
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              while (left-- > 0) await op();
            }),
          );
          return (perRun * 1000) / (performance.now() - start);
        };
        env.log(`  scim (${engine}): importing ${perRun * (env.runs + 1)} users through SCIM`);
        const creates = await repeat(rate(createOne), env.runs);
        const inserts = await repeat(rate(rawInsert), env.runs);
        rows.push({
          scenario: `SCIM user creates (${engine})`,
          unit: 'creates/s',
          better: 'higher',
          ferry: creates,
          reference: inserts,
          referenceName: `raw single-row insert, same concurrency (${engine})`,
          goal: null,
          note: `${names.length} users over HTTP, ${CONCURRENCY} in flight; each create also writes its outbox event and audit row`,
        });

        const target = env.options.directoryUsers;
        const filled = names.length + raw;
        env.log(`  scim (${engine}): filling the directory from ${filled} to ${target} users`);
        for (let at = filled; at < target; at += 500) {
          const now = iso(systemClock.now());
          const rows500 = Array.from({ length: Math.min(500, target - at) }, (_, k) => {
            const id = randomUUID();
            const name = `fill${at + k}@bench.example`;
            return {
              id,
              user_name: name,
              user_name_key: name,
              display_name: null,
              given_name: 'Bench',
              family_name: 'Fill',
              emails: '[]',
              active: 1,
              external_id: id,
              attributes: '{}',
              password_hash: null,
              created_at: now,
              updated_at: now,
              version: 1,
            };
          });
          await store.db.insertInto('users').values(rows500).execute();
          raw += rows500.length;
        }

        const lookup = async (i: number) => {
          const userName = names[(i * 7919) % names.length]!;
          const filter = encodeURIComponent(`userName eq "${userName}"`);
          const res = await fetch(`${base}/scim/v2/Users?filter=${filter}`, { headers });
          const body = (await res.json()) as { totalResults: number };
          if (body.totalResults !== 1) throw new Error(`lookup of ${userName} found ${body.totalResults}`);
        };
        const r = await latencies(
          { lookup, roundTrip: () => store.ping() },
          { runs: env.runs, perRun: 500, warmup: 100 },
        );
        rows.push({
          scenario: `SCIM userName eq p50 (${engine})`,
          unit: 'µs, p50',
          better: 'lower',
          ferry: r.lookup.p50,
          reference: r.roundTrip.p50,
          referenceName: `one round trip, select 1 (${engine})`,
          goal: null,
        });
        rows.push({
          scenario: `SCIM userName eq p99 (${engine}, ${names.length + raw} users)`,
          unit: 'µs, p99',
          better: 'lower',
          ferry: r.lookup.p99,
          reference: r.roundTrip.p99,
          referenceName: `one round trip, select 1 (${engine})`,
          goal: atMost(10_000, 'µs'),
          note: 'over HTTP (token check, index lookup, JSON); the reference is the database alone',
        });
      } finally {
        await app.close();
        await store.close();
      }
    }
    return rows;
  },
};
