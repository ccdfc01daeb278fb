import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { principalOf } from '../identity/principal-of.js';
import { parseTarget } from './targets.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const browser = { client: 'browser' as const, ip: '127.0.0.1' };

describe.each(ENGINES)('access on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const unique = (p: string) => `${p}-${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  async function world() {
    const s = ferry.services;
    const accountId = String(100000000000 + ++seq);
    await s.accounts.upsert(ctx, { id: accountId, alias: unique('Acct') });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Developer', maxSessionDuration: 7200 });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Administrator', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: unique('Devs') });
    const user = await s.users.create(ctx, {
      userName: `${unique('dev')}@contoso.example`,
      attributes: { department: 'Engineering', costCenter: 'CC-42', secretNote: 'not a tag' },
    });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      accountId,
      'Developer',
    );
    const principal = async () => principalOf(s.store.db, user.id, { amr: ['pwd', 'otp'], authTime: null });
    return { s, accountId, group, user, principal };
  }

  it('allows a role assigned to a group the user is in, capped by MaxSessionDuration, with tags and reasons', async () => {
    const { s, accountId, group, principal } = await world();
    const d = await s.access.decide(await principal(), parseTarget(`aws:${accountId}/Developer`), browser);
    expect(d.effect).toBe('allow');
    if (d.effect !== 'allow') return;
    expect(d.maxDuration).toBe(7200);
    expect(d.sessionTags).toEqual({ department: 'Engineering', costCenter: 'CC-42', MfaMethod: 'totp' });
    expect(d.reasons[0]!.message).toContain(group.displayName);
  });

  it('denies a role nobody assigned, and everything to a disabled user', async () => {
    const { s, accountId, user, principal } = await world();
    const d = await s.access.decide(
      await principal(),
      parseTarget(`aws:${accountId}/Administrator`),
      browser,
    );
    expect(d.effect).toBe('deny');
    expect(d.reasons[0]!.message).toMatch(/no assignment/);
    await s.users.update(ctx, user.id, { active: false });
    const disabled = await s.access.decide(
      await principal(),
      parseTarget(`aws:${accountId}/Developer`),
      browser,
    );
    expect(disabled.effect).toBe('deny');
    expect(disabled.reasons[0]!.message).toMatch(/disabled/);
  });

  it('stops allowing once the user leaves the group, and lists entitlements', async () => {
    const { s, accountId, group, user, principal } = await world();
    await s.assignments.add(
      ctx,
      { type: 'user', id: user.id, name: user.userName },
      accountId,
      'Administrator',
    );
    const ents = await s.access.entitlements(await principal(), browser);
    expect(ents.map((e) => e.target.role).sort()).toEqual(['Administrator', 'Developer']);
    await s.groups.setMembership(ctx, group.id, user.id, false);
    const after = await s.access.entitlements(await principal(), browser);
    expect(after.map((e) => e.target.role)).toEqual(['Administrator']);
  });

  it('adds an assignment once (idempotent) and audits it', async () => {
    const { s, accountId, group } = await world();
    const again = await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      accountId,
      'Developer',
    );
    expect(again.created).toBe(false);
    const events = await ferry.api(`/api/v1/audit/events?type=assignment.added&limit=1000`);
    const body = (await events.json()) as { items: Array<{ data: { target: string } }> };
    expect(body.items.filter((e) => e.data.target === `aws:${accountId}/Developer`)).toHaveLength(1);
  });

  it("drops a deleted group's assignments through the outbox", async () => {
    const { s, accountId, group } = await world();
    await s.groups.delete(ctx, group.id);
    await ferry.workers.drainOnce();
    expect(await s.assignments.list({ accountId })).toEqual([]);
  });

  it('refuses bad account ids, role names and session durations', async () => {
    const s = ferry.services;
    await expect(s.accounts.upsert(ctx, { id: '1234', alias: 'x' })).rejects.toThrow(/12 digits/);
    await expect(
      s.accounts.upsert(ctx, { id: '999999999999', alias: 'x', partition: 'moon' as never }),
    ).rejects.toThrow(/partition/);
    await s.accounts.upsert(ctx, { id: '999999999998', alias: unique('ok') });
    await expect(s.accounts.upsertRole(ctx, '999999999998', { name: 'bad name' })).rejects.toThrow(
      /role name/,
    );
    await expect(
      s.accounts.upsertRole(ctx, '999999999998', { name: 'R', maxSessionDuration: 50000 }),
    ).rejects.toThrow(/3600..43200/);
  });

  it('serves accounts, roles and assignments over the admin API with problem+json errors', async () => {
    const id = String(200000000000 + ++seq);
    const alias = unique('Api');
    const put = await ferry.api(`/api/v1/aws/accounts/${id}`, {
      method: 'PUT',
      body: JSON.stringify({ alias }),
    });
    expect(put.status).toBe(201);
    const role = await ferry.api(`/api/v1/aws/accounts/${alias}/roles/ReadOnly`, {
      method: 'PUT',
      body: JSON.stringify({ maxSessionDuration: 3600 }),
    });
    expect(await role.json()).toMatchObject({
      arn: `arn:aws:iam::${id}:role/ReadOnly`,
      maxSessionDuration: 3600,
    });
    const group = unique('ApiGroup');
    await ferry.api('/api/v1/groups', { method: 'POST', body: JSON.stringify({ displayName: group }) });
    const a = await ferry.api('/api/v1/assignments', {
      method: 'POST',
      body: JSON.stringify({ group, account: alias, role: 'ReadOnly' }),
    });
    expect(a.status).toBe(201);
    const again = await ferry.api('/api/v1/assignments', {
      method: 'POST',
      body: JSON.stringify({ group, account: alias, role: 'ReadOnly' }),
    });
    expect(again.status).toBe(200);
    const list = (await (await ferry.api(`/api/v1/assignments?group=${group}`)).json()) as {
      items: unknown[];
    };
    expect(list.items).toHaveLength(1);
    const missingRole = await ferry.api('/api/v1/assignments', {
      method: 'POST',
      body: JSON.stringify({ group, account: alias, role: 'Nope' }),
    });
    expect(missingRole.status).toBe(404);
    expect(missingRole.headers.get('content-type')).toContain('application/problem+json');
    const both = await ferry.api('/api/v1/assignments', {
      method: 'POST',
      body: JSON.stringify({ group, user: 'x@y', account: alias, role: 'ReadOnly' }),
    });
    expect(both.status).toBe(400);
  });
});
