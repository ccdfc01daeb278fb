import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, type TestDatabase } from '../support/db.js';
import {
  type FerryProcess,
  portClosed,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
  waitFor,
} from '../support/process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { CookieJar, getPage, inputValue, postForm } from '../support/web-form.js';

const masterKey = () => randomBytes(32).toString('base64');

/** Every request in this file gives up after 20 s: an answer that takes longer counts as a hang. */
const CLIENT_TIMEOUT_MS = 20_000;

const call = (server: FerryProcess, path: string, token?: string, init: RequestInit = {}) =>
  fetch(new URL(path, server.url), {
    ...init,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
  });

describe('PostgreSQL goes away and comes back', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let dir: string;
  let server: FerryProcess;
  let token: string;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('postgres');
    const direct = new URL(db.url);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-outage-'));
    const env = { FERRY_DATABASE_URL: viaProxy.toString(), FERRY_MASTER_KEY: masterKey() };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    server = await startFerryProcess({ cwd: dir, env });
  });

  afterAll(async () => {
    await stopAllFerryProcesses();
    await proxy?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 problems while the database is unreachable and recovers without a restart', async () => {
    const ready = await call(server, '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: 'ok' });
    expect((await call(server, '/api/v1/users', token)).status).toBe(200);
    expect(proxy.connections()).toBeGreaterThan(0);

    proxy.cut();

    const notReady = await waitFor(
      '/readyz to report 503',
      async () => {
        const res = await call(server, '/readyz');
        return res.status === 503 ? res : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 200 },
    );
    expect(notReady.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await notReady.json()).toMatchObject({ status: 503, title: 'Service Unavailable' });

    for (const [method, path, body] of [
      ['GET', '/api/v1/users', undefined],
      ['POST', '/api/v1/groups', JSON.stringify({ displayName: 'During-Outage' })],
    ] as const) {
      const res = await call(server, path, token, { method, body });
      expect(res.status, `${method} ${path}`).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ status: 503, title: 'Service Unavailable' });
    }

    // A person signing in gets an "unavailable" page, not a failed sign-in (or a 500).
    const jar = new CookieJar();
    const form = await getPage(server.url, '/signin', jar);
    expect(form.status).toBe(200);
    const signin = await postForm(server.url, '/signin', jar, {
      csrf: inputValue(form.body, 'csrf'),
      return_to: '/account',
      username: 'someone@contoso.example',
      password: 'some-password-1',
    });
    expect(signin.status).toBe(503);
    expect(signin.res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(signin.body).toContain('Service Unavailable');

    expect((await call(server, '/healthz')).status).toBe(200);
    expect(server.alive()).toBe(true);

    proxy.restore();

    await waitFor('/readyz to report 200 again', async () => (await call(server, '/readyz')).status === 200, {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    expect((await call(server, '/api/v1/users', token)).status).toBe(200);
    const created = await call(server, '/api/v1/groups', token, {
      method: 'POST',
      body: JSON.stringify({ displayName: 'After-Outage' }),
    });
    expect(created.status).toBe(201);
    // Nothing half-written during the outage.
    const groups = (await (await call(server, '/api/v1/groups', token)).json()) as {
      items: Array<{ displayName: string }>;
    };
    expect(groups.items.map((g) => g.displayName)).toEqual(['After-Outage']);
    expect(server.alive()).toBe(true);
  });

  it('answers 503 within its query timeout during a network partition (silence, not errors), then heals', async () => {
    await waitFor('/readyz to report 200', async () => (await call(server, '/readyz')).status === 200);
    // Pooled connections exist, so queries are sent into the partition rather than failing to connect.
    await Promise.all([call(server, '/api/v1/users', token), call(server, '/api/v1/groups', token)]);
    expect(proxy.connections()).toBeGreaterThan(0);

    proxy.partition();

    const readyStarted = Date.now();
    const notReady = await call(server, '/readyz');
    expect(notReady.status).toBe(503);
    expect(Date.now() - readyStarted).toBeLessThan(5_000);

    const started = Date.now();
    const [list, create] = await Promise.all([
      call(server, '/api/v1/users', token),
      call(server, '/api/v1/groups', token, {
        method: 'POST',
        body: JSON.stringify({ displayName: 'During-Partition' }),
      }),
    ]);
    for (const res of [list, create]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    expect(Date.now() - started).toBeLessThan(CLIENT_TIMEOUT_MS);
    expect((await call(server, '/healthz')).status).toBe(200);

    proxy.restore();

    await waitFor(
      '/readyz to report 200 after the partition heals',
      async () => (await call(server, '/readyz')).status === 200,
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    // Connections that carried timed-out queries must not hand stale answers to later ones.
    const created = await call(server, '/api/v1/groups', token, {
      method: 'POST',
      body: JSON.stringify({ displayName: 'After-Partition' }),
    });
    expect(created.status).toBe(201);
    for (let i = 0; i < 6; i++) {
      const res = await call(server, '/api/v1/groups?q=After-Partition', token);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: Array<{ displayName: string }> };
      expect(body.items.map((g) => g.displayName)).toEqual(['After-Partition']);
    }
    expect(server.alive()).toBe(true);
  });
});

describe('PostgreSQL ends connections mid-transaction (pg_terminate_backend)', () => {
  let db: TestDatabase;
  let dir: string;
  let server: FerryProcess;
  let token: string;
  let killer: pg.Client;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('postgres');
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-terminate-'));
    const env = { FERRY_DATABASE_URL: db.url, FERRY_MASTER_KEY: masterKey() };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    server = await startFerryProcess({ cwd: dir, env, readyTimeoutMs: 60_000 });
    killer = new pg.Client({ connectionString: db.url });
    await killer.connect();
  }, 90_000);

  afterAll(async () => {
    await killer?.end();
    await stopAllFerryProcesses();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Ends every connection Ferry holds to its database, as a failover or an operator would. */
  const terminateAll = async () =>
    (
      await killer.query(
        'select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      )
    ).rows[0].n as number;

  it('answers 503 (never 500) for requests on ended connections, stays up, and recovers by itself', async () => {
    expect((await call(server, '/api/v1/users', token)).status).toBe(200);
    // The reference for the recovery figure: one write on a healthy pool, measured in the same run.
    const healthyStarted = performance.now();
    const healthy = await call(server, '/api/v1/groups', token, {
      method: 'POST',
      body: JSON.stringify({ displayName: 'Before' }),
    });
    expect(healthy.status).toBe(201);
    const healthyMs = performance.now() - healthyStarted;
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    let terminated = 0;
    let stop = false;
    // Writers (each a transaction: the group, its audit event) and readers, while connections keep dying.
    const load = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const res =
          i % 2 === 0
            ? await call(server, '/api/v1/groups', token, {
                method: 'POST',
                body: JSON.stringify({ displayName: `W${worker}-${i}` }),
              })
            : await call(server, '/api/v1/users', token);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) {
          problems.push(`${res.status} ${res.headers.get('content-type')}`);
          await res.body?.cancel();
        } else await res.arrayBuffer();
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => load(w));
    for (let round = 0; round < 10; round++) {
      await new Promise((r) => setTimeout(r, 150));
      terminated += await terminateAll();
    }
    const lastTermination = performance.now();
    stop = true;
    await Promise.all(workers);

    expect(terminated).toBeGreaterThan(0);
    expect(server.alive()).toBe(true);
    expect([...statuses.keys()].filter((s) => s >= 500 && s !== 503)).toEqual([]);
    for (const p of problems) expect(p).toMatch(/^503 application\/problem\+json/);

    // Recovery: the first successful write after the last termination, with no restart.
    const created = await waitFor(
      'a write to succeed again',
      async () => {
        const res = await call(server, '/api/v1/groups', token, {
          method: 'POST',
          body: JSON.stringify({ displayName: `After-${Date.now()}` }),
        });
        return res.status === 201 ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    const recoveredMs = performance.now() - lastTermination;
    expect(created.status).toBe(201);
    expect((await call(server, '/readyz')).status).toBe(200);
    expect(server.alive()).toBe(true);
    // Every group that was answered 201 exists, with its audit event (no half-written change).
    const verify = (await (await call(server, '/api/v1/audit/verify', token)).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
    console.log(
      `[pg_terminate_backend] ${terminated} connections ended over 10 rounds; answers ${JSON.stringify(
        Object.fromEntries(statuses),
      )}; first successful write ${recoveredMs.toFixed(0)} ms after the last termination ` +
        `(${(recoveredMs / healthyMs).toFixed(1)}× one write on a healthy pool, ${healthyMs.toFixed(0)} ms)`,
    );
  }, 120_000);
});

describe('SQLite: stopping with SIGTERM', () => {
  let dir: string;
  let server: FerryProcess;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-sigterm-'));
    // A deliberately slow password hash (about a second) keeps a sign-in in flight long enough to
    // send SIGTERM in the middle of it, without racing.
    writeFileSync(
      join(dir, 'ferry.yaml'),
      'database:\n  url: sqlite:./ferry.db\npasswords:\n  memoryKiB: 65536\n  iterations: 30\n',
    );
  });

  afterEach(stopAllFerryProcesses);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finishes the request in flight, exits 0 and closes its port', async () => {
    const env = { FERRY_MASTER_KEY: masterKey(), FERRY_REQUIRE_MFA: 'false' };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    // Info logs show when the request has arrived and in which order things happened.
    server = await startFerryProcess({ cwd: dir, env: { ...env, FERRY_LOG_LEVEL: 'info' } });
    const user = await call(server, '/api/v1/users', created.stdout.trim(), {
      method: 'POST',
      body: JSON.stringify({ userName: 'dana@contoso.example', password: 'dana-password-42' }),
    });
    expect(user.status).toBe(201);

    const jar = new CookieJar();
    const form = await getPage(server.url, '/signin', jar);
    const requestId = `e2e-inflight-${randomBytes(4).toString('hex')}`;
    const inFlight = fetch(new URL('/signin', server.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: jar.header(),
        'x-request-id': requestId,
      },
      body: new URLSearchParams({
        csrf: inputValue(form.body, 'csrf'),
        return_to: '/account',
        username: 'dana@contoso.example',
        password: 'dana-password-42',
      }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    await waitFor(
      'the sign-in to reach the server',
      () => server.output().includes(`"reqId":"${requestId}","req":`),
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    const stopped = server.stop('SIGTERM', 10_000);

    const res = await inFlight;
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/account');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('ferry_session='))).toBe(true);
    expect(await stopped).toEqual({ code: 0, signal: null });
    expect(await portClosed(server.port)).toBe(true);

    // The signal really arrived while the request was being served.
    const lines = server.output().split('\n');
    const shutdownAt = lines.findIndex((l) => l.includes('"msg":"shutting down"'));
    const completedAt = lines.findIndex(
      (l) => l.includes(`"reqId":"${requestId}"`) && l.includes('"msg":"request completed"'),
    );
    expect(shutdownAt).toBeGreaterThan(-1);
    expect(completedAt).toBeGreaterThan(shutdownAt);
  });
});
