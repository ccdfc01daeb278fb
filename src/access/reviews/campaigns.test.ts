import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../../../test/support/web-form.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { principalOf } from '../../identity/principal-of.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'correct-horse-battery-42';

interface Item {
  id: string;
  kind: string;
  label: string;
  decision: string | null;
  outcome: string | null;
}

describe.each(ENGINES)('access reviews on %s', (engine) => {
  let ferry: TestFerry;
  // Sign-in sessions must stay valid while the test moves time: start near real time.
  const clock = new ManualClock(new Date());
  const jars: Record<string, CookieJar> = {};
  const as = async (who: string, path: string, init: RequestInit = {}) =>
    fetch(`${ferry.url}${path}`, {
      ...init,
      headers: {
        cookie: jars[who]!.header(),
        'content-type': 'application/json',
        'x-csrf-token': await csrfTokenOf(ferry.url, jars[who]!),
      },
    });
  let seq = 0;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  async function world(removeUnreviewed: boolean) {
    const s = ferry.services;
    const n = ++seq;
    const devs = await s.groups.create(ctx, { displayName: `R-Devs-${n}` });
    const auditors = await s.groups.create(ctx, { displayName: `R-Auditors-${n}` });
    const user = async (name: string, ...groups: Array<{ id: string }>) => {
      const u = await s.users.create(ctx, { userName: `${name}-${n}@contoso.example`, password: PASSWORD });
      for (const g of groups) await s.groups.setMembership(ctx, g.id, u.id, true);
      jars[`${name}-${n}`] = new CookieJar();
      await signInWithPassword(jars[`${name}-${n}`]!, ferry.url, `${name}-${n}@contoso.example`, PASSWORD);
      return u;
    };
    const keep = await user('keep', devs);
    const drop = await user('drop', devs);
    const idle = await user('idle', devs);
    const reviewer = await user('reviewer', auditors, devs); // reviews devs, and is one
    await user('outsider');
    const res = await ferry.api('/api/v1/reviews', {
      method: 'POST',
      body: JSON.stringify({
        name: `Q${n} developers`,
        groups: [devs.displayName],
        reviewerGroups: [auditors.displayName],
        deadline: '14d',
        removeUnreviewed,
      }),
    });
    expect(res.status).toBe(201);
    const campaign = (await res.json()) as { id: string; progress: Record<string, number>; deadline: string };
    const items = async (who?: string) => {
      const r = who
        ? await as(who, `/api/v1/reviews/${campaign.id}/items`)
        : await ferry.api(`/api/v1/reviews/${campaign.id}/items`);
      return ((await r.json()) as { items: Item[] }).items;
    };
    const itemOf = async (userName: string) => (await items()).find((i) => i.label.startsWith(userName))!;
    const decide = async (who: string, item: Item, decision: 'approve' | 'deny', reason?: string) =>
      as(who, `/api/v1/reviews/${campaign.id}/items/${item.id}/decision`, {
        method: 'POST',
        body: JSON.stringify({ decision, ...(reason ? { reason } : {}) }),
      });
    const members = async () =>
      (await s.groups.get(devs.id)).members
        .map((m) => (m as { userName?: string; value?: string }).userName ?? '')
        .sort();
    return { s, n, devs, keep, drop, idle, reviewer, campaign, items, itemOf, decide, members };
  }

  it('reviewers decide; at the deadline denied and unreviewed members are removed (removeUnreviewed), approved kept; audited', async () => {
    const w = await world(true);
    expect(w.campaign.progress).toEqual({ total: 4, approved: 0, denied: 0, unreviewed: 4, removed: 0 });
    const rv = `reviewer-${w.n}`;
    expect((await w.decide(rv, await w.itemOf(w.keep.userName), 'approve')).status).toBe(200);
    expect((await w.decide(rv, await w.itemOf(w.drop.userName), 'deny', 'left the team')).status).toBe(200);
    // Nobody reviews their own access; non-reviewers can't see or decide.
    expect((await w.decide(rv, await w.itemOf(w.reviewer.userName), 'approve')).status).toBe(403);
    expect((await w.decide(`outsider-${w.n}`, await w.itemOf(w.idle.userName), 'approve')).status).toBe(403);
    expect((await as(`outsider-${w.n}`, `/api/v1/reviews/${w.campaign.id}`)).status).toBe(403);
    const progress = (await (await as(rv, `/api/v1/reviews/${w.campaign.id}`)).json()) as {
      progress: Record<string, number>;
    };
    expect(progress.progress).toEqual({ total: 4, approved: 1, denied: 1, unreviewed: 2, removed: 0 });

    clock.advance(14 * 86_400_000 - 1000);
    await ferry.workers.drainOnce();
    expect(await ferry.services.reviews.closeDue()).toBe(0);
    clock.advance(1000);
    expect(await ferry.services.reviews.closeDue()).toBe(1);
    expect(await ferry.services.reviews.closeDue()).toBe(0);
    await ferry.workers.drainOnce();

    const items = await w.items();
    expect(Object.fromEntries(items.map((i) => [i.label.split(' ')[0], [i.decision, i.outcome]]))).toEqual({
      [w.keep.userName]: ['approve', 'kept'],
      [w.drop.userName]: ['deny', 'removed'],
      [w.idle.userName]: [null, 'removed'],
      [w.reviewer.userName]: [null, 'removed'],
    });
    const left = await w.s.groups.get(w.devs.id);
    expect(left.members.map((m) => m.userName ?? m.id)).toEqual([w.keep.userName]);
    // Decisions after the close are refused (the sign-in sessions are long gone: ask the service).
    const reviewer = await principalOf(w.s.store.db, w.reviewer.id, null);
    await expect(
      w.s.reviews.decide(ctx, reviewer, w.campaign.id, items[0]!.id, 'deny', null),
    ).rejects.toThrow(/is closed/);
    const closed = (await (await ferry.api('/api/v1/audit/events?type=review.campaign.closed')).json()) as {
      items: Array<{ actor: { name: string }; data: Record<string, unknown> }>;
    };
    expect(closed.items.find((e) => e.data.campaignId === w.campaign.id)).toMatchObject({
      actor: { name: 'access-review-scheduler' },
      data: { total: 4, approved: 1, denied: 1, unreviewed: 2, removed: 3 },
    });
    const decided = (await (await ferry.api('/api/v1/audit/events?type=review.item.decided')).json()) as {
      items: Array<{ actor: { name: string }; data: { reason: string | null } }>;
    };
    expect(decided.items.map((e) => e.data.reason)).toContain('left the team');
  });

  it('an admin closes early; with removeUnreviewed off only denied items go; eligibilities are reviewed too', async () => {
    const w = await world(false);
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
    await s.accounts.upsertRole(ctx, '123456789012', { name: 'Administrator', maxSessionDuration: 3600 });
    const { eligibility } = await s.eligibilities.set(
      ctx,
      { type: 'group', id: w.devs.id, name: w.devs.displayName },
      '123456789012',
      'Administrator',
      {
        maxDuration: 3600,
        requireJustification: false,
        requireTicket: false,
        requireMfa: false,
        approvers: [],
        approvalsRequired: 0,
        autoApprove: null,
      },
    );
    const res = await ferry.api('/api/v1/reviews', {
      method: 'POST',
      body: JSON.stringify({
        name: `elig-${w.n}`,
        eligibilities: true,
        reviewerUsers: [w.reviewer.userName],
        deadline: '7d',
      }),
    });
    const campaign = (await res.json()) as { id: string };
    const items = (
      (await (await ferry.api(`/api/v1/reviews/${campaign.id}/items`)).json()) as { items: Item[] }
    ).items;
    const mine = items.find((i) => i.kind === 'eligibility' && i.label.includes(w.devs.displayName))!;
    expect(mine.label).toBe(`group ${w.devs.displayName} eligible for aws:123456789012/Administrator`);
    const rv = `reviewer-${w.n}`;
    expect(
      (
        await as(rv, `/api/v1/reviews/${campaign.id}/items/${mine.id}/decision`, {
          method: 'POST',
          body: JSON.stringify({ decision: 'deny' }),
        })
      ).status,
    ).toBe(200);
    expect((await w.decide(rv, await w.itemOf(w.drop.userName), 'deny')).status).toBe(200);
    expect((await ferry.api(`/api/v1/reviews/${w.campaign.id}/close`, { method: 'POST' })).status).toBe(200);
    expect((await ferry.api(`/api/v1/reviews/${w.campaign.id}/close`, { method: 'POST' })).status).toBe(409);
    expect((await ferry.api(`/api/v1/reviews/${campaign.id}/close`, { method: 'POST' })).status).toBe(200);
    await ferry.workers.drainOnce();
    const left = await w.s.groups.get(w.devs.id);
    expect(left.members.map((m) => m.userName).sort()).toEqual(
      [w.idle.userName, w.keep.userName, w.reviewer.userName].sort(),
    );
    await expect(s.eligibilities.get(eligibility.id)).rejects.toThrow(/not found/);
    expect(
      (
        await ferry.api('/api/v1/reviews', {
          method: 'POST',
          body: JSON.stringify({
            name: 'x',
            groups: [],
            deadline: '7d',
            reviewerUsers: [w.reviewer.userName],
          }),
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await ferry.api('/api/v1/reviews', {
          method: 'POST',
          body: JSON.stringify({
            name: 'x',
            eligibilities: true,
            deadline: 'soon',
            reviewerUsers: [w.reviewer.userName],
          }),
        })
      ).status,
    ).toBe(400);
  });
});
