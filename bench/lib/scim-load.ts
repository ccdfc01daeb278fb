import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { runRequests } from './http-requests.js';

/**
 * The SCIM client side of the scim scenario, run in a worker thread: Entra ID is another machine, so
 * the client's work (building JSON, fetch) should not share the server's event loop. On the bench's
 * 2 vCPUs the server has one core and the client the other.
 */
export type LoadJob =
  | {
      kind: 'creates';
      base: string;
      token: string;
      /** userNames are `<prefix><n>@bench.example`, n from `first` */
      prefix: string;
      first: number;
      count: number;
      concurrency: number;
    }
  | {
      kind: 'import';
      base: string;
      token: string;
      prefix: string;
      users: number;
      groups: number;
      /** bulk requests in flight */
      concurrency: number;
    };

export interface LoadResult {
  ms: number;
  /** import: wall time of each phase, and the memberships sent */
  usersMs?: number;
  groupsMs?: number;
  memberships?: number;
  requests?: number;
}

/** Runs one job in a new worker thread and returns what it measured. */
export function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    worker.once('message', (m: { ok: true; result: LoadResult } | { ok: false; error: string }) =>
      m.ok ? resolve(m.result) : reject(new Error(m.error)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`SCIM load worker exited with ${code}`));
    });
  });
}

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
/** Bulk requests are kept under this many bytes (Ferry's maxPayloadSize is 1 MiB; smaller bodies arrive whole sooner on a busy server) and 1000 operations. */
const BULK_BYTES = 300_000;
const BULK_OPS = 1000;

/** What Entra ID sends for a new user. */
export const userBody = (userName: string, n: number) => ({
  schemas: [USER_SCHEMA, ENTERPRISE],
  userName,
  externalId: randomUUID(),
  name: { givenName: 'Bench', familyName: `User ${n}` },
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  [ENTERPRISE]: { department: `D${n % 50}` },
});

/** Which groups user n belongs to in the import: 1 to 5 of them (3 on average), all different. */
export function groupsOfUser(n: number, groups: number): number[] {
  const k = 1 + (n % 5);
  const out = new Set<number>();
  for (let j = 0; j < k; j++) out.add((n * 7 + j * 1009) % groups);
  return [...out];
}

async function run(job: LoadJob): Promise<LoadResult> {
  const headers = { authorization: `Bearer ${job.token}`, 'content-type': 'application/scim+json' };
  const post = async (path: string, body: string, want: number) => {
    const res = await fetch(`${job.base}/scim/v2${path}`, { method: 'POST', headers, body }).catch(
      (err: Error) => {
        // fetch's own message is "fetch failed": the cause says what (a reset, a timeout…)
        throw new Error(`POST ${path}: ${err.message}: ${String(err.cause)}`);
      },
    );
    if (res.status !== want) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`);
    return res;
  };
  const inFlight = async (n: number, concurrency: number, one: (i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, n) }, async () => {
        while (next < n) await one(next++);
      }),
    );
  };

  if (job.kind === 'creates') {
    // undici's Pool (bench/lib/http-requests.ts, ADR 0065): keep-alive connections, one request in
    // flight on each. fetch cost this thread ~3 ms of CPU per create on a busy machine and node:http
    // ~0.9 ms, as much as the server, so on 2 vCPUs the client's core, not the server, set the rate.
    const origin = new URL(job.base).origin;
    const prefix = new URL(job.base).pathname.replace(/\/$/, '');
    const names = (i: number) => `${job.prefix}${job.first + i}@bench.example`;
    const { ok, ms } = await runRequests({
      origin,
      count: job.count,
      concurrency: job.concurrency,
      headers,
      request: (i) => ({
        method: 'POST',
        path: `${prefix}/scim/v2/Users`,
        body: JSON.stringify(userBody(names(i), job.first + i)),
      }),
      // a create counts only when it is 201 with the resource created
      check: (i, status, body) => {
        if (status !== 201) return 'not 201';
        const user = JSON.parse(body) as { id?: unknown; userName?: unknown };
        if (typeof user.id !== 'string' || user.userName !== names(i)) return 'not the user created';
        return true;
      },
    });
    if (ok !== job.count) throw new Error(`${ok} of ${job.count} creates answered 201`);
    return { ms };
  }

  // The import: every user through /Bulk, then every group with its members by id.
  const bulk = async (ops: string[]) => {
    const res = await post('/Bulk', `{"schemas":["${BULK_REQUEST}"],"Operations":[${ops.join(',')}]}`, 200);
    const body = (await res.json()) as {
      Operations: Array<{ bulkId: string; status: string; location: string }>;
    };
    const bad = body.Operations.find((o) => o.status !== '201');
    if (bad || body.Operations.length !== ops.length)
      throw new Error(`bulk import: ${JSON.stringify(bad ?? body.Operations.length)}`);
    return body.Operations;
  };
  /** Operations packed into requests within the size and count limits. */
  const pack = (ops: string[]) => {
    const requests: string[][] = [];
    let current: string[] = [];
    let bytes = 0;
    for (const op of ops) {
      if (current.length === BULK_OPS || bytes + op.length > BULK_BYTES) {
        requests.push(current);
        current = [];
        bytes = 0;
      }
      current.push(op);
      bytes += op.length + 1;
    }
    if (current.length > 0) requests.push(current);
    return requests;
  };

  const start = performance.now();
  const userIds: string[] = new Array(job.users);
  const userOps = Array.from({ length: job.users }, (_, n) =>
    JSON.stringify({
      method: 'POST',
      path: '/Users',
      bulkId: `u${n}`,
      data: userBody(`${job.prefix}${n}@bench.example`, n),
    }),
  );
  const userRequests = pack(userOps);
  await inFlight(userRequests.length, job.concurrency, async (r) => {
    for (const o of await bulk(userRequests[r]!)) userIds[Number(o.bulkId.slice(1))] = o.location.slice(-36);
  });
  const usersMs = performance.now() - start;

  const members: string[][] = Array.from({ length: job.groups }, () => []);
  let memberships = 0;
  for (let n = 0; n < job.users; n++) {
    for (const g of groupsOfUser(n, job.groups)) {
      members[g]!.push(userIds[n]!);
      memberships++;
    }
  }
  const groupOps = members.map((ids, g) =>
    JSON.stringify({
      method: 'POST',
      path: '/Groups',
      bulkId: `g${g}`,
      data: {
        schemas: [GROUP_SCHEMA],
        displayName: `${job.prefix}group-${g}`,
        externalId: randomUUID(),
        members: ids.map((value) => ({ value })),
      },
    }),
  );
  const groupRequests = pack(groupOps);
  await inFlight(groupRequests.length, job.concurrency, async (r) => {
    await bulk(groupRequests[r]!);
  });
  const ms = performance.now() - start;
  return {
    ms,
    usersMs,
    groupsMs: ms - usersMs,
    memberships,
    requests: userRequests.length + groupRequests.length,
  };
}

if (!isMainThread && parentPort && (workerData as LoadJob | undefined)?.kind) {
  const port = parentPort;
  run(workerData as LoadJob).then(
    (result) => port.postMessage({ ok: true, result }),
    (err: Error) => port.postMessage({ ok: false, error: err.stack ?? String(err) }),
  );
}
