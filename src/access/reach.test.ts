import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../../test/support/web-form.js';
import type { AuditContext } from '../audit/actor.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'correct-horse-battery-42';
const ACCOUNT = '123456789012';

interface Item {
  target: string;
  userName: string;
  effect: string;
  require?: string[];
  via: Array<{ kind: string; name: string }>;
}

describe.each(ENGINES)('who can reach what, and admin roles through PIM, on %s', (engine) => {
  let ferry: TestFerry;
  const jars: Record<string, CookieJar> = {};
  const as = async (who: string, path: string, init: RequestInit = {}) =>
    fetch(`${ferry.url}${path}`, {
      ...init,
      headers: {
        cookie: jars[who]!.header(),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        'x-csrf-token': await csrfTokenOf(ferry.url, jars[who]!),
      },
    });
  const get = async <T>(path: string): Promise<T> => {
    const res = await ferry.api(path);
    expect(res.status, path).toBe(200);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
    for (const role of ['Developer', 'Administrator'])
      await s.accounts.upsertRole(ctx, ACCOUNT, { name: role, maxSessionDuration: 3600 });
    const devs = await s.groups.create(ctx, { displayName: 'Devs' });
    const bosses = await s.groups.create(ctx, { displayName: 'Bosses' });
    for (const user of ['dev', 'direct', 'helper', 'boss']) {
      const u = await s.users.create(ctx, { userName: `${user}@contoso.example`, password: PASSWORD });
      if (user === 'dev') await s.groups.setMembership(ctx, devs.id, u.id, true);
      if (user === 'boss') await s.groups.setMembership(ctx, bosses.id, u.id, true);
      jars[user] = new CookieJar();
      expect(
        (await signInWithPassword(jars[user]!, ferry.url, `${user}@contoso.example`, PASSWORD)).status,
      ).toBe(303);
    }
    const assign = (body: unknown) =>
      ferry.api('/api/v1/assignments', { method: 'POST', body: JSON.stringify(body) });
    expect((await assign({ group: 'Devs', account: 'Account1', role: 'Developer' })).status).toBe(201);
    expect(
      (await assign({ user: 'direct@contoso.example', account: ACCOUNT, role: 'Administrator' })).status,
    ).toBe(201);
    // The bosses approve, and hold Auditor standing through their group.
    expect((await assign({ group: 'Bosses', account: 'ferry', role: 'auditor' })).status).toBe(201);
    const eligible = await ferry.api('/api/v1/pim/eligibilities', {
      method: 'POST',
      body: JSON.stringify({
        user: 'helper@contoso.example',
        account: 'ferry',
        role: 'helpdesk',
        maxDuration: 3600,
        approverGroups: ['Bosses'],
      }),
    });
    expect(eligible.status).toBe(201);
    expect(await eligible.json()).toMatchObject({ target: 'admin:helpdesk' });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('makes an admin role usable only while a PIM activation with approval lasts', async () => {
    expect((await as('helper', '/api/v1/users')).status).toBe(403);
    const requested = await as('helper', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({
        account: 'ferry',
        role: 'helpdesk',
        durationSeconds: 1800,
        justification: 'ticket 7',
      }),
    });
    expect(requested.status).toBe(201);
    const activation = (await requested.json()) as { id: string; state: string; target: string };
    expect(activation).toMatchObject({ state: 'requested', target: 'admin:helpdesk' });
    expect((await as('helper', '/api/v1/users')).status).toBe(403);

    const approved = await as('boss', `/api/v1/pim/activations/${activation.id}/approve`, {
      method: 'POST',
      body: '{}',
    });
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ state: 'active' });
    expect((await as('helper', '/api/v1/users')).status).toBe(200);
    expect((await as('helper', '/api/v1/users/dev@contoso.example/mfa', { method: 'DELETE' })).status).toBe(
      200,
    );
    expect((await as('helper', '/api/v1/policies')).status).toBe(403);
    const session = (await (await as('helper', '/api/v1/session')).json()) as { adminRoles: unknown[] };
    expect(session.adminRoles).toMatchObject([{ role: 'helpdesk', effect: 'allow' }]);

    const ended = await as('helper', `/api/v1/pim/activations/${activation.id}/revoke`, {
      method: 'POST',
      body: '{}',
    });
    expect(ended.status).toBe(200);
    expect((await as('helper', '/api/v1/users')).status).toBe(403);
  });

  it('answers who can reach a target: through a group, directly, by activation, or eligible', async () => {
    const dev = await get<{ items: Item[] }>(`/api/v1/access/who?target=aws:${ACCOUNT}/Developer`);
    expect(dev.items).toMatchObject([
      { userName: 'dev@contoso.example', effect: 'allow', via: [{ kind: 'group', name: 'Devs' }] },
    ]);
    const admin = await get<{ items: Item[] }>(`/api/v1/access/who?target=aws:${ACCOUNT}/Administrator`);
    expect(admin.items).toMatchObject([
      {
        userName: 'direct@contoso.example',
        effect: 'allow',
        via: [{ kind: 'direct', name: 'direct@contoso.example' }],
      },
    ]);
    const auditors = await get<{ items: Item[] }>('/api/v1/access/who?target=admin:auditor');
    expect(auditors.items).toMatchObject([
      { userName: 'boss@contoso.example', effect: 'allow', via: [{ kind: 'group', name: 'Bosses' }] },
    ]);
    const helpdesk = await get<{ items: Item[] }>('/api/v1/access/who?target=admin:helpdesk');
    expect(helpdesk.items).toMatchObject([
      { userName: 'helper@contoso.example', effect: 'eligible', via: [{ kind: 'eligibility' }] },
    ]);
    expect((await ferry.api('/api/v1/access/who?target=nonsense')).status).toBe(400);
  });

  it("answers what a person can reach, with activations and the policies' step-ups", async () => {
    // A Developer activation for dev, then a policy asking MFA for Developer.
    await ferry.api('/api/v1/pim/eligibilities', {
      method: 'POST',
      body: JSON.stringify({
        user: 'dev@contoso.example',
        account: ACCOUNT,
        role: 'Administrator',
        maxDuration: 3600,
      }),
    });
    const act = await as('dev', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ account: ACCOUNT, role: 'Administrator', durationSeconds: 1800 }),
    });
    expect(act.status).toBe(201);
    expect(await act.json()).toMatchObject({ state: 'active' });
    const policy = await ferry.api('/api/v1/policies/mfa-for-developers', {
      method: 'PUT',
      body: JSON.stringify({
        state: 'on',
        include: { groups: ['Devs'] },
        targets: [`aws:${ACCOUNT}/Developer`],
        grant: { require: ['mfa'] },
      }),
    });
    expect(policy.status, await policy.text()).toBeLessThan(300);

    const of = await get<{ items: Item[] }>('/api/v1/access/of?user=dev@contoso.example');
    expect(of.items).toMatchObject([
      {
        target: `aws:${ACCOUNT}/Administrator`,
        effect: 'allow',
        via: [{ kind: 'activation' }],
      },
      {
        target: `aws:${ACCOUNT}/Developer`,
        effect: 'step-up',
        require: ['mfa'],
        via: [{ kind: 'group', name: 'Devs' }],
      },
    ]);
    const who = await get<{ items: Item[] }>(`/api/v1/access/who?target=aws:${ACCOUNT}/Administrator`);
    expect(who.items.map((i) => [i.userName, i.via[0]!.kind])).toEqual([
      ['dev@contoso.example', 'activation'],
      ['direct@contoso.example', 'direct'],
    ]);
  });

  it("lists a person's assignments with those of their groups, marked", async () => {
    const res = await get<{ items: Array<Record<string, unknown>> }>(
      '/api/v1/assignments?user=boss@contoso.example',
    );
    expect(res.items).toMatchObject([{ target: 'admin:auditor', via: 'group', viaGroup: 'Bosses' }]);
    const dev = await get<{ items: Array<Record<string, unknown>> }>(
      '/api/v1/assignments?user=dev@contoso.example',
    );
    expect(dev.items).toMatchObject([{ target: `aws:${ACCOUNT}/Developer`, via: 'group', viaGroup: 'Devs' }]);
  });

  it('needs admin-roles:write to grant an admin role, beyond access:write', async () => {
    const made = await ferry.api('/api/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'access-only', scopes: ['access:write', 'access:read', 'pim:write'] }),
    });
    const { token } = (await made.json()) as { token: string };
    const post = (path: string, body: unknown) =>
      fetch(`${ferry.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const grant = await post('/api/v1/assignments', {
      user: 'dev@contoso.example',
      account: 'ferry',
      role: 'ferry-administrator',
    });
    expect(grant.status).toBe(403);
    expect(await grant.json()).toMatchObject({ permission: 'admin-roles:write' });
    const eligible = await post('/api/v1/pim/eligibilities', {
      user: 'dev@contoso.example',
      account: 'ferry',
      role: 'ferry-administrator',
      maxDuration: 3600,
    });
    expect(eligible.status).toBe(403);
    // the same token may still assign AWS roles
    expect(
      (
        await post('/api/v1/assignments', {
          user: 'helper@contoso.example',
          account: ACCOUNT,
          role: 'Developer',
        })
      ).status,
    ).toBe(201);
    const unknownRole = await ferry.api('/api/v1/assignments', {
      method: 'POST',
      body: JSON.stringify({ user: 'dev@contoso.example', account: 'ferry', role: 'superuser' }),
    });
    expect(unknownRole.status).toBe(400);
  });
});
