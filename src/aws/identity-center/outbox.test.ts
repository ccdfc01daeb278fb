import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import {
  type IdentityCenterScimServer,
  startIdentityCenterScim,
} from '../../../test/support/identity-center-scim.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };

/**
 * The continuous push: Ferry's outbox handlers carry each directory change to IAM Identity Center
 * (offboarding included), configured and driven through the admin API.
 */
describe.each(ENGINES)('Identity Center push through the outbox and the admin API (%s)', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let remote: IdentityCenterScimServer;
  let seq = 0;

  beforeAll(async () => {
    remote = await startIdentityCenterScim();
    ferry = await startTestFerry(engine, {
      clock,
      config: { identityCenter: { maxAttempts: 3, baseBackoff: '5ms', maxBackoff: '20ms' } },
    });
    const res = await ferry.api('/api/v1/identity-center/scim', {
      method: 'PUT',
      body: JSON.stringify({ endpoint: remote.endpoint, token: remote.token }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).not.toHaveProperty('token');
  });
  afterAll(async () => {
    await ferry?.close();
    await remote?.close();
  });

  const drain = () => ferry.workers.drainOnce();
  const newUser = () =>
    ferry.services.users.create(ctx, {
      userName: `person${++seq}@contoso.example`,
      displayName: `Person ${seq}`,
    });

  it('pushes creates, updates, memberships, deactivation and deletion as their events are handled', async () => {
    const ann = await newUser();
    const bob = await newUser();
    await drain();
    expect(remote.userByName(ann.userName)).toMatchObject({ displayName: ann.displayName, active: true });

    await ferry.services.users.update(ctx, ann.id, { displayName: 'Ann Renamed' });
    const team = await ferry.services.groups.create(ctx, { displayName: `Team ${seq}` });
    await ferry.services.groups.setMembership(ctx, team.id, ann.id, true);
    await ferry.services.groups.setMembership(ctx, team.id, bob.id, true);
    await drain();
    expect(remote.userByName(ann.userName)!.displayName).toBe('Ann Renamed');
    expect(remote.memberNames(team.displayName)).toEqual([ann.userName, bob.userName].sort());

    await ferry.services.groups.setMembership(ctx, team.id, bob.id, false);
    await drain();
    expect(remote.memberNames(team.displayName)).toEqual([ann.userName]);

    // A rename (an admin, or Entra ID by SCIM) is pushed as a PatchGroup replace of displayName.
    await ferry.services.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('groups')
        .selectAll()
        .where('id', '=', team.id)
        .executeTakeFirstOrThrow();
      await ferry.services.groups.updateIn(trx, ctx, row, { displayName: `${team.displayName} renamed` });
    });
    await drain();
    expect(remote.groupByName(team.displayName)).toBeUndefined();
    expect(remote.memberNames(`${team.displayName} renamed`)).toEqual([ann.userName]);

    // Offboarding: deactivation reaches Identity Center as active=false, audited as its own step.
    await ferry.services.users.update(ctx, ann.id, { active: false });
    await drain();
    expect(remote.userByName(ann.userName)!.active).toBe(false);
    const audit = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'actor'])
      .where('subject', '=', ann.userName)
      .where('type', 'like', 'identity-center.%')
      .orderBy('seq')
      .execute();
    expect(audit.map((a) => a.type)).toEqual([
      'identity-center.user-created',
      'identity-center.user-updated',
      'identity-center.user-deactivated',
    ]);
    expect(JSON.parse(audit[2]!.actor)).toEqual({ type: 'system', name: 'identity-center-push' });

    await ferry.services.users.delete(ctx, bob.id);
    await ferry.services.groups.delete(ctx, team.id);
    await drain();
    expect(remote.userByName(bob.userName)).toBeUndefined();
    expect(remote.groupByName(`${team.displayName} renamed`)).toBeUndefined();
    expect(remote.requests.filter((r) => r.status >= 400)).toEqual([]);
    const pending = await ferry.services.store.db
      .selectFrom('outbox')
      .select('type')
      .where('processed_at', 'is', null)
      .execute();
    expect(pending).toEqual([]);
  });

  it('leaves an event in the outbox when Identity Center keeps failing, and pushes it on retry', async () => {
    remote.inject({ method: 'POST', path: /^\/Users$/, status: 500, times: 3 });
    const carl = await newUser();
    await drain();
    expect(remote.userByName(carl.userName)).toBeUndefined();
    const row = await ferry.services.store.db
      .selectFrom('outbox')
      .select(['processed_at', 'last_error'])
      .where('type', '=', 'user.created')
      .where('payload', 'like', `%${carl.id}%`)
      .executeTakeFirstOrThrow();
    expect(row.processed_at).toBeNull();
    expect(row.last_error).toMatch(/POST \/Users: 500/);

    clock.advance(10 * 60_000); // past the outbox's backoff
    await drain();
    expect(remote.userByName(carl.userName)).toMatchObject({ active: true });
  });

  it('does not hold up the outbox for a long Retry-After: the event fails now and is pushed later', async () => {
    remote.inject({ method: 'POST', path: /^\/Users$/, status: 429, retryAfter: '120' });
    const erin = await newUser();
    const started = performance.now();
    await drain();
    expect(performance.now() - started).toBeLessThan(5_000);
    const row = await ferry.services.store.db
      .selectFrom('outbox')
      .select(['processed_at', 'last_error'])
      .where('type', '=', 'user.created')
      .where('payload', 'like', `%${erin.id}%`)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ processed_at: null, last_error: expect.stringMatching(/429/) });
    clock.advance(10 * 60_000);
    await drain();
    expect(remote.userByName(erin.userName)).toBeDefined();
  });

  it('shows a dry-run diff and streams an on-demand push through the admin API', async () => {
    // Changes made while nothing was configured are not pushed; a full push catches up.
    expect((await ferry.api('/api/v1/identity-center/scim', { method: 'DELETE' })).status).toBe(204);
    const dana = await newUser();
    await drain();
    expect(remote.userByName(dana.userName)).toBeUndefined();
    const bad = await ferry.api('/api/v1/identity-center/scim/push', { method: 'POST' });
    expect(bad.status).toBe(404);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const clear = await ferry.api('/api/v1/identity-center/scim', {
      method: 'PUT',
      body: JSON.stringify({ endpoint: 'http://scim.example.com/scim/v2', token: remote.token }),
    });
    expect(clear.status).toBe(400);
    expect(
      (
        await ferry.api('/api/v1/identity-center/scim', {
          method: 'PUT',
          body: JSON.stringify({ endpoint: remote.endpoint, token: remote.token }),
        })
      ).status,
    ).toBe(200);

    const plan = (await (await ferry.api('/api/v1/identity-center/scim/plan')).json()) as {
      changes: Array<{ action: string; name: string }>;
      summary: { users: { create: number } };
    };
    expect(plan.changes).toContainEqual(expect.objectContaining({ action: 'create', name: dana.userName }));
    expect(remote.userByName(dana.userName)).toBeUndefined();

    const res = await ferry.api('/api/v1/identity-center/scim/push', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; done?: number; total?: number });
    expect(lines[0]).toMatchObject({ type: 'plan', total: plan.changes.length });
    expect(lines.filter((l) => l.type === 'progress').map((l) => l.done)).toEqual(
      plan.changes.map((_, i) => i + 1),
    );
    expect(lines.at(-1)).toMatchObject({ type: 'result', applied: plan.changes.length });
    expect(remote.userByName(dana.userName)).toBeDefined();
    const after = (await (await ferry.api('/api/v1/identity-center/scim/plan')).json()) as {
      changes: unknown[];
    };
    expect(after.changes).toEqual([]);
    expect((await ferry.api('/api/v1/identity-center/scim/plan', { auth: false })).status).toBe(401);
  });
});
