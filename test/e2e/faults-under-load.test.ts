import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tokenHandle } from '../../src/federation/oidc/adapter.js';
import { MasterKey, parseMasterKey } from '../../src/keys/master-key.js';
import { openStore } from '../../src/store/open.js';
import { createMigratedTestDatabase, createTestDatabase, type TestDatabase } from '../support/db.js';
import { type IdentityCenterScimServer, startIdentityCenterScim } from '../support/identity-center-scim.js';
import { createPostgresDatabaseOnSmallDisk } from '../support/postgres.js';
import {
  type FerryProcess,
  runFerry,
  sleep,
  socketOwner,
  startFerryProcess,
  stopAllFerryProcesses,
  waitFor,
} from '../support/process.js';
import { PATCH_OP } from '../support/scim.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/**
 * Issue 16 point 5: faults under steady mixed load (SCIM creates and PATCHes, client-credential
 * grants, admin reads). Each test counts what must hold whatever the fault:
 * - acknowledged writes: every SCIM create answered 201 exists afterwards;
 * - audit per issued credential: every access token answered 200 has exactly one `oidc.token.issued`;
 * - duplicate effects: one `user.created` audit record and one outbox event per user, and as many
 *   `user.updated` outbox events as audit records for each user (one change, one of each);
 * and that nothing answers 500: a request the fault reaches gets 503 with Retry-After.
 */

const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const REQUEST_TIMEOUT_MS = 10_000;

interface Setup {
  dir: string;
  env: Record<string, string>;
  adminToken: string;
}

interface Credentials {
  scimToken: string;
  clientId: string;
  clientSecret: string;
  tokenEndpoint: string;
}

/** What the load saw: the acknowledged writes and tokens, and every answer by status. */
interface Tally {
  created: Array<{ userName: string; id: string }>;
  patched: Map<string, number>;
  tokens: string[];
  statuses: Map<string, number>;
  /** answers that break the contract: a 5xx other than 503, or a 503 without Retry-After */
  unexpected: string[];
  /** requests that got no answer (the instance was killed under them) */
  noAnswer: number;
}

const newTally = (): Tally => ({
  created: [],
  patched: new Map(),
  tokens: [],
  statuses: new Map(),
  unexpected: [],
  noAnswer: 0,
});

async function prepare(dbUrl: string, extraEnv: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-faults-'));
  const env = {
    FERRY_DATABASE_URL: dbUrl,
    FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
    ...extraEnv,
  };
  const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
  expect(created.code, created.stderr).toBe(0);
  return { dir, env, adminToken: created.stdout.trim() };
}

async function credentials(server: FerryProcess, adminToken: string): Promise<Credentials> {
  const api = (path: string, body: unknown) =>
    fetch(new URL(path, server.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const scim = await api('/api/v1/scim/tokens', { name: 'entra' });
  expect(scim.status).toBe(201);
  const workload = await api('/api/v1/oidc/clients', { name: 'load-worker', kind: 'workload' });
  expect(workload.status).toBe(201);
  const w = (await workload.json()) as { client: { clientId: string }; clientSecret: string };
  const discovery = (await (
    await fetch(new URL('/.well-known/openid-configuration', server.url))
  ).json()) as { token_endpoint: string };
  return {
    scimToken: ((await scim.json()) as { token: string }).token,
    clientId: w.client.clientId,
    clientSecret: w.clientSecret,
    tokenEndpoint: discovery.token_endpoint,
  };
}

/**
 * Steady mixed load from `workers` loops until `stop()` is called: each loop in turn creates a user
 * over SCIM, PATCHes one it created, takes a client-credentials grant and reads users as an admin,
 * on whichever instance `targets()` offers next.
 */
function startLoad(
  targets: () => FerryProcess[],
  setup: Setup,
  creds: Credentials,
  tally: Tally,
  workers = 4,
): { stop(): Promise<void> } {
  let stopped = false;
  let seq = 0;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(creds.clientId)}:${encodeURIComponent(creds.clientSecret)}`).toString('base64')}`;
  const count = (op: string, res: Response) => {
    const key = `${op} ${res.status}`;
    tally.statuses.set(key, (tally.statuses.get(key) ?? 0) + 1);
    if (res.status >= 500 && (res.status !== 503 || res.headers.get('retry-after') === null)) {
      tally.unexpected.push(`${key} ${res.headers.get('content-type')}`);
    }
  };
  const loop = async (worker: number) => {
    const mine: Array<{ userName: string; id: string }> = [];
    for (let i = 0; !stopped; i++) {
      const live = targets();
      const server = live[(seq++ + worker) % live.length]!;
      const op = i % 4;
      try {
        if (op === 0 || (op === 1 && mine.length === 0)) {
          const userName = `load-${worker}-${i}-${randomBytes(3).toString('hex')}@contoso.example`;
          const res = await fetch(new URL('/scim/v2/Users', server.url), {
            method: 'POST',
            headers: { authorization: `Bearer ${creds.scimToken}`, 'content-type': 'application/scim+json' },
            body: JSON.stringify({
              schemas: [SCIM_USER],
              userName,
              active: true,
              name: { givenName: 'Load', familyName: `W${worker}` },
            }),
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          count('scim-create', res);
          if (res.status === 201) {
            const user = { userName, id: ((await res.json()) as { id: string }).id };
            mine.push(user);
            tally.created.push(user);
          } else await res.arrayBuffer();
        } else if (op === 1) {
          const user = mine[i % mine.length]!;
          const res = await fetch(new URL(`/scim/v2/Users/${user.id}`, server.url), {
            method: 'PATCH',
            headers: { authorization: `Bearer ${creds.scimToken}`, 'content-type': 'application/scim+json' },
            body: JSON.stringify({
              schemas: [PATCH_OP],
              Operations: [{ op: 'replace', path: 'displayName', value: `Load ${worker}-${i}` }],
            }),
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          count('scim-patch', res);
          await res.arrayBuffer();
          if (res.status === 200)
            tally.patched.set(user.userName, (tally.patched.get(user.userName) ?? 0) + 1);
        } else if (op === 2) {
          const res = await fetch(new URL(new URL(creds.tokenEndpoint).pathname, server.url), {
            method: 'POST',
            headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
            body: 'grant_type=client_credentials',
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          count('grant', res);
          if (res.status === 200)
            tally.tokens.push(((await res.json()) as { access_token: string }).access_token);
          else await res.arrayBuffer();
        } else {
          const res = await fetch(new URL('/api/v1/users?limit=20', server.url), {
            headers: { authorization: `Bearer ${setup.adminToken}` },
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          count('admin-read', res);
          await res.arrayBuffer();
        }
      } catch {
        tally.noAnswer++;
        await sleep(20);
      }
    }
  };
  const running = Array.from({ length: workers }, (_, w) => loop(w));
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
    },
  };
}

/** The counts of issue 16 point 5, read from the database after the fault. */
async function countEffects(dbUrl: string, setup: Setup, tally: Tally) {
  const store = openStore(dbUrl, { poolSize: 2 });
  try {
    const users = new Set(
      (await store.db.selectFrom('users').select('user_name').execute()).map((u) => u.user_name),
    );
    const audits = await store.db
      .selectFrom('audit_events')
      .select(['type', 'subject', 'data'])
      .where('type', 'in', ['user.created', 'user.updated', 'oidc.token.issued'])
      .execute();
    const outbox = await store.db
      .selectFrom('outbox')
      .select(['type', 'payload', 'processed_at'])
      .where('type', 'in', ['user.created', 'user.updated'])
      .execute();
    const tally2 = (rows: Array<[string, string]>) => {
      const m = new Map<string, number>();
      for (const [type, key] of rows) m.set(`${type} ${key}`, (m.get(`${type} ${key}`) ?? 0) + 1);
      return m;
    };
    const auditBy = tally2(
      audits.filter((a) => a.type !== 'oidc.token.issued').map((a) => [a.type, a.subject ?? '']),
    );
    const outboxBy = tally2(
      outbox.map((o) => [o.type, (JSON.parse(o.payload) as { userName: string }).userName]),
    );
    const masterKey = new MasterKey(parseMasterKey(setup.env.FERRY_MASTER_KEY!));
    const issued = new Map<string, number>();
    for (const a of audits.filter((a) => a.type === 'oidc.token.issued')) {
      const handle = (JSON.parse(a.data) as { tokenHandle: string | null }).tokenHandle ?? '';
      issued.set(handle, (issued.get(handle) ?? 0) + 1);
    }
    const loadUsers = [...users].filter((u) => u.startsWith('load-'));
    return {
      acknowledgedCreates: tally.created.length,
      acknowledgedMissing: tally.created.filter((c) => !users.has(c.userName)).map((c) => c.userName),
      usersInDatabase: loadUsers.length,
      // one change, one audit record and one outbox event (for every user in the database, answered or not)
      createdAuditNotOne: loadUsers.filter((u) => auditBy.get(`user.created ${u}`) !== 1),
      createdOutboxNotOne: loadUsers.filter((u) => outboxBy.get(`user.created ${u}`) !== 1),
      updatedAuditVsOutbox: loadUsers.filter(
        (u) => (auditBy.get(`user.updated ${u}`) ?? 0) !== (outboxBy.get(`user.updated ${u}`) ?? 0),
      ),
      acknowledgedPatches: [...tally.patched.values()].reduce((a, b) => a + b, 0),
      patchesNotAudited: [...tally.patched].filter(([u, n]) => (auditBy.get(`user.updated ${u}`) ?? 0) < n),
      tokensIssued: tally.tokens.length,
      tokensNotAuditedOnce: tally.tokens.filter(
        (t) => issued.get(tokenHandle(masterKey, 'ClientCredentials', t)) !== 1,
      ).length,
      issuedEventsDuplicated: [...issued.values()].filter((n) => n > 1).length,
      outboxUnprocessed: outbox.filter((o) => o.processed_at === null).length,
    };
  } finally {
    await store.close();
  }
}

type Effects = Awaited<ReturnType<typeof countEffects>>;

/**
 * While the disk is full, the load's own SCIM creates are refused (503) too. The window can be short:
 * wait for one to come by rather than assume one did.
 */
async function someCreateRefused(tally: Tally): Promise<void> {
  await waitFor(
    'a SCIM create refused while the disk is full',
    () => (tally.statuses.get('scim-create 503') ?? 0) > 0,
    {
      timeoutMs: 15_000,
      intervalMs: 50,
    },
  );
}

/**
 * Once the operator has freed space: how soon /readyz is ready again, then the load acknowledged
 * again, stopped and drained, and what it left (effects, and the server's log to count lines in).
 */
async function afterSpaceReturns(
  server: FerryProcess,
  dbUrl: string,
  setup: Setup,
  tally: Tally,
  load: { stop(): Promise<unknown> },
  fullAt: number,
) {
  const freedAt = Date.now();
  await waitFor(
    '/readyz to report ready again',
    async () => (await fetch(new URL('/readyz', server.url))).status === 200,
    { timeoutMs: 10_000, intervalMs: 100 },
  );
  const readyAfterMs = Date.now() - freedAt;
  await waitFor('SCIM creates to be acknowledged again', () => tally.created.length > fullAt + 20, {
    timeoutMs: 15_000,
  });
  await load.stop();
  await waitFor('the outbox to be drained', () => outboxDrained(dbUrl), {
    timeoutMs: 15_000,
    intervalMs: 250,
  });
  const effects = await countEffects(dbUrl, setup, tally);
  const log = server.output();
  const lines = (needle: string) => log.split('\n').filter((l) => l.includes(needle)).length;
  return { readyAfterMs, effects, log, lines };
}

function expectNoLossNoDuplicates(effects: Effects, tally: Tally) {
  expect(tally.unexpected).toEqual([]);
  expect(effects.acknowledgedCreates).toBeGreaterThan(0);
  expect(effects.tokensIssued).toBeGreaterThan(0);
  expect(effects.acknowledgedPatches).toBeGreaterThan(0);
  expect(effects.acknowledgedMissing).toEqual([]);
  expect(effects.createdAuditNotOne).toEqual([]);
  expect(effects.createdOutboxNotOne).toEqual([]);
  expect(effects.updatedAuditVsOutbox).toEqual([]);
  expect(effects.patchesNotAudited).toEqual([]);
  expect(effects.tokensNotAuditedOnce).toBe(0);
  expect(effects.issuedEventsDuplicated).toBe(0);
}

const report = (name: string, tally: Tally, effects: Effects, extra = '') =>
  console.log(
    `[faults-under-load:${name}] answers ${JSON.stringify(Object.fromEntries([...tally.statuses].sort()))}; ` +
      `no answer ${tally.noAnswer}; ${JSON.stringify({ ...effects, acknowledgedMissing: effects.acknowledgedMissing.length, createdAuditNotOne: effects.createdAuditNotOne.length, createdOutboxNotOne: effects.createdOutboxNotOne.length, updatedAuditVsOutbox: effects.updatedAuditVsOutbox.length, patchesNotAudited: effects.patchesNotAudited.length })}${extra}`,
  );

const outboxDrained = async (dbUrl: string) => {
  const store = openStore(dbUrl, { poolSize: 1 });
  try {
    const row = await store.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('processed_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n) === 0;
  } finally {
    await store.close();
  }
};

/**
 * Identity Center's side of "an effect happens once": for every load user, the `identity-center.user-created`
 * audit records and the `POST /Users` the SCIM target received (a retried request would be a second one).
 */
async function identityCenterEffects(dbUrl: string, remote: IdentityCenterScimServer) {
  const store = openStore(dbUrl, { poolSize: 1 });
  try {
    const users = (await store.db.selectFrom('users').select('user_name').execute())
      .map((u) => u.user_name)
      .filter((u) => u.startsWith('load-'));
    const created = new Map<string, number>();
    for (const a of await store.db
      .selectFrom('audit_events')
      .select('subject')
      .where('type', '=', 'identity-center.user-created')
      .execute())
      created.set(a.subject ?? '', (created.get(a.subject ?? '') ?? 0) + 1);
    const posts = new Map<string, number>();
    for (const r of remote.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Users'))) {
      const userName = (r.body as { userName?: string }).userName ?? '';
      posts.set(userName, (posts.get(userName) ?? 0) + 1);
    }
    return {
      users: users.length,
      createdAuditNotOne: users.filter((u) => created.get(u) !== 1),
      postsNotOne: users.filter((u) => posts.get(u) !== 1),
      missingInIdentityCenter: users.filter((u) => remote.userByName(u) === undefined),
    };
  } finally {
    await store.close();
  }
}

describe('faults under steady mixed load', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    await stopAllFerryProcesses();
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(stopAllFerryProcesses);

  it('kill -9 of one of two instances on PostgreSQL: no acknowledged write lost, no token unaudited, nothing done twice (Identity Center push included)', async () => {
    const db: TestDatabase = await createMigratedTestDatabase('postgres');
    cleanups.push(() => db.drop());
    const setup = await prepare(db.url);
    cleanups.push(() => rmSync(setup.dir, { recursive: true, force: true }));
    const remote = await startIdentityCenterScim();
    cleanups.push(() => remote.close());
    // One after the other: the first start makes the signing keys, the second finds them.
    const a = await startFerryProcess({ cwd: setup.dir, env: setup.env, readyTimeoutMs: 90_000 });
    const b = await startFerryProcess({ cwd: setup.dir, env: setup.env, readyTimeoutMs: 90_000 });
    const creds = await credentials(a, setup.adminToken);
    // Every SCIM create is pushed on to Identity Center by whichever instance's worker claims it.
    const target = await fetch(new URL('/api/v1/identity-center/scim', a.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${setup.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ endpoint: remote.endpoint, token: remote.token }),
    });
    expect(target.status, await target.text()).toBe(200);
    const tally = newTally();
    let live = [a, b];
    const load = startLoad(() => live, setup, creds, tally);
    await sleep(4_000);
    const beforeKill = tally.created.length;
    // The instance killed is one with a `POST /Users` in flight: Identity Center has created the user
    // (the stand-in applies it even when its client is gone), Ferry has not recorded it, and the
    // killed instance holds the push lease. Creates answer 1 s late until then, so one is caught.
    const slowCreates = remote.slow({ method: 'POST', path: /^\/Users$/, delayMs: 1_000 });
    const inFlight = await waitFor(
      'a POST /Users in flight from one of the instances',
      () => {
        for (const r of remote.requests.filter((r) => r.method === 'POST' && r.status === 0)) {
          const pid = socketOwner(r.clientPort, [a.pid, b.pid]);
          if (pid !== undefined) return { request: r, victim: pid === a.pid ? a : b };
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    const { victim } = inFlight;
    const survivor = victim === a ? b : a;
    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    slowCreates.undo();
    live = [survivor];
    const pushedByVictim = (inFlight.request.body as { userName: string }).userName;
    await sleep(4_000);
    await load.stop();
    expect(tally.created.length).toBeGreaterThan(beforeKill); // B kept serving

    // Whatever A had claimed, and the Identity Center push lease it held, are taken over once its
    // heartbeat is 5 s old (not after the 60 s claim or the 15 s lease).
    const stoppedAt = Date.now();
    await waitFor('the outbox to be drained by the surviving instance', () => outboxDrained(db.url), {
      timeoutMs: 45_000,
      intervalMs: 250,
    });
    const drainedAfterMs = Date.now() - stoppedAt;
    const drainedAfterKillMs = Date.now() - killedAt;
    const effects = await countEffects(db.url, setup, tally);
    const pushed = await identityCenterEffects(db.url, remote);
    report(
      'kill-9',
      tally,
      effects,
      `; outbox drained ${drainedAfterMs} ms after the load stopped (${drainedAfterKillMs} ms after the kill); Identity Center: ${pushed.users} users, ` +
        `${remote.requests.length} requests, killed ${victim === a ? 'A' : 'B'} while it pushed ${pushedByVictim}`,
    );
    expectNoLossNoDuplicates(effects, tally);
    expect(effects.outboxUnprocessed).toBe(0);
    // Identity Center: each user created there once, by one POST, with one audit record, whichever
    // instance pushed it and whether A died in the middle of pushing it.
    expect(pushed.users).toBeGreaterThan(0);
    expect(pushed.missingInIdentityCenter).toEqual([]);
    expect(pushed.postsNotOne).toEqual([]);
    expect(pushed.createdAuditNotOne).toEqual([]);
    const verify = await fetch(new URL('/api/v1/audit/verify', survivor.url), {
      headers: { authorization: `Bearer ${setup.adminToken}` },
    });
    expect(((await verify.json()) as { ok: boolean }).ok).toBe(true);
  }, 180_000);

  it('PostgreSQL goes away mid-load and comes back: 503s while away, then the same counts hold', async () => {
    // The test server is shared with other files running in parallel: the "restart" is a cut of this
    // process's connections at a TCP proxy (every connection reset, new ones refused), then a restore.
    const db: TestDatabase = await createMigratedTestDatabase('postgres');
    cleanups.push(() => db.drop());
    const direct = new URL(db.url);
    const proxy: TcpProxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const setup = await prepare(viaProxy.toString());
    cleanups.push(() => rmSync(setup.dir, { recursive: true, force: true }));
    const server = await startFerryProcess({ cwd: setup.dir, env: setup.env, readyTimeoutMs: 60_000 });
    const creds = await credentials(server, setup.adminToken);
    const tally = newTally();
    const load = startLoad(() => [server], setup, creds, tally);
    await sleep(3_000);
    proxy.cut();
    await sleep(3_000);
    const ready = await fetch(new URL('/readyz', server.url));
    expect(ready.status).toBe(503);
    proxy.restore();
    const restoredAt = Date.now();
    const createdBefore = tally.created.length;
    await waitFor('SCIM creates to be acknowledged again', () => tally.created.length > createdBefore + 20, {
      timeoutMs: 15_000,
    });
    const recoveredMs = Date.now() - restoredAt;
    await sleep(2_000);
    await load.stop();
    // Claims whose completion the cut swallowed are taken back by their (live) holder at once, not
    // after their 60 s lease.
    const stoppedAt = Date.now();
    await waitFor('the outbox to be drained', () => outboxDrained(db.url), {
      timeoutMs: 15_000,
      intervalMs: 250,
    });
    const drainedMs = Date.now() - stoppedAt;

    const effects = await countEffects(db.url, setup, tally);
    report(
      'pg-restart',
      tally,
      effects,
      `; 20 creates acknowledged ${recoveredMs} ms after the restore; outbox drained ${drainedMs} ms after the load stopped`,
    );
    expectNoLossNoDuplicates(effects, tally);
    // The outage was seen, as 503s, not as errors.
    expect([...tally.statuses].filter(([k]) => k.endsWith(' 503')).length).toBeGreaterThan(0);
    expect(server.alive()).toBe(true);
  }, 120_000);

  it('PostgreSQL runs out of space mid-load: 503 and not ready, the cause logged once, and it recovers by itself', async () => {
    // A real disk_full (53100) without filling the server's disk: Ferry's database lives in a tablespace
    // of its own on a 32 MiB tmpfs, and mid-load another client fills it (as another program fills a
    // disk); dropping that client's table is the operator making room.
    const db = await createPostgresDatabaseOnSmallDisk(32);
    cleanups.push(() => db.drop());
    const setup = await prepare(db.url);
    cleanups.push(() => rmSync(setup.dir, { recursive: true, force: true }));
    const server = await startFerryProcess({ cwd: setup.dir, env: setup.env, readyTimeoutMs: 60_000 });
    const own = new pg.Client({ connectionString: db.url });
    await own.connect();
    cleanups.push(() => own.end());
    const creds = await credentials(server, setup.adminToken);
    const tally = newTally();
    const load = startLoad(() => [server], setup, creds, tally);
    await waitFor('some writes acknowledged before the disk fills', () => tally.created.length >= 10, {
      timeoutMs: 20_000,
    });
    await own.query('create table test_filler (b text)');
    for (let i = 0; i < 64; i++) {
      const full = await own
        .query(`insert into test_filler select repeat(md5(g::text), 32) from generate_series(1, 1024) g`)
        .then(
          () => false,
          (err: { code?: string }) => err.code === '53100',
        );
      if (full) break;
    }

    const full = await waitFor(
      '/readyz to report the database full',
      async () => {
        // the cause is detail: for an admin with audit:read (or the metrics token), not anonymous callers
        const res = await fetch(new URL('/readyz', server.url), {
          headers: { authorization: `Bearer ${setup.adminToken}` },
        });
        return res.status === 503 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const fullAt = tally.created.length;
    expect(full.headers.get('retry-after')).toBe('5');
    expect(full.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const fullBody = (await full.json()) as Record<string, unknown>;
    expect(fullBody).toMatchObject({ status: 503, title: 'Service Unavailable', database: 'not-writable' });
    expect(fullBody.detail).toMatch(
      /out of space \(53100: could not extend file .*No space left on device\)/,
    );

    // Writes answer 503 (RFC 7807 on the admin API) while reads still work. A small write may still
    // fit in a page that has room: the first that needs a new page is refused.
    const write = await waitFor(
      'an admin write to be refused for lack of space',
      async () => {
        const res = await fetch(new URL('/api/v1/groups', server.url), {
          method: 'POST',
          headers: { authorization: `Bearer ${setup.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ displayName: `During-Full-${randomBytes(8).toString('hex')}` }),
        });
        if (res.status === 503) return res;
        expect(res.status).toBe(201);
        await res.arrayBuffer();
        return undefined;
      },
      { timeoutMs: 10_000, intervalMs: 0 },
    );
    expect(write.headers.get('retry-after')).toBe('5');
    expect(write.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await write.json()).toMatchObject({
      status: 503,
      detail: 'the database has no room to write (disk full); retry shortly',
    });
    const read = await fetch(new URL('/api/v1/users?limit=1', server.url), {
      headers: { authorization: `Bearer ${setup.adminToken}` },
    });
    expect(read.status).toBe(200);
    await someCreateRefused(tally);

    // Space returns: the operator frees some. No restart.
    await own.query('drop table test_filler');
    const { readyAfterMs, effects, log, lines } = await afterSpaceReturns(
      server,
      db.url,
      setup,
      tally,
      load,
      fullAt,
    );
    report(
      'postgres-full',
      tally,
      effects,
      `; ready ${readyAfterMs} ms after space returned; log lines: out of space ${lines('database out of space')}, ` +
        `recovered ${lines('database writes work again')}, disk full ${lines('No space left on device')}, all ${log.split('\n').length - 1}`,
    );
    expectNoLossNoDuplicates(effects, tally);
    expect(tally.statuses.get('scim-create 503') ?? 0).toBeGreaterThan(0);
    // Logged once when it started and once when it ended; nothing per request or per retry.
    expect(lines('database out of space')).toBe(1);
    expect(lines('database writes work again')).toBe(1);
    const fullLines = log.split('\n').filter((l) => l.includes('No space left on device'));
    expect(fullLines.length, fullLines.join('\n')).toBe(1);
    expect(server.alive()).toBe(true);
  }, 120_000);

  it('SQLite runs out of space mid-load: 503 and not ready, the cause logged once, and it recovers by itself', async () => {
    const db: TestDatabase = await createTestDatabase('sqlite');
    cleanups.push(() => db.drop());
    const setup = await prepare(db.url);
    cleanups.push(() => rmSync(setup.dir, { recursive: true, force: true }));
    // A real SQLITE_FULL without filling the machine's disk: Ferry's file may grow by 250 pages past its
    // size at start (PRAGMA max_page_count, through the FERRY_TEST_SQLITE_HEADROOM_PAGES seam), and
    // mid-load something else takes the room (the test's own 4 MiB in the same file), as when another
    // program fills the disk. Freeing it later is the operator making room.
    const server = await startFerryProcess({
      cwd: setup.dir,
      env: { ...setup.env, FERRY_TEST_SQLITE_HEADROOM_PAGES: '250' },
      readyTimeoutMs: 60_000,
    });
    const file = db.url.slice('sqlite:'.length);
    const own = new SqliteDatabase(file);
    cleanups.push(() => {
      own.close();
    });
    own.pragma('busy_timeout = 5000');
    const creds = await credentials(server, setup.adminToken);
    const tally = newTally();
    const load = startLoad(() => [server], setup, creds, tally);
    await waitFor('some writes acknowledged before the disk fills', () => tally.created.length >= 10, {
      timeoutMs: 20_000,
    });
    own.exec('create table test_filler (b blob)');
    const fill = own.prepare('insert into test_filler values (zeroblob(65536))');
    for (let i = 0; i < 64; i++) fill.run();

    const full = await waitFor(
      '/readyz to report the database full',
      async () => {
        // the cause is detail: for an admin with audit:read (or the metrics token), not anonymous callers
        const res = await fetch(new URL('/readyz', server.url), {
          headers: { authorization: `Bearer ${setup.adminToken}` },
        });
        return res.status === 503 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const fullAt = tally.created.length;
    expect(full.headers.get('retry-after')).toBe('5');
    expect(full.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const fullBody = (await full.json()) as Record<string, unknown>;
    expect(fullBody).toMatchObject({ status: 503, title: 'Service Unavailable', database: 'not-writable' });
    expect(fullBody.detail).toMatch(/out of space \(SQLITE_FULL: database or disk is full\)/);

    // Writes answer 503 (RFC 7807 on the admin API) while reads still work.
    await sleep(1_500);
    // A small write may still fit in a page that has room: the first that needs a new page is refused.
    const write = await waitFor(
      'an admin write to be refused for lack of space',
      async () => {
        const res = await fetch(new URL('/api/v1/groups', server.url), {
          method: 'POST',
          headers: { authorization: `Bearer ${setup.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ displayName: `During-Full-${randomBytes(8).toString('hex')}` }),
        });
        if (res.status === 503) return res;
        expect(res.status).toBe(201);
        await res.arrayBuffer();
        return undefined;
      },
      { timeoutMs: 10_000, intervalMs: 0 },
    );
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('5');
    expect(write.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await write.json()).toMatchObject({
      status: 503,
      detail: 'the database has no room to write (disk full); retry shortly',
    });
    const read = await fetch(new URL('/api/v1/users?limit=1', server.url), {
      headers: { authorization: `Bearer ${setup.adminToken}` },
    });
    expect(read.status).toBe(200);
    await someCreateRefused(tally);

    // Space returns: the operator frees some. No restart.
    own.exec('delete from test_filler');
    const { readyAfterMs, effects, log, lines } = await afterSpaceReturns(
      server,
      db.url,
      setup,
      tally,
      load,
      fullAt,
    );
    report(
      'sqlite-full',
      tally,
      effects,
      `; ready ${readyAfterMs} ms after space returned; log lines: out of space ${lines('database out of space')}, ` +
        `recovered ${lines('database writes work again')}, cannot rollback ${lines('cannot rollback')}, all ${log.split('\n').length - 1}`,
    );
    expectNoLossNoDuplicates(effects, tally);
    // Logged once when it started and once when it ended; nothing per request or per retry.
    expect(lines('database out of space')).toBe(1);
    expect(lines('database writes work again')).toBe(1);
    expect(lines('cannot rollback')).toBe(0);
    const fullLines = log.split('\n').filter((l) => l.includes('database or disk is full'));
    expect(fullLines.length, fullLines.join('\n')).toBe(1);
    expect(server.alive()).toBe(true);
  }, 120_000);
});
