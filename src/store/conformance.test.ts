import { createServer, type Socket } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createMigratedTestDatabase,
  createTestDatabase,
  ENGINES,
  type TestDatabase,
} from '../../test/support/db.js';
import { appendAudit, GENESIS_HASH } from '../audit/ledger.js';
import { ManualClock } from '../clock.js';
import type { DomainEvent } from '../events.js';
import { isDatabaseUnavailable, isUniqueViolation } from './errors.js';
import { migrateToLatest } from './migrate.js';
import { migrations } from './migrations/index.js';
import { openStore, type Store } from './open.js';
import { claimEvents, completeEvent, enqueueEvent, failEvent } from './outbox.js';
import type { Database, NewUserRow } from './schema.js';

const TABLES: Array<keyof Database> = [
  'users',
  'groups',
  'group_members',
  'totp_factors',
  'sessions',
  'signin_throttle',
  'api_tokens',
  'audit_events',
  'audit_head',
  'outbox',
];

function userRow(id: string, userName: string): NewUserRow {
  return {
    id,
    user_name: userName,
    user_name_key: userName.toLowerCase(),
    display_name: null,
    given_name: null,
    family_name: null,
    emails: '[]',
    active: 1,
    external_id: null,
    attributes: '{}',
    password_hash: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    version: 1,
  };
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

async function auditHead(store: Store) {
  const head = await store.db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  return { seq: Number(head.seq), hash: head.hash };
}

async function count(store: Store, table: 'users' | 'audit_events' | 'outbox'): Promise<number> {
  const row = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function membershipRemoved(userId: string): DomainEvent {
  return { type: 'membership.changed', groupId: 'g-1', userId, change: 'removed' };
}

describe.each(ENGINES)('storage conformance on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  const dropLater: TestDatabase[] = [];

  beforeAll(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url);
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
    for (const d of dropLater) await d.drop();
  });

  /** A database of its own for tests that need an empty one. */
  async function freshDatabase(): Promise<TestDatabase> {
    const d = await createTestDatabase(engine);
    dropLater.push(d);
    return d;
  }

  describe('migrations', () => {
    it('apply every migration to an empty database, and running them again changes nothing', async () => {
      const d = await freshDatabase();
      const s = openStore(d.url);
      try {
        expect(await migrateToLatest(s)).toEqual(Object.keys(migrations));
        expect(await migrateToLatest(s)).toEqual([]);
        for (const table of TABLES) {
          await expect(s.db.selectFrom(table).selectAll().execute(), table).resolves.toEqual(
            expect.any(Array),
          );
        }
        expect(await auditHead(s)).toEqual({ seq: 0, hash: GENESIS_HASH });
      } finally {
        await s.close();
      }
    });

    it('an instance started later finds the schema up to date', async () => {
      const again = openStore(tdb.url);
      try {
        expect(await migrateToLatest(again)).toEqual([]);
      } finally {
        await again.close();
      }
    });
  });

  describe('errors', () => {
    beforeEach(async () => {
      await store.db.deleteFrom('users').execute();
    });

    it('isUniqueViolation recognises a duplicate unique column', async () => {
      await store.db.insertInto('users').values(userRow('u-1', 'jane@contoso.example')).execute();
      const err = await rejection(
        store.db.insertInto('users').values(userRow('u-2', 'JANE@contoso.example')).execute(),
      );
      expect(isUniqueViolation(err)).toBe(true);
      expect(isDatabaseUnavailable(err)).toBe(false);
    });

    it('isUniqueViolation recognises a duplicate primary key', async () => {
      await store.db.insertInto('users').values(userRow('u-1', 'jane@contoso.example')).execute();
      const err = await rejection(
        store.db.insertInto('users').values(userRow('u-1', 'john@contoso.example')).execute(),
      );
      expect(isUniqueViolation(err)).toBe(true);
    });

    it('other constraint and query errors are neither duplicates nor an unavailable database', async () => {
      const notNull = await rejection(
        store.db
          .insertInto('users')
          .values({ ...userRow('u-3', 'x@contoso.example'), user_name: null as unknown as string })
          .execute(),
      );
      expect(isUniqueViolation(notNull)).toBe(false);
      expect(isDatabaseUnavailable(notNull)).toBe(false);
      const syntax = await rejection(sql`selec 1`.execute(store.db));
      expect(isUniqueViolation(syntax)).toBe(false);
      expect(isDatabaseUnavailable(syntax)).toBe(false);
    });
  });

  describe('transactions', () => {
    it('a transaction that fails after writing a row, an audit event and an outbox event leaves none of them', async () => {
      const clock = new ManualClock();
      const headBefore = await auditHead(store);
      const auditBefore = await count(store, 'audit_events');
      const outboxBefore = await count(store, 'outbox');
      const boom = new Error('handler failed after writing');
      const err = await rejection(
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('users').values(userRow('u-rolled-back', 'gone@contoso.example')).execute();
          await appendAudit(trx, store.engine, clock, {
            type: 'user.created',
            outcome: 'success',
            actor: { type: 'system', name: 'test' },
            subject: 'gone@contoso.example',
          });
          await enqueueEvent(trx, clock, {
            type: 'user.created',
            userId: 'u-rolled-back',
            userName: 'gone@contoso.example',
          });
          // Inside the transaction all three are visible…
          expect(
            await trx.selectFrom('users').select('id').where('id', '=', 'u-rolled-back').execute(),
          ).toHaveLength(1);
          throw boom;
        }),
      );
      expect(err).toBe(boom);
      // …and after the rollback none of them is.
      expect(
        await store.db.selectFrom('users').select('id').where('id', '=', 'u-rolled-back').execute(),
      ).toEqual([]);
      expect(await count(store, 'audit_events')).toBe(auditBefore);
      expect(await count(store, 'outbox')).toBe(outboxBefore);
      expect(await auditHead(store)).toEqual(headBefore);

      // The ledger continues: the next append is a fresh event, unsealed until the sequencer places it
      // (a rolled-back seq may be skipped on PostgreSQL; the tree position is what has no gaps).
      const next = await store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: 'x',
          outcome: 'success',
          actor: { type: 'anonymous' },
        }),
      );
      expect(next.seq).toBeGreaterThan(0);
      expect(next.leafIndex).toBeNull();
      expect(await count(store, 'audit_events')).toBe(auditBefore + 1);
    });
  });

  describe('outbox', () => {
    let clock: ManualClock;
    beforeEach(async () => {
      await store.db.deleteFrom('outbox').execute();
      clock = new ManualClock('2026-03-01T09:00:00.000Z');
    });

    async function enqueue(events: DomainEvent[], s: Store = store): Promise<string[]> {
      return s.db.transaction().execute(async (trx) => {
        const ids: string[] = [];
        for (const e of events) ids.push(await enqueueEvent(trx, clock, e));
        return ids;
      });
    }

    it('hands out events in the order they were written, with their payloads', async () => {
      // One transaction at one instant (as deleting a group does), then later ones.
      const first: DomainEvent[] = [
        membershipRemoved('u-1'),
        membershipRemoved('u-2'),
        membershipRemoved('u-3'),
        membershipRemoved('u-4'),
        membershipRemoved('u-5'),
        { type: 'group.deleted', groupId: 'g-1', displayName: 'AWS-Account1-Developers' },
      ];
      await enqueue(first);
      const second: DomainEvent = { type: 'user.created', userId: 'u-9', userName: 'new@contoso.example' };
      await enqueue([second]);
      clock.advance(1);
      const third: DomainEvent = { type: 'user.deactivated', userId: 'u-9', userName: 'new@contoso.example' };
      await enqueue([third]);

      const claimed = await claimEvents(store, clock, 'worker-a', 100, 60_000);
      expect(claimed.map((c) => c.event)).toEqual([...first, second, third]);
      expect(claimed.every((c) => c.attempts === 1)).toBe(true);
    });

    it('a claim takes at most `limit` events, oldest first, and the next claim continues after them', async () => {
      const events = ['u-1', 'u-2', 'u-3', 'u-4', 'u-5'].map(membershipRemoved);
      const ids = await enqueue(events);
      const a = await claimEvents(store, clock, 'worker-a', 2, 60_000);
      const b = await claimEvents(store, clock, 'worker-b', 2, 60_000);
      const c = await claimEvents(store, clock, 'worker-c', 2, 60_000);
      expect(a.map((e) => e.id)).toEqual(ids.slice(0, 2));
      expect(b.map((e) => e.id)).toEqual(ids.slice(2, 4));
      expect(c.map((e) => e.id)).toEqual(ids.slice(4));
      expect(await claimEvents(store, clock, 'worker-d', 2, 60_000)).toEqual([]);
    });

    it('an event whose transaction rolled back is never handed out', async () => {
      const boom = new Error('rolled back');
      await expect(
        store.db.transaction().execute(async (trx) => {
          await enqueueEvent(trx, clock, membershipRemoved('u-rolled-back'));
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await claimEvents(store, clock, 'worker-a', 10, 60_000)).toEqual([]);
      const [id] = await enqueue([membershipRemoved('u-1')]);
      expect((await claimEvents(store, clock, 'worker-a', 10, 60_000)).map((e) => e.id)).toEqual([id]);
    });

    it('a claimed event is not handed out again while its lease runs, and is after the lease expires', async () => {
      const [id] = await enqueue([membershipRemoved('u-1')]);
      const lease = 30_000;
      expect((await claimEvents(store, clock, 'worker-a', 10, lease)).map((e) => e.id)).toEqual([id]);

      expect(await claimEvents(store, clock, 'worker-b', 10, lease)).toEqual([]);
      clock.advance(lease - 1);
      expect(await claimEvents(store, clock, 'worker-b', 10, lease)).toEqual([]);

      clock.advance(2); // worker-a died without completing: the event is delivered again
      const again = await claimEvents(store, clock, 'worker-b', 10, lease);
      expect(again.map((e) => ({ id: e.id, attempts: e.attempts }))).toEqual([{ id, attempts: 2 }]);
      const row = await store.db
        .selectFrom('outbox')
        .select('claimed_by')
        .where('id', '=', id!)
        .executeTakeFirstOrThrow();
      expect(row.claimed_by).toBe('worker-b');
    });

    it('a live worker takes back its own orphaned claims when nothing of the lane is in flight with it', async () => {
      const [id] = await enqueue([membershipRemoved('u-1')]);
      expect((await claimEvents(store, clock, 'worker-a', 10, 60_000)).map((e) => e.id)).toEqual([id]);
      // Its completion never reached the database (the connection died under it); worker-a lives on.
      expect(await claimEvents(store, clock, 'worker-a', 10, 60_000)).toEqual([]);
      expect(await claimEvents(store, clock, 'worker-b', 10, 60_000, { reclaimOwn: true })).toEqual([]);
      const again = await claimEvents(store, clock, 'worker-a', 10, 60_000, { reclaimOwn: true });
      expect(again.map((e) => ({ id: e.id, attempts: e.attempts }))).toEqual([{ id, attempts: 2 }]);
    });

    it('a completed event never comes back', async () => {
      const [id, other] = await enqueue([membershipRemoved('u-1'), membershipRemoved('u-2')]);
      const claimed = await claimEvents(store, clock, 'worker-a', 1, 30_000);
      expect(claimed.map((e) => e.id)).toEqual([id]);
      await completeEvent(store, clock, id!, 'worker-a');

      clock.advance(86_400_000); // long after the lease would have expired
      const later = await claimEvents(store, clock, 'worker-b', 10, 30_000);
      expect(later.map((e) => e.id)).toEqual([other]);
      await completeEvent(store, clock, other!, 'worker-b');
      clock.advance(86_400_000);
      expect(await claimEvents(store, clock, 'worker-c', 10, 30_000)).toEqual([]);
      const processed = await store.db.selectFrom('outbox').select(['id', 'processed_at']).execute();
      expect(processed.every((r) => r.processed_at !== null)).toBe(true);
    });

    it('a failed event waits out a growing backoff, while the events behind it go ahead', async () => {
      const [id, behind] = await enqueue([membershipRemoved('u-1'), membershipRemoved('u-2')]);
      const row = () =>
        store.db
          .selectFrom('outbox')
          .select(['available_at', 'last_error', 'processed_at'])
          .where('id', '=', id!)
          .executeTakeFirstOrThrow();

      const [first] = await claimEvents(store, clock, 'worker-a', 1, 60_000);
      expect(first?.id).toBe(id);
      await failEvent(store, clock, id!, 'worker-a', first!.attempts, 'SCIM endpoint returned 503');
      const failedAt = clock.now().getTime();
      const r1 = await row();
      expect(r1.last_error).toBe('SCIM endpoint returned 503');
      const delay1 = new Date(r1.available_at).getTime() - failedAt;
      expect(delay1).toBeGreaterThan(0);

      // Not due yet: only the event behind it is handed out.
      const meanwhile = await claimEvents(store, clock, 'worker-a', 10, 60_000);
      expect(meanwhile.map((e) => e.id)).toEqual([behind]);
      await completeEvent(store, clock, behind!, 'worker-a');
      clock.advance(delay1 - 1);
      expect(await claimEvents(store, clock, 'worker-a', 10, 60_000)).toEqual([]);
      clock.advance(1);
      const [second] = await claimEvents(store, clock, 'worker-a', 10, 60_000);
      expect(second).toMatchObject({ id, attempts: 2 });

      // A second failure waits longer.
      await failEvent(store, clock, id!, 'worker-a', second!.attempts, 'still failing');
      const delay2 = new Date((await row()).available_at).getTime() - clock.now().getTime();
      expect(delay2).toBeGreaterThan(delay1);
      clock.advance(delay2 - 1);
      expect(await claimEvents(store, clock, 'worker-a', 10, 60_000)).toEqual([]);
      clock.advance(1);
      const [third] = await claimEvents(store, clock, 'worker-a', 10, 60_000);
      expect(third).toMatchObject({ id, attempts: 3 });

      // However often it failed, the wait stays bounded (10 minutes).
      await failEvent(store, clock, id!, 'worker-a', 40, 'down for a day');
      const capped = new Date((await row()).available_at).getTime() - clock.now().getTime();
      expect(capped).toBeGreaterThan(delay2);
      expect(capped).toBeLessThanOrEqual(600_000);
      expect((await row()).processed_at).toBeNull();
    });

    it('a worker whose lease expired cannot complete or fail the event another worker now holds', async () => {
      const [id] = await enqueue([membershipRemoved('u-1')]);
      await claimEvents(store, clock, 'worker-a', 1, 1_000);
      clock.advance(1_001);
      const [retaken] = await claimEvents(store, clock, 'worker-b', 1, 60_000);
      expect(retaken?.id).toBe(id);
      await failEvent(store, clock, id!, 'worker-a', 1, 'late failure');
      await completeEvent(store, clock, id!, 'worker-a');
      const row = await store.db
        .selectFrom('outbox')
        .select(['claimed_by', 'processed_at', 'last_error'])
        .where('id', '=', id!)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ claimed_by: 'worker-b', processed_at: null, last_error: null });
    });
  });
});

/** Several Ferry instances share one PostgreSQL (the production setup behind a load balancer). */
describe('several instances on one PostgreSQL', () => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const d of databases) await d.drop();
  });
  async function freshDatabase(): Promise<TestDatabase> {
    const d = await createTestDatabase('postgres');
    databases.push(d);
    return d;
  }

  it('two instances migrating one empty database at once apply each migration exactly once', async () => {
    const d = await freshDatabase();
    const a = openStore(d.url, { poolSize: 2 });
    const b = openStore(d.url, { poolSize: 2 });
    try {
      const [ra, rb] = await Promise.all([migrateToLatest(a), migrateToLatest(b)]);
      expect([...ra, ...rb]).toEqual(Object.keys(migrations));
      expect(await auditHead(a)).toEqual({ seq: 0, hash: GENESIS_HASH });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two instances claiming at once get disjoint sets of events that together cover all of them', async () => {
    const d = await freshDatabase();
    const setup = openStore(d.url, { poolSize: 2 });
    const a = openStore(d.url, { poolSize: 4 });
    const b = openStore(d.url, { poolSize: 4 });
    const clock = new ManualClock('2026-03-01T09:00:00.000Z');
    try {
      await migrateToLatest(setup);
      const total = 120;
      const ids = await setup.db.transaction().execute(async (trx) => {
        const out: string[] = [];
        for (let i = 0; i < total; i++) out.push(await enqueueEvent(trx, clock, membershipRemoved(`u-${i}`)));
        return out;
      });
      const drain = async (s: Store, workerId: string) => {
        const got: string[] = [];
        for (;;) {
          const batch = await claimEvents(s, clock, workerId, 3, 60_000);
          if (batch.length === 0) return got;
          got.push(...batch.map((e) => e.id));
        }
      };
      // Three workers per instance, all claiming concurrently.
      const workers = ['a-1', 'a-2', 'a-3', 'b-1', 'b-2', 'b-3'];
      const results = await Promise.all(workers.map((w) => drain(w.startsWith('a') ? a : b, w)));
      const all = results.flat();
      expect(all).toHaveLength(total);
      expect(new Set(all).size).toBe(total);
      expect([...all].sort()).toEqual([...ids].sort());
      // Each event is leased, once, to exactly the worker that received it.
      const rows = await setup.db.selectFrom('outbox').select(['id', 'claimed_by', 'attempts']).execute();
      for (const row of rows) {
        expect(row.claimed_by).toBe(workers[results.findIndex((r) => r.includes(row.id))]);
        expect(Number(row.attempts)).toBe(1);
      }
    } finally {
      await setup.close();
      await a.close();
      await b.close();
    }
  });
});

/** A loopback port nothing listens on: bind port 0, note the port, release it. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

describe('an unreachable PostgreSQL', () => {
  it.each(['127.0.0.1', 'localhost'])(
    'at %s on a closed port: ping rejects, and the error reads as "database unavailable"',
    async (host) => {
      const port = await closedPort();
      const store = openStore(`postgres://postgres@${host}:${port}/ferry`, { poolSize: 1 });
      try {
        const err = await rejection(store.ping());
        expect(isDatabaseUnavailable(err)).toBe(true);
        expect(isUniqueViolation(err)).toBe(false);
        // Queries fail the same way (what a request handler sees and maps to 503).
        const query = await rejection(store.db.selectFrom('users').selectAll().execute());
        expect(isDatabaseUnavailable(query)).toBe(true);
      } finally {
        await store.close();
      }
    },
    10_000,
  );

  it('that accepts connections but never answers (a hung server): ping rejects instead of hanging', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket); // never answers the startup message
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const store = openStore(`postgres://postgres@127.0.0.1:${port}/ferry`, { poolSize: 1 });
    try {
      const err = await rejection(store.ping());
      expect(isDatabaseUnavailable(err)).toBe(true);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 15_000);
});
