import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../../../test/support/web-form.js';
import type { AuditContext } from '../../audit/actor.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'correct-horse-battery-42';

/**
 * The admin console reads every campaign (GET /api/v1/reviews?all=true) and any campaign's items when the
 * person holds reviews:read, not only those they review; everyone else keeps seeing only their own.
 */
describe.each(ENGINES)('access reviews read by admins on %s', (engine) => {
  let ferry: TestFerry;
  let campaignId: string;
  const jars: Record<string, CookieJar> = {};
  const as = (who: string, path: string) =>
    fetch(`${ferry.url}${path}`, { headers: { cookie: jars[who]!.header() } });

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    const devs = await s.groups.create(ctx, { displayName: 'Review-Devs' });
    const reviewers = await s.groups.create(ctx, { displayName: 'Review-Reviewers' });
    for (const [user, group, role] of [
      ['auditor', 'Auditors', 'auditor'],
      ['helpdesk', 'Helpdesk', 'helpdesk'],
    ] as const) {
      const g = await s.groups.create(ctx, { displayName: group });
      await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, role);
      const u = await s.users.create(ctx, { userName: `${user}@contoso.example`, password: PASSWORD });
      await s.groups.setMembership(ctx, g.id, u.id, true);
    }
    const dev = await s.users.create(ctx, { userName: 'dev@contoso.example', password: PASSWORD });
    await s.groups.setMembership(ctx, devs.id, dev.id, true);
    const reviewer = await s.users.create(ctx, { userName: 'reviewer@contoso.example', password: PASSWORD });
    await s.groups.setMembership(ctx, reviewers.id, reviewer.id, true);
    await s.users.create(ctx, { userName: 'plain@contoso.example', password: PASSWORD });
    for (const user of ['auditor', 'helpdesk', 'reviewer', 'plain']) {
      jars[user] = new CookieJar();
      expect(
        (await signInWithPassword(jars[user]!, ferry.url, `${user}@contoso.example`, PASSWORD)).status,
      ).toBe(303);
      await csrfTokenOf(ferry.url, jars[user]!);
    }
    const res = await ferry.api('/api/v1/reviews', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Q4 developers',
        groups: ['Review-Devs'],
        reviewerGroups: ['Review-Reviewers'],
        deadline: '14d',
      }),
    });
    expect(res.status).toBe(201);
    campaignId = ((await res.json()) as { id: string }).id;
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const names = async (res: Response) =>
    ((await res.json()) as { items: Array<{ name: string }> }).items.map((c) => c.name);

  it('a person holding reviews:read sees every campaign with all=true, and its items', async () => {
    const all = await as('auditor', '/api/v1/reviews?all=true');
    expect(all.status).toBe(200);
    expect(await names(all)).toEqual(['Q4 developers']);
    // Without all=true: the campaigns they review (none), as before.
    const mine = await as('auditor', '/api/v1/reviews');
    expect(await names(mine)).toEqual([]);
    const items = await as('auditor', `/api/v1/reviews/${campaignId}/items`);
    expect(items.status).toBe(200);
    const labels = ((await items.json()) as { items: Array<{ label: string }> }).items.map((i) => i.label);
    expect(labels.some((l) => l.startsWith('dev@contoso.example'))).toBe(true);
  });

  it('a reviewer keeps reading their own campaign; all=true without reviews:read is a 403 problem naming the roles that give it', async () => {
    expect(await names(await as('reviewer', '/api/v1/reviews'))).toEqual(['Q4 developers']);
    expect((await as('reviewer', `/api/v1/reviews/${campaignId}/items`)).status).toBe(200);
    for (const who of ['reviewer', 'helpdesk', 'plain']) {
      const res = await as(who, '/api/v1/reviews?all=true');
      expect(res.status, who).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as { type: string; permission: string; detail: string };
      expect(problem.type).toMatch(/admin-role-required$/);
      expect(problem.permission).toBe('reviews:read');
      expect(problem.detail).toContain('Auditor');
    }
  });

  it('a person who neither reviews the campaign nor holds reviews:read cannot read its items', async () => {
    for (const who of ['helpdesk', 'plain']) {
      const res = await as(who, `/api/v1/reviews/${campaignId}/items`);
      expect(res.status, who).toBe(403);
      expect(((await res.json()) as { detail: string }).detail).toContain('not a reviewer of Q4 developers');
    }
    expect((await as('helpdesk', `/api/v1/reviews/${campaignId}`)).status).toBe(403);
  });

  it('rejects a malformed or unknown query with a 400 problem, and a signed-out caller with 401', async () => {
    for (const query of ['all=maybe', 'everything=1']) {
      const res = await as('auditor', `/api/v1/reviews?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    const anonymous = await fetch(`${ferry.url}/api/v1/reviews?all=true`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('an admin API token sees every campaign with or without all=true; a token without reviews:read is refused', async () => {
    expect(await names(await ferry.api('/api/v1/reviews?all=true'))).toEqual(['Q4 developers']);
    expect(await names(await ferry.api('/api/v1/reviews'))).toEqual(['Q4 developers']);
    const made = await ferry.api('/api/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'users-only', scopes: ['users:read'] }),
    });
    expect(made.status).toBe(201);
    const { token } = (await made.json()) as { token: string };
    const res = await fetch(`${ferry.url}/api/v1/reviews?all=true`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { type: string }).type).toMatch(/insufficient-scope$/);
  });
});
