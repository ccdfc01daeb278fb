import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../../test/support/web-form.js';
import type { AuditContext } from '../audit/actor.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PASSWORD = 'correct-horse-battery-42';

describe.each(ENGINES)('admin rights on %s', (engine) => {
  let ferry: TestFerry;
  /** cookie jars and CSRF tokens of people signed in with a password */
  const people: Record<string, { jar: CookieJar; csrf: string }> = {};
  const as = (who: string, path: string, init: RequestInit & { csrf?: string | null } = {}) => {
    const { csrf, ...rest } = init;
    const token = csrf === undefined ? people[who]!.csrf : csrf;
    return fetch(`${ferry.url}${path}`, {
      ...rest,
      headers: {
        cookie: people[who]!.jar.header(),
        ...(rest.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token !== null ? { 'x-csrf-token': token } : {}),
      },
    });
  };
  /** a session as a sign-in with these methods would leave it (a security key needs a browser) */
  const sessionWith = async (userName: string, amr: string[]) => {
    const s = ferry.services;
    const user = await s.users.get(userName);
    const { token } = await s.sessions.start(s.store.db, { userId: user.id, state: 'active', amr });
    const jar = new CookieJar();
    jar.cookies.set(s.config.sessions.cookieName, token);
    return { jar, csrf: await csrfTokenOf(ferry.url, jar) };
  };

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    const roles = [
      ['helpdesk', 'Helpdesk', 'helpdesk'],
      ['auditor', 'Auditors', 'auditor'],
      ['root', 'Ferry-Admins', 'ferry-administrator'],
    ] as const;
    for (const [user, group, role] of roles) {
      const g = await s.groups.create(ctx, { displayName: group });
      await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, role);
      const u = await s.users.create(ctx, { userName: `${user}@contoso.example`, password: PASSWORD });
      await s.groups.setMembership(ctx, g.id, u.id, true);
    }
    await s.users.create(ctx, { userName: 'plain@contoso.example', password: PASSWORD });
    await s.users.create(ctx, { userName: 'lost-phone@contoso.example', password: PASSWORD });
    for (const user of ['helpdesk', 'auditor', 'root', 'plain']) {
      const jar = new CookieJar();
      const signin = await signInWithPassword(jar, ferry.url, `${user}@contoso.example`, PASSWORD);
      expect(signin.status).toBe(303);
      people[user] = { jar, csrf: await csrfTokenOf(ferry.url, jar) };
    }
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('tells a signed-in browser who it is, its CSRF token and what its admin roles allow; 401 when signed out', async () => {
    const res = await as('helpdesk', '/api/v1/session');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      user: { userName: 'helpdesk@contoso.example' },
      csrfToken: people.helpdesk!.csrf,
      permissions: ['users:read', 'users:write', 'mfa:reset', 'groups:read'],
      adminRoles: [{ role: 'helpdesk', title: 'Helpdesk', effect: 'allow' }],
    });
    const plain = (await (await as('plain', '/api/v1/session')).json()) as Record<string, unknown>;
    expect(plain).toMatchObject({ permissions: [], adminRoles: [] });
    const out = await fetch(`${ferry.url}/api/v1/session`);
    expect(out.status).toBe(401);
    expect(out.headers.get('content-type')).toContain('application/problem+json');
  });

  it('lets a helpdesk person reset MFA and manage users, and refuses them policies and tokens', async () => {
    const reset = await as('helpdesk', '/api/v1/users/lost-phone@contoso.example/mfa', { method: 'DELETE' });
    expect(reset.status).toBe(200);
    const created = await as('helpdesk', '/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'new-hire@contoso.example' }),
    });
    expect(created.status).toBe(201);
    for (const path of ['/api/v1/policies', '/api/v1/tokens', '/api/v1/audit/events']) {
      const refused = await as('helpdesk', path);
      expect(refused.status, path).toBe(403);
      expect(await refused.json()).toMatchObject({
        type: 'https://ferry.dev/problems/admin-role-required',
      });
    }
    const policy = await as('helpdesk', '/api/v1/policies/block-all', {
      method: 'PUT',
      body: JSON.stringify({ include: { all: true }, targets: ['all'], grant: { block: true } }),
    });
    expect(policy.status).toBe(403);
    expect(await policy.json()).toMatchObject({ permission: 'policies:write' });
  });

  it('lets an auditor read users and the audit trail but change nothing', async () => {
    expect((await as('auditor', '/api/v1/users')).status).toBe(200);
    expect((await as('auditor', '/api/v1/audit/events?limit=5')).status).toBe(200);
    expect((await as('auditor', '/api/v1/policies')).status).toBe(200);
    const create = await as('auditor', '/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'sneaky@contoso.example' }),
    });
    expect(create.status).toBe(403);
    expect(await create.json()).toMatchObject({ permission: 'users:write', roles: expect.any(Array) });
    expect(
      (await as('auditor', '/api/v1/users/plain@contoso.example/mfa', { method: 'DELETE' })).status,
    ).toBe(403);
  });

  it('refuses a person with no admin role on every admin route', async () => {
    for (const path of ['/api/v1/users', '/api/v1/aws/accounts', '/api/v1/audit/events']) {
      const res = await as('plain', path);
      expect(res.status, path).toBe(403);
    }
  });

  it('asks a Ferry Administrator without phishing-resistant MFA to step up, and admits them with a security key', async () => {
    const weak = await as('root', '/api/v1/users');
    expect(weak.status).toBe(403);
    expect(await weak.json()).toMatchObject({
      type: 'https://ferry.dev/problems/step-up-required',
      target: 'admin:ferry-administrator',
      require: ['phishing-resistant-mfa'],
    });
    const session = (await (await as('root', '/api/v1/session')).json()) as Record<string, unknown>;
    expect(session).toMatchObject({
      permissions: [],
      adminRoles: [{ role: 'ferry-administrator', effect: 'step-up', require: ['phishing-resistant-mfa'] }],
    });
    // TOTP is MFA but not phishing-resistant.
    people.rootTotp = await sessionWith('root@contoso.example', ['pwd', 'otp', 'mfa']);
    expect((await as('rootTotp', '/api/v1/users')).status).toBe(403);
    people.rootKey = await sessionWith('root@contoso.example', ['pwd', 'hwk', 'mfa']);
    expect((await as('rootKey', '/api/v1/users')).status).toBe(200);
    const token = await as('rootKey', '/api/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'from-console', scopes: ['audit:read'] }),
    });
    expect(token.status).toBe(201);
  });

  it('needs the session-bound x-csrf-token on unsafe calls made with the cookie', async () => {
    const body = JSON.stringify({ userName: 'csrf-probe@contoso.example' });
    const missing = await as('helpdesk', '/api/v1/users', { method: 'POST', body, csrf: null });
    expect(missing.status).toBe(403);
    expect(await missing.json()).toMatchObject({ type: 'https://ferry.dev/problems/csrf-token-invalid' });
    // another person's token is bound to their session, not this one
    const wrong = await as('helpdesk', '/api/v1/users', { method: 'POST', body, csrf: people.auditor!.csrf });
    expect(wrong.status).toBe(403);
    expect((await as('helpdesk', '/api/v1/users', { method: 'POST', body })).status).toBe(201);
    // user-facing routes too: a PIM request made with the cookie alone is refused before it is read
    const pim = await as('plain', '/api/v1/pim/activations', {
      method: 'POST',
      body: JSON.stringify({ account: '123456789012', role: 'Developer', durationSeconds: 3600 }),
      csrf: null,
    });
    expect(pim.status).toBe(403);
    expect(await pim.json()).toMatchObject({ type: 'https://ferry.dev/problems/csrf-token-invalid' });
    // reads need none
    expect((await as('helpdesk', '/api/v1/users', { csrf: null })).status).toBe(200);
    // a %-escaped path reaches the same /api/ route, so it needs the token just the same
    const escaped = await as('helpdesk', '/%61pi/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'csrf-escaped@contoso.example' }),
      csrf: null,
    });
    expect(escaped.status).toBe(403);
    expect(await escaped.json()).toMatchObject({ type: 'https://ferry.dev/problems/csrf-token-invalid' });
  });

  it('refuses an Access Administrator every way of making themself an administrator', async () => {
    const s = ferry.services;
    const g = await s.groups.create(ctx, { displayName: 'Access-Admins' });
    await s.adminRoles.add(ctx, { type: 'group', id: g.id, name: g.displayName }, 'access-administrator');
    const u = await s.users.create(ctx, { userName: 'access-admin@contoso.example', password: PASSWORD });
    await s.groups.setMembership(ctx, g.id, u.id, true);
    people.access = await sessionWith('access-admin@contoso.example', ['pwd']);
    const post = (path: string, body: unknown) =>
      as('access', path, { method: 'POST', body: JSON.stringify(body) });
    const refusedFor = async (res: Response) => {
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ permission: 'admin-roles:write' });
    };
    // an eligibility for the admin role, however the target is spelled
    for (const spelling of [
      { target: 'admin:ferry-administrator' },
      { target: 'aws:ferry/ferry-administrator' },
      { account: 'ferry', role: 'ferry-administrator' },
    ])
      await refusedFor(
        await post('/api/v1/pim/eligibilities', { user: u.userName, maxDuration: 3600, ...spelling }),
      );
    // a group that carries an admin role: joining it, or being made eligible for it, is the role
    await refusedFor(
      await as('access', `/api/v1/groups/Ferry-Admins/members/${u.userName}`, { method: 'PUT' }),
    );
    await refusedFor(
      await post('/api/v1/pim/eligibilities', {
        user: u.userName,
        maxDuration: 3600,
        target: 'group:Ferry-Admins',
      }),
    );
    // nor a group whose members may activate an admin role, or approve someone's activation of one
    const approvers = await s.groups.create(ctx, { displayName: 'Admin-Approvers' });
    const hopefuls = await s.groups.create(ctx, { displayName: 'Admin-Hopefuls' });
    const { eligibility } = await s.eligibilities.set(
      ctx,
      { type: 'group', id: hopefuls.id, name: hopefuls.displayName },
      'ferry',
      'ferry-administrator',
      {
        maxDuration: 3600,
        requireJustification: true,
        requireTicket: false,
        requireMfa: false,
        approvers: [{ type: 'group', id: approvers.id, name: approvers.displayName }],
        approvalsRequired: 1,
        autoApprove: null,
      },
    );
    // and one step removed: eligible for (or approving) membership of a group that holds an admin role
    const groupApprovers = await s.groups.create(ctx, { displayName: 'Group-Approvers' });
    const groupHopefuls = await s.groups.create(ctx, { displayName: 'Group-Hopefuls' });
    const viaGroup = await s.eligibilities.setTarget(
      ctx,
      { type: 'group', id: groupHopefuls.id, name: groupHopefuls.displayName },
      { kind: 'group', group: 'Ferry-Admins' },
      {
        maxDuration: 3600,
        requireJustification: true,
        requireTicket: false,
        requireMfa: false,
        approvers: [{ type: 'group', id: groupApprovers.id, name: groupApprovers.displayName }],
        approvalsRequired: 1,
        autoApprove: null,
      },
    );
    for (const g of [approvers, hopefuls, groupApprovers, groupHopefuls])
      await refusedFor(await as('access', `/api/v1/groups/${g.id}/members/${u.userName}`, { method: 'PUT' }));
    expect(await s.groups.namesOf(u.id)).toEqual(['Access-Admins']);
    await s.eligibilities.remove(ctx, eligibility.id);
    await s.eligibilities.remove(ctx, viaGroup.eligibility.id);
    expect(await s.eligibilities.list()).toEqual([]);
    // a group without an admin role is theirs to manage
    const plain = await s.groups.create(ctx, { displayName: 'Developers' });
    const join = await as('access', `/api/v1/groups/${plain.id}/members/${u.userName}`, { method: 'PUT' });
    expect(join.status).toBe(200);
  });

  it('limits a scoped API token to its scopes and names the permission it lacks', async () => {
    const made = await ferry.api('/api/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'audit-reader', scopes: ['audit:read'] }),
    });
    expect(made.status).toBe(201);
    const { token, apiToken } = (await made.json()) as { token: string; apiToken: { scopes: string[] } };
    expect(apiToken.scopes).toEqual(['audit:read']);
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${ferry.url}/api/v1/audit/events?limit=1`, { headers: bearer })).status).toBe(200);
    const create = await fetch(`${ferry.url}/api/v1/users`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ userName: 'by-token@contoso.example' }),
    });
    expect(create.status).toBe(403);
    expect(create.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_scope", scope="users:write"',
    );
    expect(await create.json()).toMatchObject({
      type: 'https://ferry.dev/problems/insufficient-scope',
      permission: 'users:write',
    });
    // nor can it mint a broader token for itself
    const broader = await fetch(`${ferry.url}/api/v1/tokens`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ name: 'escalate' }),
    });
    expect(broader.status).toBe(403);
    const unknown = await ferry.api('/api/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'typo', scopes: ['users:wirte'] }),
    });
    expect(unknown.status).toBe(400);
  });

  it('records the person, or the token, as the actor of an admin change', async () => {
    await as('helpdesk', '/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'audited@contoso.example' }),
    });
    await ferry.api('/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'audited-by-token@contoso.example' }),
    });
    const events = (await (await ferry.api('/api/v1/audit/events?type=user.created&limit=100')).json()) as {
      items: Array<{ subject: string; actor: Record<string, unknown> }>;
    };
    const of = (subject: string) => events.items.find((e) => e.subject === subject)?.actor;
    expect(of('audited@contoso.example')).toMatchObject({ type: 'user', name: 'helpdesk@contoso.example' });
    expect(of('audited-by-token@contoso.example')).toMatchObject({ type: 'api-token', name: 'test-admin' });
  });
});
