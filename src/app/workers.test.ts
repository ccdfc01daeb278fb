import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import {
  type IdentityCenterScimServer,
  startIdentityCenterScim,
} from '../../test/support/identity-center-scim.js';
import type { AuditContext } from '../audit/actor.js';
import type { DomainEvent } from '../events.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };

describe.each(ENGINES)('the outbox worker wakes when an event is committed (%s)', (engine) => {
  let ferry: TestFerry;
  const handled: Array<{ userId: string; at: number }> = [];
  /** a slower handler after the first (as the Identity Center push is), held for these users */
  const held = new Map<string, Promise<void>>();

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      workerWake: true,
      handlers: {
        'user.deactivated': [
          async (e: DomainEvent) => {
            if (e.type === 'user.deactivated') handled.push({ userId: e.userId, at: performance.now() });
          },
          async (e: DomainEvent) => {
            if (e.type === 'user.deactivated') await held.get(e.userId);
          },
        ],
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('handles an offboarding without waiting for the poll (60 s in tests)', async () => {
    const user = await ferry.services.users.create(ctx, { userName: `wake-${engine}@contoso.example` });
    const committed = performance.now();
    await ferry.services.users.update(ctx, user.id, { active: false });
    // Handled and completed (the row marked processed after its handlers ran).
    await vi.waitFor(
      async () => {
        expect(handled.map((h) => h.userId)).toContain(user.id);
        const left = await ferry.services.store.db
          .selectFrom('outbox')
          .select('type')
          .where('type', '=', 'user.deactivated')
          .where('processed_at', 'is', null)
          .execute();
        expect(left).toEqual([]);
      },
      { timeout: 10_000, interval: 5 },
    );
    expect(handled.find((h) => h.userId === user.id)!.at - committed).toBeLessThan(10_000);
  });

  it("handles an offboarding while the previous one's slower handler still runs", async () => {
    const first = await ferry.services.users.create(ctx, { userName: `first-${engine}@contoso.example` });
    const second = await ferry.services.users.create(ctx, { userName: `second-${engine}@contoso.example` });
    let release!: () => void;
    held.set(first.id, new Promise<void>((r) => (release = r)));
    try {
      await ferry.services.users.update(ctx, first.id, { active: false });
      await vi.waitFor(() => expect(handled.map((h) => h.userId)).toContain(first.id), {
        timeout: 10_000,
        interval: 5,
      });
      // The first event's batch is still in flight (held): the second is claimed beside it.
      await ferry.services.users.update(ctx, second.id, { active: false });
      await vi.waitFor(() => expect(handled.map((h) => h.userId)).toContain(second.id), {
        timeout: 10_000,
        interval: 5,
      });
      const open = await ferry.services.store.db
        .selectFrom('outbox')
        .select('payload')
        .where('type', '=', 'user.deactivated')
        .where('processed_at', 'is', null)
        .execute();
      expect(open.map((o) => (JSON.parse(o.payload) as { userId: string }).userId)).toContain(first.id);
    } finally {
      release();
    }
    await vi.waitFor(
      async () => {
        const left = await ferry.services.store.db
          .selectFrom('outbox')
          .select('id')
          .where('type', '=', 'user.deactivated')
          .where('processed_at', 'is', null)
          .execute();
        expect(left).toEqual([]);
      },
      { timeout: 10_000, interval: 5 },
    );
    // Each handled once.
    expect(handled.filter((h) => h.userId === first.id)).toHaveLength(1);
    expect(handled.filter((h) => h.userId === second.id)).toHaveLength(1);
  });
});

describe('two instances on one PostgreSQL', () => {
  let db: TestDatabase;
  let remote: IdentityCenterScimServer;
  let a: TestFerry;
  let b: TestFerry;
  const seenByA: string[] = [];

  // One installation: both instances share the master key, as behind a load balancer.
  const keys = { masterKey: randomBytes(32).toString('base64') };

  beforeAll(async () => {
    db = await createMigratedTestDatabase('postgres');
    remote = await startIdentityCenterScim();
    a = await startTestFerry('postgres', {
      db,
      config: { keys },
      workerWake: true,
      handlers: {
        'user.deactivated': [
          async (e: DomainEvent) => {
            if (e.type === 'user.deactivated') seenByA.push(e.userId);
          },
        ],
      },
    });
    b = await startTestFerry('postgres', { db, config: { keys } });
    const res = await a.api('/api/v1/identity-center/scim', {
      method: 'PUT',
      body: JSON.stringify({ endpoint: remote.endpoint, token: remote.token }),
    });
    expect(res.status).toBe(200);
  });
  afterEach(() => {
    remote.requests.length = 0;
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await remote?.close();
    await db?.drop();
  });

  it('an event committed on B wakes the worker of A (LISTEN/NOTIFY), not its next poll', async () => {
    const user = await b.services.users.create(ctx, { userName: 'notify@contoso.example' });
    await b.services.users.update(ctx, user.id, { active: false });
    await vi.waitFor(() => expect(seenByA).toContain(user.id), { timeout: 10_000, interval: 5 });
  });

  it('both instances pushing the same people to Identity Center at once create each of them once', async () => {
    // Created on B while A's worker drains them as they commit; then both instances push all of
    // them at once (the on-demand push of each, and the outbox drains).
    const users = [];
    for (let i = 0; i < 12; i++)
      users.push(await b.services.users.create(ctx, { userName: `race-${i}@contoso.example` }));
    const userIds = users.map((u) => u.id);
    await Promise.all([
      a.services.identityCenter.sync(ctx, { userIds }),
      b.services.identityCenter.sync(ctx, { userIds }),
      b.workers.drainOnce(),
      a.services.identityCenter.sync(ctx, { userIds }),
      b.services.identityCenter.sync(ctx, { userIds }),
    ]);
    await vi.waitFor(
      async () => {
        const pending = await b.services.store.db
          .selectFrom('outbox')
          .select('id')
          .where('processed_at', 'is', null)
          .execute();
        expect(pending).toEqual([]);
      },
      { timeout: 20_000, interval: 50 },
    );
    const posts = remote.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Users'));
    expect(posts.length).toBe(users.length);
    for (const u of users)
      expect(remote.userByName(u.userName)).toMatchObject({ displayName: expect.any(String) });
    const created = await b.services.store.db
      .selectFrom('audit_events')
      .select('subject')
      .where('type', '=', 'identity-center.user-created')
      .where('subject', 'like', 'race-%')
      .execute();
    expect(created.map((c) => c.subject).sort()).toEqual(users.map((u) => u.userName).sort());
  });
});
