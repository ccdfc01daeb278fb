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
import { atLeast, atMost, type Row, type Scenario } from './lib/scenario.js';
import { groupsOfUser, runLoad } from './lib/scim-load.js';
import { stat } from './lib/stats.js';

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
        // One run: perRun creates, 8 in flight, sent from a worker thread (see scim-load.ts).
        const createRun = async () => {
          const first = n + 1;
          n += perRun;
          const { ms } = await runLoad({
            kind: 'creates',
            base,
            token,
            prefix: 'user',
            first,
            count: perRun,
            concurrency: CONCURRENCY,
          });
          for (let i = first; i <= n; i++) names.push(`user${i}@bench.example`);
          return (perRun * 1000) / ms;
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
        const creates = await repeat(createRun, env.runs);
        const inserts = await repeat(rate(rawInsert), env.runs);
        rows.push({
          scenario: `SCIM user creates (${engine})`,
          unit: 'creates/s',
          better: 'higher',
          ferry: creates,
          reference: inserts,
          referenceName: `raw single-row insert, same concurrency (${engine})`,
          goal: engine === 'sqlite' ? atLeast(2000, 'creates/s') : null,
          note: `${names.length} users over HTTP, ${CONCURRENCY} in flight (undici Pool, keep-alive, every answer checked) from a worker thread (the client off the server's event loop); each create also writes its outbox event and audit row`,
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
      rows.push(...(await importDirectory(env, engine)));
    }
    return rows;
  },
};

/** The import's budget on the bench machine (2 vCPUs): 100,000 users and 10,000 groups within 2 minutes. */
const IMPORT_BUDGET_S = 120;
/** Bulk requests in flight during the import. */
const IMPORT_CONCURRENCY = 2;

/**
 * A whole directory through SCIM, as on the day a tenant is connected: --users users (100,000) and a
 * tenth as many groups, each user in 1 to 5 of them (about 3 × users memberships), sent as /Bulk
 * requests (users, then groups with their members) from a worker thread, against the same rows
 * inserted raw (500 per statement) into a database of their own. One import per engine: repeating it
 * five times would take most of the bench's time.
 */
async function importDirectory(env: BenchEnv, engine: 'sqlite' | 'postgres'): Promise<Row[]> {
  const users = env.options.directoryUsers;
  const groups = Math.max(1, Math.floor(users / 10));
  const label = `${users.toLocaleString('en-US')} users + ${groups.toLocaleString('en-US')} groups`;

  env.log(`  scim (${engine}): importing ${label} through /Bulk`);
  const { store, url } = await env.freshStore(engine, `scim-import-${engine}`, 20);
  const config = configSchema.parse({ database: { url }, log: { level: 'silent' } });
  const services = createServices(config, store, systemClock, new MasterKey(randomBytes(32)));
  const app = await buildServer(services, { logger: false });
  let result: Awaited<ReturnType<typeof runLoad>>;
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    config.publicUrl = base;
    const { token } = await services.scimConnections.create(
      { actor: { type: 'operator', name: 'bench' } },
      { name: 'bench-import' },
    );
    result = await runLoad({
      kind: 'import',
      base,
      token,
      prefix: 'imp',
      users,
      groups,
      concurrency: IMPORT_CONCURRENCY,
    });
    const counted = await store.db
      .selectFrom('group_members')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(counted.n) !== result.memberships)
      throw new Error(`import: ${counted.n} memberships stored, ${result.memberships} sent`);
  } finally {
    await app.close();
    await store.close();
  }

  env.log(`  scim (${engine}): the same rows inserted raw`);
  const raw = await env.freshStore(engine, `scim-import-raw-${engine}`, 20);
  let rawMs: number;
  try {
    const now = iso(systemClock.now());
    const userIds = Array.from({ length: users }, () => randomUUID());
    const groupIds = Array.from({ length: groups }, () => randomUUID());
    const start = performance.now();
    for (let at = 0; at < users; at += 500) {
      await raw.store.db
        .insertInto('users')
        .values(
          userIds.slice(at, at + 500).map((id, k) => ({
            id,
            user_name: `raw${at + k}@bench.example`,
            user_name_key: `raw${at + k}@bench.example`,
            display_name: null,
            given_name: 'Bench',
            family_name: `User ${at + k}`,
            emails: JSON.stringify([{ value: `raw${at + k}@bench.example`, type: 'work', primary: true }]),
            active: 1,
            external_id: randomUUID(),
            attributes: JSON.stringify({ department: `D${(at + k) % 50}` }),
            password_hash: null,
            created_at: now,
            updated_at: now,
            version: 1,
          })),
        )
        .execute();
    }
    for (let at = 0; at < groups; at += 500) {
      await raw.store.db
        .insertInto('groups')
        .values(
          groupIds.slice(at, at + 500).map((id, k) => ({
            id,
            display_name: `raw-group-${at + k}`,
            display_name_key: `raw-group-${at + k}`,
            description: null,
            external_id: randomUUID(),
            created_at: now,
            updated_at: now,
            version: 1,
          })),
        )
        .execute();
    }
    let batch: Array<{ group_id: string; user_id: string; created_at: string }> = [];
    const flush = async () => {
      if (batch.length > 0) await raw.store.db.insertInto('group_members').values(batch).execute();
      batch = [];
    };
    for (let n = 0; n < users; n++) {
      for (const g of groupsOfUser(n, groups)) {
        batch.push({ group_id: groupIds[g]!, user_id: userIds[n]!, created_at: now });
        if (batch.length === 500) await flush();
      }
    }
    await flush();
    rawMs = performance.now() - start;
  } finally {
    await raw.store.close();
  }

  const records = users + groups + result.memberships!;
  const seconds = (ms: number) => stat([ms / 1000]);
  return [
    {
      scenario: `SCIM import, ${label} (${engine})`,
      unit: 'records/s',
      better: 'higher',
      ferry: stat([(records * 1000) / result.ms]),
      reference: stat([(records * 1000) / rawMs]),
      referenceName: `raw inserts of the same rows, 500 per statement (${engine})`,
      goal: null,
      note: `${records.toLocaleString('en-US')} records (users, groups, ${result.memberships!.toLocaleString('en-US')} memberships) in ${result.requests} /Bulk requests, ${IMPORT_CONCURRENCY} in flight; users ${(result.usersMs! / 1000).toFixed(1)} s, groups with members ${(result.groupsMs! / 1000).toFixed(1)} s; every record with its audit event and outbox event; one import per engine`,
    },
    {
      scenario: `SCIM import wall time, ${label} (${engine})`,
      unit: 's',
      better: 'lower',
      ferry: seconds(result.ms),
      reference: seconds(rawMs),
      referenceName: `raw inserts of the same rows (${engine})`,
      goal: atMost(IMPORT_BUDGET_S, 's'),
    },
  ];
}
