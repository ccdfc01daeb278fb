import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../../../test/support/web-form.js';
import type { AuditContext } from '../../audit/actor.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'correct-horse-battery-42';

describe.each(ENGINES)('PIM API on %s', (engine) => {
  let ferry: TestFerry;
  const jars: Record<string, CookieJar> = {};
  const as = async (who: string, path: string, init: RequestInit = {}) =>
    fetch(`${ferry.url}${path}`, {
      ...init,
      headers: {
        cookie: jars[who]!.header(),
        'content-type': 'application/json',
        'x-csrf-token': await csrfTokenOf(ferry.url, jars[who]!),
        ...(init.headers ?? {}),
      },
    });

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
    await s.accounts.upsertRole(ctx, '123456789012', { name: 'Administrator', maxSessionDuration: 3600 });
    for (const [user, group] of [
      ['dev', 'Devs'],
      ['other', 'Devs'],
      ['boss', 'Admins'],
    ] as const) {
      const g = await s.groups.get(group).catch(() => s.groups.create(ctx, { displayName: group }));
      const u = await s.users.create(ctx, { userName: `${user}@contoso.example`, password: PASSWORD });
      await s.groups.setMembership(ctx, g.id, u.id, true);
      jars[user] = new CookieJar();
      expect(
        (await signInWithPassword(jars[user]!, ferry.url, `${user}@contoso.example`, PASSWORD)).status,
      ).toBe(303);
    }
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('admins manage eligibilities; bad rules are 400 problems naming the field', async () => {
    const post = (body: unknown) =>
      ferry.api('/api/v1/pim/eligibilities', { method: 'POST', body: JSON.stringify(body) });
    const base = { group: 'Devs', account: 'Account1', role: 'Administrator' };
    const tooShort = await post({ ...base, maxDuration: 60 });
    expect(tooShort.status).toBe(400);
    expect(await tooShort.json()).toMatchObject({ field: 'maxDuration' });
    const tooMany = await post({
      ...base,
      maxDuration: 3600,
      approverUsers: ['boss@contoso.example'],
      approvalsRequired: 2,
    });
    expect(tooMany.status).toBe(400);
    expect(await tooMany.json()).toMatchObject({ field: 'approvalsRequired' });
    expect((await post({ ...base, user: 'dev@contoso.example', maxDuration: 3600 })).status).toBe(400);
    expect((await post({ ...base, group: 'Nobody', maxDuration: 3600 })).status).toBe(404);
    const created = await post({
      ...base,
      maxDuration: 3600,
      requireJustification: true,
      approverGroups: ['Admins'],
    });
    expect(created.status).toBe(201);
    // The answer names who was made eligible, as the list does (the console says so).
    expect(await created.json()).toMatchObject({ principalType: 'group', principalName: 'Devs' });
    const again = await post({
      ...base,
      maxDuration: 3600,
      requireJustification: true,
      approverGroups: ['Admins'],
    });
    expect(again.status).toBe(200);
    // People can't manage eligibilities with their sign-in unless an admin role gives them pim:read.
    expect((await as('boss', '/api/v1/pim/eligibilities')).status).toBe(403);
    const mine = (await (await as('dev', '/api/v1/pim/eligible')).json()) as {
      items: Array<{ target: string; principalName: string }>;
    };
    expect(mine.items.map((e) => [e.target, e.principalName])).toEqual([
      ['aws:123456789012/Administrator', 'Devs'],
    ]);
    expect(((await (await as('boss', '/api/v1/pim/eligible')).json()) as { items: unknown[] }).items).toEqual(
      [],
    );
  });

  it('a person sees their own and what they may approve; an admin token sees all and may revoke; illegal transitions are 409 problems', async () => {
    const res = await as('dev', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({
        account: 'Account1',
        role: 'Administrator',
        durationSeconds: 1800,
        justification: 'x',
      }),
    });
    expect(res.status).toBe(201);
    const a = (await res.json()) as { id: string; state: string };
    expect(a.state).toBe('requested');
    expect((await as('other', `/api/v1/pim/activations/${a.id}`)).status).toBe(403);
    expect((await as('boss', `/api/v1/pim/activations/${a.id}`)).status).toBe(200);
    const pending = (await (await as('boss', '/api/v1/pim/activations?pending=true')).json()) as {
      items: Array<{ id: string }>;
    };
    expect(pending.items.map((x) => x.id)).toEqual([a.id]);
    const othersView = (await (await as('other', '/api/v1/pim/activations')).json()) as { items: unknown[] };
    expect(othersView.items).toEqual([]);

    // An admin token is no approver: approval is a person's act.
    expect(
      (await ferry.api(`/api/v1/pim/activations/${a.id}/approve`, { method: 'POST', body: '{}' })).status,
    ).toBe(401);
    const early = await ferry.api(`/api/v1/pim/activations/${a.id}/revoke`, { method: 'POST', body: '{}' });
    expect(early.status).toBe(409);
    expect(early.headers.get('content-type')).toContain('application/problem+json');
    expect(await early.json()).toMatchObject({
      type: expect.stringMatching(/illegal-transition$/),
      status: 409,
      state: 'requested',
      event: 'revoke',
    });
    const self = await as('dev', `/api/v1/pim/activations/${a.id}/approve`, { method: 'POST', body: '{}' });
    expect(self.status).toBe(403);
    expect(
      await as('boss', `/api/v1/pim/activations/${a.id}/approve`, {
        method: 'POST',
        body: JSON.stringify({ reason: 'ok' }),
      }),
    ).toMatchObject({ status: 200 });
    const all = (await (await ferry.api('/api/v1/pim/activations?state=active')).json()) as {
      items: Array<{ id: string }>;
    };
    expect(all.items.map((x) => x.id)).toContain(a.id);
    expect(
      (await as('other', `/api/v1/pim/activations/${a.id}/revoke`, { method: 'POST', body: '{}' })).status,
    ).toBe(403);
    const revoked = await ferry.api(`/api/v1/pim/activations/${a.id}/revoke`, {
      method: 'POST',
      body: JSON.stringify({ reason: 'incident over' }),
    });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({
      state: 'revoked',
      endedBy: 'api-token:test-admin',
      endReason: 'incident over',
    });
    expect((await ferry.api('/api/v1/pim/activations/nope')).status).toBe(404);
    expect((await as('dev', '/api/v1/pim/activations?state=bogus')).status).toBe(400);
  });

  it('takes targets beyond roles: an SSH login is eligible, activated and reported with what happens to open sessions', async () => {
    const post = (body: unknown) =>
      ferry.api('/api/v1/pim/eligibilities', { method: 'POST', body: JSON.stringify(body) });
    const bad = await post({ group: 'Devs', target: 'ssh:-x@host', maxDuration: 3600 });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      type: expect.stringContaining('invalid-input'),
      field: 'target',
    });
    const unknown = await post({ group: 'Devs', target: 'printer:7', maxDuration: 3600 });
    expect(unknown.status).toBe(400);
    expect((await post({ group: 'Devs', target: 'group:NoSuchGroup', maxDuration: 3600 })).status).toBe(404);
    expect((await post({ group: 'Devs', maxDuration: 3600 })).status).toBe(400);
    const created = await post({ group: 'Devs', target: 'ssh:deploy@web-*', maxDuration: 1800 });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ kind: 'ssh', target: 'ssh:deploy@web-*' });

    const res = await as('dev', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ target: 'ssh:deploy@web-*', durationSeconds: 1800 }),
    });
    expect(res.status).toBe(201);
    const a = (await res.json()) as Record<string, unknown>;
    expect(a).toMatchObject({ state: 'active', kind: 'ssh', effect: null });
    expect(a.openSessions).toMatch(/open SSH connections are not cut/);
    const again = await as('dev', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ target: 'ssh:deploy@web-*', durationSeconds: 1800 }),
    });
    expect(again.status).toBe(409);
    const notEligible = await as('boss', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ target: 'ssh:deploy@web-*', durationSeconds: 1800 }),
    });
    expect(notEligible.status).toBe(403);
  });
});
