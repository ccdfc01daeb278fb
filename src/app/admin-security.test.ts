import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, getPage, inputValue, postForm } from '../../test/support/web-form.js';
import type { AuditContext } from '../audit/actor.js';
import { ManualClock } from '../clock.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const ACCOUNT = '123456789012';

interface Activation {
  id: string;
  state: string;
  expiresAt: string | null;
  approvals: unknown[];
}
interface AuditItem {
  type: string;
  subject: string;
  actor: { type: string; name?: string };
  data: Record<string, unknown>;
}

describe.each(ENGINES)('admin security on %s', (engine) => {
  let ferry: TestFerry;
  const clock = new ManualClock(new Date());
  const people: Record<string, { jar: CookieJar; csrf: string }> = {};
  const as = (who: string, path: string, init: RequestInit = {}) =>
    fetch(`${ferry.url}${path}`, {
      ...init,
      headers: {
        cookie: people[who]!.jar.header(),
        'x-csrf-token': people[who]!.csrf,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
    });
  const withToken = (token: string, path: string, init: RequestInit = {}) =>
    fetch(`${ferry.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
    });
  /** a person with a live session whose sign-in used these methods */
  const signIn = async (who: string, amr: string[] = ['pwd']) => {
    const s = ferry.services;
    const user = await s.users.get(`${who}@contoso.example`);
    const { token } = await s.sessions.start(s.store.db, { userId: user.id, state: 'active', amr });
    const jar = new CookieJar();
    jar.cookies.set(s.config.sessions.cookieName, token);
    people[who] = { jar, csrf: await csrfTokenOf(ferry.url, jar) };
  };
  const user = async (name: string, groups: string[] = []) => {
    const s = ferry.services;
    const u = await s.users.create(ctx, { userName: `${name}@contoso.example` });
    for (const g of groups) {
      const group = await s.groups.get(g).catch(() => s.groups.create(ctx, { displayName: g }));
      await s.groups.setMembership(ctx, group.id, u.id, true);
    }
    await signIn(name);
    return u;
  };
  const request = async (who: string, body: Record<string, unknown>) => {
    const res = await as(who, '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ durationSeconds: 3600, ...body }),
    });
    expect(res.status, JSON.stringify(await res.clone().json())).toBe(201);
    return (await res.json()) as Activation;
  };
  const refusals = async () =>
    (
      (await (await ferry.api('/api/v1/audit/events?type=admin.refused&limit=1000')).json()) as {
        items: AuditItem[];
      }
    ).items;
  const refusalCount = async (outcome: string) => {
    const metric = await ferry.services.metrics.registry.getSingleMetric('ferry_admin_refusals_total')!.get();
    return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Prod' });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Administrator', maxSessionDuration: 3600 });
    for (const [group, role] of [
      ['Approvers', 'approver'],
      ['Helpdesk', 'helpdesk'],
      ['Ferry-Admins', 'ferry-administrator'],
    ] as const) {
      const g = await s.groups.create(ctx, { displayName: group });
      await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, role);
    }
    await user('dev', ['Devs']);
    await user('dev2', ['Devs']);
    await user('lead', ['Leads']); // named through Leads, holds no admin role
    await user('lead2', ['Leads']);
    await user('lead-approver', ['Leads', 'Approvers']); // named, and holds approvals:decide
    await user('outsider'); // neither
    await user('approver-only', ['Approvers']); // holds approvals:decide, named nowhere
    await user('self', ['Devs', 'Leads', 'Ferry-Admins']); // requester who is also named and an admin
    await user('dev3', ['Devs']); // requester, named nowhere
    await signIn('self', ['pwd', 'hwk', 'mfa']);
    const rules = { maxDuration: 7200, approverGroups: ['Leads'] };
    await ferry.api('/api/v1/pim/eligibilities', {
      method: 'POST',
      body: JSON.stringify({ group: 'Devs', account: 'Prod', role: 'Administrator', ...rules }),
    });
    await ferry.api('/api/v1/pim/eligibilities', {
      method: 'POST',
      body: JSON.stringify({ group: 'Devs', target: 'admin:helpdesk', ...rules }),
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  describe('answering requests (approvals:decide)', () => {
    it('lets a named approver answer without an admin role, and refuses (and audits) anyone else', async () => {
      const a = await request('dev', { account: 'Prod', role: 'Administrator' });
      // neither named nor holding approvals:decide: refused by the guard, with the permission named
      const outsider = await as('outsider', `/api/v1/pim/activations/${a.id}/approve`, {
        method: 'POST',
        body: '{}',
      });
      expect(outsider.status).toBe(403);
      expect(await outsider.json()).toMatchObject({
        type: 'https://ferry.dev/problems/admin-role-required',
        permission: 'approvals:decide',
      });
      const denyByOutsider = await as('outsider', `/api/v1/pim/activations/${a.id}/deny`, {
        method: 'POST',
        body: '{}',
      });
      expect(denyByOutsider.status).toBe(403);
      // holding approvals:decide is not being named: the request's own approvers decide it
      const notNamed = await as('approver-only', `/api/v1/pim/activations/${a.id}/approve`, {
        method: 'POST',
        body: '{}',
      });
      expect(notNamed.status).toBe(403);
      expect((await notNamed.json()) as { detail: string }).toMatchObject({
        detail: expect.stringContaining('not an approver'),
      });
      // an admin API token is not a person
      const token = await ferry.api(`/api/v1/pim/activations/${a.id}/approve`, {
        method: 'POST',
        body: '{}',
      });
      expect(token.status).toBe(401);
      expect((await ferry.services.activations.get(a.id)).state).toBe('requested');
      // the named approver (no admin role at all) answers: the portal and webhook-link flow still works
      const ok = await as('lead', `/api/v1/pim/activations/${a.id}/approve`, { method: 'POST', body: '{}' });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as Activation).state).toBe('active');
      const events = (await refusals()).filter(
        (e) => e.subject === 'POST /api/v1/pim/activations/:id/approve',
      );
      expect(events.map((e) => e.actor.name)).toContain('outsider@contoso.example');
      expect(events.find((e) => e.actor.name === 'outsider@contoso.example')?.data).toMatchObject({
        permission: 'approvals:decide',
        reason: 'admin-role-required',
      });
      await ferry.api(`/api/v1/pim/activations/${a.id}/revoke`, { method: 'POST', body: '{}' });
    });

    it('lets a named approver answer a request for an admin role too (its approvers were chosen by an admin)', async () => {
      const a = await request('dev2', { target: 'admin:helpdesk' });
      const refused = await as('approver-only', `/api/v1/pim/activations/${a.id}/approve`, {
        method: 'POST',
        body: '{}',
      });
      expect(refused.status).toBe(403);
      expect((await ferry.services.activations.get(a.id)).state).toBe('requested');
      const ok = await as('lead2', `/api/v1/pim/activations/${a.id}/approve`, { method: 'POST', body: '{}' });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as Activation).state).toBe('active');
    });

    it('never lets a person answer their own request, whatever roles they hold', async () => {
      const a = await request('self', { account: 'Prod', role: 'Administrator' });
      for (const path of ['approve', 'deny']) {
        const res = await as('self', `/api/v1/pim/activations/${a.id}/${path}`, {
          method: 'POST',
          body: '{}',
        });
        expect(res.status, path).toBe(403);
        expect(((await res.json()) as { detail: string }).detail).toContain('their own request');
      }
      expect((await ferry.services.activations.get(a.id)).state).toBe('requested');
      await as('self', `/api/v1/pim/activations/${a.id}/cancel`, { method: 'POST', body: '{}' });
      // a requester named nowhere is told the same, not that they lack a role
      const b = await request('dev3', { account: 'Prod', role: 'Administrator' });
      const res = await as('dev3', `/api/v1/pim/activations/${b.id}/approve`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { detail: string }).detail).toContain('their own request');
      expect((await ferry.services.activations.get(b.id)).state).toBe('requested');
      // the approval page's form (the notification's link) refuses the same, and both are audited
      const jar = people.dev3!.jar;
      const form = await getPage(ferry.url, `/pim/activations/${b.id}`, jar);
      expect(form.status).toBe(200);
      const page = await postForm(ferry.url, `/pim/activations/${b.id}/approve`, jar, {
        csrf: inputValue(form.body, 'csrf'),
        reason: 'mine',
      });
      expect(page.status).toBe(403);
      expect(page.body).toContain('their own request');
      expect((await ferry.services.activations.get(b.id)).state).toBe('requested');
      const dev3 = (await refusals()).filter((e) => e.actor.name === 'dev3@contoso.example');
      expect(dev3.map((e) => [e.subject, e.data.reason])).toEqual(
        expect.arrayContaining([
          ['POST /api/v1/pim/activations/:id/approve', 'not-allowed-to-answer'],
          ['POST /pim/activations/:id/:action', 'not-allowed-to-answer'],
        ]),
      );
      await as('dev3', `/api/v1/pim/activations/${b.id}/cancel`, { method: 'POST', body: '{}' });
    });

    it('approves once under a burst of concurrent approvals, by one approver or by several', async () => {
      for (const approvers of [['lead'], ['lead', 'lead2', 'lead-approver']]) {
        const a = await request('dev', { account: 'Prod', role: 'Administrator', durationSeconds: 900 });
        const burst = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            as(approvers[i % approvers.length]!, `/api/v1/pim/activations/${a.id}/approve`, {
              method: 'POST',
              body: '{}',
            }),
          ),
        );
        const statuses = burst.map((r) => r.status).sort();
        expect(statuses.filter((s) => s === 200)).toHaveLength(1);
        expect(statuses.filter((s) => s !== 200).every((s) => s === 409)).toBe(true);
        const after = await ferry.services.activations.get(a.id);
        expect(after.state).toBe('active');
        expect(after.approvals).toHaveLength(1);
        const activated = (
          (await (await ferry.api('/api/v1/audit/events?type=pim.activation.active&limit=1000')).json()) as {
            items: AuditItem[];
          }
        ).items.filter((e) => e.data.activationId === a.id);
        expect(activated).toHaveLength(1);
        await ferry.api(`/api/v1/pim/activations/${a.id}/revoke`, { method: 'POST', body: '{}' });
      }
    });
  });

  describe('access review decisions (approvals:decide, or a named reviewer)', () => {
    it('lets a reviewer decide, never on their own access, and refuses (and audits) anyone else', async () => {
      const made = await ferry.api('/api/v1/reviews', {
        method: 'POST',
        body: JSON.stringify({
          name: 'devs-q4',
          groups: ['Devs'],
          reviewerGroups: ['Leads'],
          deadline: '14d',
        }),
      });
      expect(made.status).toBe(201);
      const campaign = (await made.json()) as { id: string };
      const { items } = (await (await ferry.api(`/api/v1/reviews/${campaign.id}/items`)).json()) as {
        items: Array<{ id: string; label: string }>;
      };
      const itemOf = (who: string) => items.find((i) => i.label.startsWith(`${who}@`))!.id;
      const decide = (who: string, item: string) =>
        as(who, `/api/v1/reviews/${campaign.id}/items/${item}/decision`, {
          method: 'POST',
          body: JSON.stringify({ decision: 'approve' }),
        });
      const outsider = await decide('outsider', itemOf('dev'));
      expect(outsider.status).toBe(403);
      expect(await outsider.json()).toMatchObject({
        type: 'https://ferry.dev/problems/admin-role-required',
        permission: 'approvals:decide',
      });
      const own = await decide('self', itemOf('self'));
      expect(own.status).toBe(403);
      expect(((await own.json()) as { detail: string }).detail).toContain('own access');
      expect((await decide('lead', itemOf('dev'))).status).toBe(200);
      const events = (await refusals()).filter(
        (e) => e.subject === 'POST /api/v1/reviews/:id/items/:item/decision',
      );
      expect(events).toMatchObject([
        { actor: { name: 'outsider@contoso.example' }, data: { permission: 'approvals:decide' } },
      ]);
    });
  });

  describe('tokens a person makes', () => {
    it('end no later than the activation their maker holds the role through, and lose it when it ends early', async () => {
      const s = ferry.services;
      const u = await s.users.create(ctx, { userName: 'jit-admin@contoso.example' });
      const jit = await s.groups.create(ctx, { displayName: 'JIT-Admins' });
      await s.groups.setMembership(ctx, jit.id, u.id, true);
      await ferry.api('/api/v1/pim/eligibilities', {
        method: 'POST',
        body: JSON.stringify({ group: 'JIT-Admins', target: 'admin:ferry-administrator', maxDuration: 3600 }),
      });
      await signIn('jit-admin', ['pwd', 'hwk', 'mfa']);
      // no role yet: no token
      const before = await as('jit-admin', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'too-early', scopes: ['users:read'] }),
      });
      expect(before.status).toBe(403);
      const activation = await request('jit-admin', {
        target: 'admin:ferry-administrator',
        durationSeconds: 1800,
      });
      expect(activation.state).toBe('active');
      const far = new Date(clock.now().getTime() + 30 * 86400_000).toISOString();
      const made = await as('jit-admin', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'jit-automation', expiresAt: far }),
      });
      expect(made.status).toBe(201);
      const { token, apiToken } = (await made.json()) as {
        token: string;
        apiToken: { expiresAt: string; scopes: string[] };
      };
      expect(apiToken.expiresAt).toBe(activation.expiresAt);
      // no expiry asked: capped just the same
      const unasked = (await (
        await as('jit-admin', '/api/v1/tokens', {
          method: 'POST',
          body: JSON.stringify({ name: 'jit-no-expiry', scopes: ['audit:read'] }),
        })
      ).json()) as { token: string; apiToken: { expiresAt: string } };
      expect(unasked.apiToken.expiresAt).toBe(activation.expiresAt);
      // a token it makes carries its creator along, and its cap
      const child = await withToken(token, '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'jit-child', scopes: ['users:read'] }),
      });
      expect(child.status).toBe(201);
      const childBody = (await child.json()) as { token: string; apiToken: { expiresAt: string } };
      expect(childBody.apiToken.expiresAt).toBe(activation.expiresAt);
      expect((await withToken(token, '/api/v1/users')).status).toBe(200);
      expect((await withToken(childBody.token, '/api/v1/users')).status).toBe(200);

      // the activation is ended early: every token bound to its maker loses what it gave
      const revoked = await ferry.api(`/api/v1/pim/activations/${activation.id}/revoke`, {
        method: 'POST',
        body: JSON.stringify({ reason: 'done' }),
      });
      expect(revoked.status).toBe(200);
      for (const t of [token, childBody.token, unasked.token]) {
        const path = t === unasked.token ? '/api/v1/audit/events?limit=1' : '/api/v1/users';
        const res = await withToken(t, path);
        expect(res.status, path).toBe(403);
        expect(await res.json()).toMatchObject({
          type: 'https://ferry.dev/problems/token-creator-lacks-permission',
        });
      }
      // ...nor can it mint a token to get around that
      const mint = await withToken(token, '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'escape', scopes: ['users:read'] }),
      });
      expect(mint.status).toBe(403);
      const events = (await refusals()).filter((e) => e.actor.name === 'jit-automation');
      expect(events[0]?.data).toMatchObject({
        reason: 'token-creator-lacks-permission',
        permission: 'users:read',
      });
    });

    it('follow a standing role too: removed from the group, the token loses the role; a disabled maker, everything', async () => {
      const s = ferry.services;
      const u = await s.users.create(ctx, { userName: 'standing@contoso.example' });
      const helpdesk = await s.groups.get('Helpdesk');
      await s.groups.setMembership(ctx, helpdesk.id, u.id, true);
      await signIn('standing');
      const made = await as('standing', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'hd' }),
      });
      // `*` asks for every permission: a helpdesk person holds only theirs
      expect(made.status).toBe(403);
      // (tokens:write is not a helpdesk permission at all, so a helpdesk person makes no tokens)
      const g = await s.groups.create(ctx, { displayName: 'Token-Makers' });
      await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, 'access-administrator');
      await s.groups.setMembership(ctx, g.id, u.id, true);
      await s.adminRoles.add(ctx, { type: 'user', id: u.id, name: u.userName }, 'auditor');
      const scoped = await as('standing', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'standing-token', scopes: ['groups:write', 'audit:read'] }),
      });
      // access-administrator lacks tokens:write: refused
      expect(scoped.status).toBe(403);
      await s.adminRoles.add(ctx, { type: 'user', id: u.id, name: u.userName }, 'ferry-administrator');
      await signIn('standing', ['pwd', 'hwk', 'mfa']);
      const ok = await as('standing', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'standing-token', scopes: ['groups:write', 'audit:read'] }),
      });
      expect(ok.status).toBe(201);
      const { token, apiToken } = (await ok.json()) as {
        token: string;
        apiToken: { expiresAt: string | null };
      };
      expect(apiToken.expiresAt).toBeNull();
      const addGroup = () =>
        withToken(token, '/api/v1/groups', {
          method: 'POST',
          body: JSON.stringify({ displayName: `g-${Math.random().toString(36).slice(2)}` }),
        });
      expect((await addGroup()).status).toBe(201);
      const ferryAdmin = (await s.adminRoles.list({ role: 'ferry-administrator' })).find(
        (a) => a.principalId === u.id,
      )!;
      await s.adminRoles.remove(ctx, ferryAdmin.id);
      // still an Access Administrator through Token-Makers: groups:write holds
      expect((await addGroup()).status).toBe(201);
      await s.groups.setMembership(ctx, g.id, u.id, false);
      expect((await addGroup()).status).toBe(403);
      expect((await withToken(token, '/api/v1/audit/events?limit=1')).status).toBe(200);
      await s.users.update(ctx, u.id, { active: false });
      expect((await withToken(token, '/api/v1/audit/events?limit=1')).status).toBe(403);
    });

    it('end with the group activation that makes their maker a member of an admin group', async () => {
      const s = ferry.services;
      const u = await s.users.create(ctx, { userName: 'group-jit@contoso.example' });
      await ferry.api('/api/v1/pim/eligibilities', {
        method: 'POST',
        body: JSON.stringify({ user: u.userName, target: 'group:Ferry-Admins', maxDuration: 3600 }),
      });
      await signIn('group-jit', ['pwd', 'hwk', 'mfa']);
      const activation = await request('group-jit', { target: 'group:Ferry-Admins', durationSeconds: 1200 });
      expect(activation.state).toBe('active');
      await ferry.workers.drainOnce();
      expect(await s.groups.namesOf(u.id)).toContain('Ferry-Admins');
      const made = await as('group-jit', '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'group-jit-token', scopes: ['users:read'] }),
      });
      expect(made.status).toBe(201);
      const { token, apiToken } = (await made.json()) as { token: string; apiToken: { expiresAt: string } };
      expect(apiToken.expiresAt).toBe(activation.expiresAt);
      expect((await withToken(token, '/api/v1/users')).status).toBe(200);
      await ferry.api(`/api/v1/pim/activations/${activation.id}/revoke`, { method: 'POST', body: '{}' });
      // refused at once, while the membership row still waits for the outbox to remove it
      expect((await withToken(token, '/api/v1/users')).status).toBe(403);
      await ferry.workers.drainOnce();
      expect(await s.groups.namesOf(u.id)).not.toContain('Ferry-Admins');
      expect((await withToken(token, '/api/v1/users')).status).toBe(403);
    });

    it('made by a token, end no later than it (an operator token binds them to nobody)', async () => {
      const parentExpiry = new Date(clock.now().getTime() + 86400_000).toISOString();
      const parent = (await (
        await ferry.api('/api/v1/tokens', {
          method: 'POST',
          body: JSON.stringify({ name: 'parent', expiresAt: parentExpiry }),
        })
      ).json()) as { token: string };
      const child = await withToken(parent.token, '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({
          name: 'child',
          scopes: ['audit:read'],
          expiresAt: new Date(clock.now().getTime() + 30 * 86400_000).toISOString(),
        }),
      });
      expect(child.status).toBe(201);
      expect(((await child.json()) as { apiToken: { expiresAt: string } }).apiToken.expiresAt).toBe(
        parentExpiry,
      );
      // a token scoped to audit:read cannot make one that writes users: refused, and audited
      const reader = (await (
        await ferry.api('/api/v1/tokens', {
          method: 'POST',
          body: JSON.stringify({ name: 'reader', scopes: ['audit:read', 'tokens:write'] }),
        })
      ).json()) as { token: string; apiToken: { id: string } };
      const broader = await withToken(reader.token, '/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'broader', scopes: ['users:write'] }),
      });
      expect(broader.status).toBe(403);
      expect(((await broader.json()) as { detail: string }).detail).toContain('users:write');
      expect(
        (await refusals()).find(
          (e) => e.data.reason === 'token-beyond-maker' && e.subject === 'POST /api/v1/tokens',
        )?.data,
      ).toMatchObject({ permission: 'users:write' });
    });

    it('an operator-made token (the CLI bootstrap) is bound to nobody', async () => {
      expect((await ferry.api('/api/v1/users')).status).toBe(200);
      const tokens = (await (await ferry.api('/api/v1/tokens')).json()) as {
        items: Array<{ name: string; expiresAt: string | null }>;
      };
      expect(tokens.items.find((t) => t.name === 'test-admin')?.expiresAt).toBeNull();
    });
  });

  describe('refusals are audited', () => {
    it('writes one event per actor and route in a window, counts the rest, and says how many it held back', async () => {
      const made = await ferry.api('/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'flooder', scopes: ['audit:read'] }),
      });
      const { token } = (await made.json()) as { token: string };
      const suppressedBefore = await refusalCount('suppressed');
      const flood = await Promise.all(Array.from({ length: 25 }, () => withToken(token, '/api/v1/users')));
      expect(flood.every((r) => r.status === 403)).toBe(true);
      const mine = () => refusals().then((all) => all.filter((e) => e.actor.name === 'flooder'));
      let events = await mine();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        subject: 'GET /api/v1/users',
        actor: { type: 'api-token', name: 'flooder' },
        data: { permission: 'users:read', reason: 'insufficient-scope', route: 'GET /api/v1/users' },
      });
      expect((await refusalCount('suppressed')) - suppressedBefore).toBe(24);
      // another route is another event
      expect((await withToken(token, '/api/v1/policies')).status).toBe(403);
      events = await mine();
      expect(events).toHaveLength(2);
      // a window later, one more event, carrying the count held back
      clock.advance(61_000);
      expect((await withToken(token, '/api/v1/users')).status).toBe(403);
      events = await mine();
      expect(events).toHaveLength(3);
      expect(events.find((e) => e.data.refusedSinceLast !== undefined)?.data).toMatchObject({
        refusedSinceLast: 24,
      });
      // at most 20 events per actor in a window, across routes
      clock.advance(61_000);
      const routes = [
        '/api/v1/users',
        '/api/v1/groups',
        '/api/v1/policies',
        '/api/v1/named-locations',
        '/api/v1/aws/accounts',
        '/api/v1/assignments',
        '/api/v1/tokens',
        '/api/v1/oidc/clients',
        '/api/v1/saml/service-providers',
        '/api/v1/proxy/apps',
        '/api/v1/scim/tokens',
        '/api/v1/pim/eligibilities',
        '/api/v1/reviews',
        '/api/v1/ssh/logins',
        '/api/v1/alerts',
        '/api/v1/activity',
        '/api/v1/cloudtrail/sources',
        '/api/v1/risk/detections',
        '/api/v1/identity-center/scim',
        '/api/v1/keys/saml',
        '/api/v1/access/of?user=dev@contoso.example',
        '/api/v1/access/who?target=admin:helpdesk',
      ];
      const before = (await mine()).length;
      for (const path of routes) expect((await withToken(token, path)).status, path).toBe(403);
      expect((await mine()).length - before).toBe(20);
    });

    it('audits a person refused for lacking the role or needing a step-up', async () => {
      clock.advance(61_000);
      expect((await as('outsider', '/api/v1/users')).status).toBe(403);
      const weak = await ferry.services.users.create(ctx, { userName: 'weak-admin@contoso.example' });
      const admins = await ferry.services.groups.get('Ferry-Admins');
      await ferry.services.groups.setMembership(ctx, admins.id, weak.id, true);
      await signIn('weak-admin', ['pwd', 'otp', 'mfa']);
      expect((await as('weak-admin', '/api/v1/users')).status).toBe(403);
      const events = (await refusals()).filter((e) => e.subject === 'GET /api/v1/users');
      expect(events.find((e) => e.actor.name === 'outsider@contoso.example')).toMatchObject({
        actor: { type: 'user' },
        data: { permission: 'users:read', reason: 'admin-role-required' },
      });
      expect(events.find((e) => e.actor.name === 'weak-admin@contoso.example')).toMatchObject({
        data: { permission: 'users:read', reason: 'step-up-required' },
      });
    });
  });
});
