import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  SelectQueryNode,
  TableNode,
  type UnknownRow,
} from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { createTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { ManualClock } from '../clock.js';
import { migrateToLatest } from '../store/migrate.js';
import { openStore, type Store } from '../store/open.js';
import type { Actor } from './actor.js';
import { canonicalJson } from './canonical-json.js';
import {
  type AuditEvent,
  type AuditInput,
  appendAudit,
  GENESIS_HASH,
  hashEvent,
  listAudit,
} from './ledger.js';
import { type VerifyResult, verifyAudit } from './verify.js';

const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

const ACTORS: Actor[] = [
  { type: 'user', id: 'u-1', name: 'Test-AWSAdmin@contoso.example' },
  { type: 'api-token', id: 't-1', name: 'terraform' },
  { type: 'system', name: 'outbox-worker' },
  { type: 'operator', name: 'root' },
  { type: 'anonymous' },
];

/** Varied events, so that every field takes part in the hash. */
function input(i: number): AuditInput {
  return {
    type: i % 2 ? 'signin.password' : 'user.updated',
    outcome: i % 3 ? 'success' : 'failure',
    actor: ACTORS[i % ACTORS.length]!,
    subject: `user-${i}@contoso.example`,
    ip: `192.0.2.${i}`,
    requestId: `req-${i}`,
    data: { i, changed: ['displayName'], nested: { b: i * 2, a: 'ä €' } },
  };
}

async function append(store: Store, clock: ManualClock, i: number): Promise<AuditEvent> {
  clock.advance(1_000);
  return store.db.transaction().execute((trx) => appendAudit(trx, store.engine, clock, input(i)));
}

async function appendMany(store: Store, clock: ManualClock, n: number): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for (let i = 1; i <= n; i++) out.push(await append(store, clock, i));
  return out;
}

async function resetLedger(store: Store): Promise<void> {
  await store.db.deleteFrom('audit_events').execute();
  await store.db.updateTable('audit_head').set({ seq: 0, hash: GENESIS_HASH }).where('id', '=', 1).execute();
}

async function rowAt(store: Store, seq: number) {
  return store.db.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
}

/** Runs `action` once, right after the first query that reads the audit head has returned. */
class AfterHeadRead implements KyselyPlugin {
  readonly #headQueries = new WeakSet<QueryId>();
  #fired = false;
  constructor(private readonly action: () => Promise<void>) {}

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const node = args.node;
    if (
      SelectQueryNode.is(node) &&
      node.from?.froms.some((f) => TableNode.is(f) && f.table.identifier.name === 'audit_head')
    ) {
      this.#headQueries.add(args.queryId);
    }
    return node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (!this.#fired && this.#headQueries.has(args.queryId)) {
      this.#fired = true;
      await this.action();
    }
    return args.result;
  }
}

describe.each(ENGINES)('audit ledger on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  const N = 7;
  const MIDDLE = 4;

  beforeAll(async () => {
    tdb = await createTestDatabase(engine);
    store = openStore(tdb.url);
    await migrateToLatest(store);
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  beforeEach(async () => {
    await resetLedger(store);
    clock = new ManualClock('2026-02-01T08:00:00.000Z');
  });

  const expectBrokenAt = (result: VerifyResult, seq: number, reason: RegExp) => {
    expect(result.ok).toBe(false);
    expect(result.firstBad?.seq).toBe(seq);
    expect(result.firstBad?.reason).toMatch(reason);
    expect(result.events).toBe(seq - 1); // the events before it did verify
  };

  describe('an untouched chain', () => {
    it('an empty ledger verifies', async () => {
      expect(await verifyAudit(store.db)).toEqual({ ok: true, events: 0, headSeq: 0, firstBad: null });
    });

    it('N appends form one chain that verifies with events=N', async () => {
      const events = await appendMany(store, clock, N);
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(events[0]!.prevHash).toBe(GENESIS_HASH);
      for (let i = 1; i < N; i++) expect(events[i]!.prevHash).toBe(events[i - 1]!.hash);
      expect(await verifyAudit(store.db)).toEqual({ ok: true, events: N, headSeq: N, firstBad: null });
    });

    it('reads back every event exactly as it was appended', async () => {
      const events = await appendMany(store, clock, N);
      expect(await listAudit(store.db, {})).toEqual(events);
      expect(events[2]).toMatchObject({
        seq: 3,
        time: '2026-02-01T08:00:03.000Z',
        type: 'signin.password',
        outcome: 'failure',
        actor: ACTORS[3],
        subject: 'user-3@contoso.example',
        ip: '192.0.2.3',
        requestId: 'req-3',
        data: { i: 3, changed: ['displayName'], nested: { a: 'ä €', b: 6 } },
      });
    });

    it('verifies in batches smaller than the chain, including an exact multiple of the batch', async () => {
      await appendMany(store, clock, 6);
      expect(await verifyAudit(store.db, 2)).toMatchObject({ ok: true, events: 6 });
      expect(await verifyAudit(store.db, 3)).toMatchObject({ ok: true, events: 6 });
      await append(store, clock, 7);
      expect(await verifyAudit(store.db, 2)).toMatchObject({ ok: true, events: 7 });
    });

    it('a verify while another instance appends reports the chain intact', async () => {
      await appendMany(store, clock, N);
      const other = openStore(tdb.url, { poolSize: 1 });
      try {
        // The other instance commits an event after verify has read the head, before it walks the rows.
        const db = store.db.withPlugin(new AfterHeadRead(() => append(other, clock, N + 1).then(() => {})));
        expect(await verifyAudit(db, 2)).toEqual({ ok: true, events: N, headSeq: N, firstBad: null });
        expect(await verifyAudit(store.db)).toMatchObject({ ok: true, events: N + 1 });
      } finally {
        await other.close();
      }
    });
  });

  describe('tampering', () => {
    beforeEach(async () => {
      await appendMany(store, clock, N);
    });

    it.each([
      ['data', '{"i":4,"changed":[]}'],
      ['time', '2026-02-01T07:59:59.000Z'],
      ['type', 'user.created'],
      ['actor', '{"type":"system","name":"outbox-worker"}'],
      ['outcome', 'failure'],
      ['subject', 'someone-else@contoso.example'],
      ['ip', '198.51.100.7'],
      ['request_id', 'req-forged'],
    ] as const)('editing %s of a middle event fails at exactly that event', async (column, value) => {
      const before = await rowAt(store, MIDDLE);
      expect(before[column]).not.toBe(value);
      await store.db
        .updateTable('audit_events')
        .set({ [column]: value })
        .where('seq', '=', MIDDLE)
        .execute();
      const result = await verifyAudit(store.db);
      expectBrokenAt(result, MIDDLE, /edited/);
      expect(result.firstBad?.id).toBe(before.id);
    });

    it('editing a middle event and recomputing its hash fails at the next event', async () => {
      const row = await rowAt(store, MIDDLE);
      const data = { ...JSON.parse(row.data), i: 400 };
      const hash = hashEvent({
        seq: MIDDLE,
        id: row.id,
        time: row.time,
        type: row.type,
        outcome: row.outcome as 'success' | 'failure',
        actor: JSON.parse(row.actor),
        subject: row.subject,
        ip: row.ip,
        requestId: row.request_id,
        data,
        prevHash: row.prev_hash,
      });
      await store.db
        .updateTable('audit_events')
        .set({ data: canonicalJson(data), hash })
        .where('seq', '=', MIDDLE)
        .execute();
      expectBrokenAt(await verifyAudit(store.db), MIDDLE + 1, /prev_hash/);
    });

    it('deleting a middle event fails at that event (missing)', async () => {
      await store.db.deleteFrom('audit_events').where('seq', '=', MIDDLE).execute();
      const result = await verifyAudit(store.db);
      expectBrokenAt(result, MIDDLE, /missing/);
      // Also when the gap falls on a batch boundary.
      expectBrokenAt(await verifyAudit(store.db, 3), MIDDLE, /missing/);
    });

    it('deleting the first event fails at event 1', async () => {
      await store.db.deleteFrom('audit_events').where('seq', '=', 1).execute();
      expectBrokenAt(await verifyAudit(store.db), 1, /missing/);
    });

    it('deleting the newest event fails (the head records more)', async () => {
      await store.db.deleteFrom('audit_events').where('seq', '=', N).execute();
      const result = await verifyAudit(store.db);
      expectBrokenAt(result, N, /head/);
      expect(result.headSeq).toBe(N);
    });

    it('deleting the newest events fails at the first one removed', async () => {
      await store.db
        .deleteFrom('audit_events')
        .where('seq', '>', N - 3)
        .execute();
      expectBrokenAt(await verifyAudit(store.db), N - 2, /head/);
    });

    it('deleting every event fails', async () => {
      await store.db.deleteFrom('audit_events').execute();
      expectBrokenAt(await verifyAudit(store.db), 1, /head/);
    });

    it('swapping two events (reorder) fails at the first of them', async () => {
      const a = await rowAt(store, 3);
      const b = await rowAt(store, 5);
      const { seq: _a, ...contentA } = a;
      const { seq: _b, ...contentB } = b;
      // ids are unique: park one first
      await store.db.updateTable('audit_events').set({ id: 'parked' }).where('seq', '=', 3).execute();
      await store.db.updateTable('audit_events').set(contentA).where('seq', '=', 5).execute();
      await store.db.updateTable('audit_events').set(contentB).where('seq', '=', 3).execute();
      expectBrokenAt(await verifyAudit(store.db), 3, /prev_hash/);
    });

    it('swapping only the content of two neighbours, keeping the hashes in place, fails at the first', async () => {
      const a = await rowAt(store, MIDDLE);
      const b = await rowAt(store, MIDDLE + 1);
      const pick = (r: typeof a) => ({ time: r.time, type: r.type, data: r.data, subject: r.subject });
      await store.db.updateTable('audit_events').set(pick(b)).where('seq', '=', MIDDLE).execute();
      await store.db
        .updateTable('audit_events')
        .set(pick(a))
        .where('seq', '=', MIDDLE + 1)
        .execute();
      expectBrokenAt(await verifyAudit(store.db), MIDDLE, /edited/);
    });

    it('an event inserted after the newest one, around Ferry, fails at that event', async () => {
      const last = await rowAt(store, N);
      const forged = {
        seq: N + 1,
        id: 'forged-event',
        time: '2026-02-01T09:00:00.000Z',
        type: 'user.updated',
        outcome: 'success' as const,
        actor: { type: 'system', name: 'outbox-worker' } as Actor,
        subject: 'x',
        ip: null,
        requestId: null,
        data: {},
        prevHash: last.hash,
      };
      await store.db
        .insertInto('audit_events')
        .values({
          seq: forged.seq,
          id: forged.id,
          time: forged.time,
          type: forged.type,
          outcome: forged.outcome,
          actor: canonicalJson(forged.actor),
          subject: forged.subject,
          ip: null,
          request_id: null,
          data: '{}',
          prev_hash: forged.prevHash,
          hash: hashEvent(forged),
        })
        .execute();
      const result = await verifyAudit(store.db);
      expect(result.ok).toBe(false);
      expect(result.firstBad).toMatchObject({ seq: N + 1, id: 'forged-event' });
    });
  });

  describe('ferry audit verify (the operator command)', () => {
    let dir: string;
    let configFile: string;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'ferry-audit-cli-'));
      configFile = join(dir, 'ferry.yaml');
      writeFileSync(
        configFile,
        toYaml({
          database: { url: tdb.url },
          keys: { masterKey: randomBytes(32).toString('base64') },
          log: { level: 'warn' },
        }),
      );
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      await appendMany(store, clock, 5);
    });

    it('exits 0 and says the trail is intact', async () => {
      const run = await ferry(['audit', 'verify', '--config', configFile], dir);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/intact/);
      expect(run.stdout).toMatch(/\b5 events\b/);
    });

    it('exits 1 and names the edited event', async () => {
      const bad = await rowAt(store, 3);
      await store.db.updateTable('audit_events').set({ data: '{"i":99}' }).where('seq', '=', 3).execute();
      const run = await ferry(['audit', 'verify', '--config', configFile], dir);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/\bevent 3\b/);
      expect(run.stdout).toContain(bad.id);
      expect(run.stdout).not.toMatch(/intact/);
    });

    it('--json prints the VerifyResult, intact or not', async () => {
      const intact = await ferry(['audit', 'verify', '--json', '--config', configFile], dir);
      expect(intact.code).toBe(0);
      expect(JSON.parse(intact.stdout)).toEqual({ ok: true, events: 5, headSeq: 5, firstBad: null });

      await store.db.deleteFrom('audit_events').where('seq', '=', 2).execute();
      const broken = await ferry(['audit', 'verify', '--json', '--config', configFile], dir);
      expect(broken.code).toBe(1);
      const result = JSON.parse(broken.stdout) as VerifyResult;
      expect(result).toEqual(await verifyAudit(store.db));
      expect(result).toMatchObject({ ok: false, events: 1, headSeq: 5, firstBad: { seq: 2, id: null } });
    });
  });
});

describe('audit ledger with several instances on one PostgreSQL', () => {
  let tdb: TestDatabase;
  const stores: Store[] = [];
  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
    stores.push(openStore(tdb.url, { poolSize: 5 }), openStore(tdb.url, { poolSize: 5 }));
    await migrateToLatest(stores[0]!);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await tdb?.drop();
  });

  it('two instances appending 25 events each at once produce one valid chain of 50', async () => {
    const clock = new ManualClock();
    const appended = await Promise.all(
      stores.flatMap((s, n) =>
        Array.from({ length: 25 }, (_, i) =>
          s.db.transaction().execute((trx) => appendAudit(trx, s.engine, clock, input(n * 25 + i))),
        ),
      ),
    );
    const seqs = appended.map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await verifyAudit(stores[1]!.db)).toEqual({ ok: true, events: 50, headSeq: 50, firstBad: null });
    const rows = await stores[0]!.db.selectFrom('audit_events').select('seq').execute();
    expect(new Set(rows.map((r) => Number(r.seq))).size).toBe(50);
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `ferry` command the way an operator does, without any FERRY_* settings of ours. */
function ferry(args: string[], cwd: string): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FERRY_BIN, ...args], { cwd, env, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}
