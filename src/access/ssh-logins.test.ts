import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { listAudit } from '../audit/ledger.js';
import { InvalidInput } from '../errors.js';
import { principalOf } from '../identity/principal-of.js';
import { hostMatches } from './ssh-logins.js';
import { parseTarget } from './targets.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };

describe('host patterns', () => {
  it('match like OpenSSH globs, case-insensitively, and nothing else', () => {
    expect(hostMatches('*', 'anything.example')).toBe(true);
    expect(hostMatches('*.dev.internal', 'web-1.dev.internal')).toBe(true);
    expect(hostMatches('*.dev.internal', 'a.b.DEV.internal')).toBe(true);
    expect(hostMatches('*.dev.internal', 'dev.internal')).toBe(false);
    expect(hostMatches('*.dev.internal', 'web-1.dev.internal.evil.example')).toBe(false);
    expect(hostMatches('*.dev.internal', 'web-1.devXinternal')).toBe(false);
    expect(hostMatches('web-?.dev.internal', 'web-7.dev.internal')).toBe(true);
    expect(hostMatches('web-?.dev.internal', 'web-17.dev.internal')).toBe(false);
    expect(hostMatches('10.0.0.*', '10.0.0.5')).toBe(true);
    expect(hostMatches('10.0.0.*', '10.0.1.5')).toBe(false);
  });
});

describe.each(ENGINES)('SSH login mappings and decide() on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const unique = (p: string) => `${p}-${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { ssh: { certificateLifetime: '10m' } } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  async function world() {
    const s = ferry.services;
    const devs = await s.groups.create(ctx, { displayName: unique('Devs') });
    const admins = await s.groups.create(ctx, { displayName: unique('Admins') });
    const user = await s.users.create(ctx, { userName: `${unique('dev')}@contoso.example` });
    await s.groups.setMembership(ctx, devs.id, user.id, true);
    const ref = (g: typeof devs) => ({ type: 'group' as const, id: g.id, name: g.displayName });
    const principal = () => principalOf(s.store.db, user.id, { amr: ['pwd'], authTime: null });
    return { s, devs, admins, user, ref, principal };
  }

  it('allows a mapped login on a matching host, capped by the configured lifetime, and says why', async () => {
    const { s, devs, ref, principal } = await world();
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['ec2-user'] });
    const d = await s.access.decide(await principal(), parseTarget('ssh:ec2-user@web-1.dev.internal'), cli);
    expect(d.effect).toBe('allow');
    if (d.effect !== 'allow') return;
    expect(d.maxDuration).toBe(600);
    expect(d.ssh).toEqual({ portForwarding: false, agentForwarding: false });
    expect(d.reasons[0]!.message).toBe(
      `member of ${devs.displayName}, which may log in as ec2-user on *.dev.internal`,
    );
  });

  it('denies another host, another login, no login, and a disabled user', async () => {
    const { s, devs, user, ref, principal } = await world();
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['ec2-user'] });
    const p = await principal();
    const prod = await s.access.decide(p, parseTarget('ssh:ec2-user@db.prod.internal'), cli);
    expect(prod).toMatchObject({ effect: 'deny' });
    expect(prod.reasons[0]!.message).toContain('any login on db.prod.internal');
    const root = await s.access.decide(p, parseTarget('ssh:root@web-1.dev.internal'), cli);
    expect(root.effect).toBe('deny');
    expect(root.reasons[0]!.message).toContain(
      'the login root on web-1.dev.internal (your groups may use: ec2-user)',
    );
    const none = await s.access.decide(p, { kind: 'ssh', host: 'web-1.dev.internal', login: '' }, cli);
    expect(none.effect).toBe('deny');
    await s.users.update(ctx, user.id, { active: false });
    expect(
      (await s.access.decide(await principal(), parseTarget('ssh:ec2-user@web-1.dev.internal'), cli)).effect,
    ).toBe('deny');
  });

  it('combines mappings: the most generous lifetime within the ceiling, forwarding if any allows it', async () => {
    const { s, devs, admins, user, ref, principal } = await world();
    await s.groups.setMembership(ctx, admins.id, user.id, true);
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*', logins: ['ec2-user'], maxDuration: 120 });
    await s.sshLogins.set(ctx, ref(admins), {
      hosts: '*.dev.internal',
      logins: ['ec2-user'],
      maxDuration: 300,
      agentForwarding: true,
    });
    const d = await s.access.decide(await principal(), parseTarget('ssh:ec2-user@a.dev.internal'), cli);
    expect(d).toMatchObject({
      effect: 'allow',
      maxDuration: 300,
      ssh: { portForwarding: false, agentForwarding: true },
    });
    const elsewhere = await s.access.decide(await principal(), parseTarget('ssh:ec2-user@b.example'), cli);
    expect(elsewhere).toMatchObject({ effect: 'allow', maxDuration: 120, ssh: { agentForwarding: false } });
    expect(await s.access.sshLoginsFor(await principal(), 'a.dev.internal')).toEqual(['ec2-user']);
  });

  it('sets a mapping once (idempotent), updates it in place, audits each change, and removes it', async () => {
    const { s, devs, ref } = await world();
    const first = await s.sshLogins.set(ctx, ref(devs), { hosts: '*', logins: ['ec2-user'] });
    expect(first).toMatchObject({ created: true, changed: true });
    const again = await s.sshLogins.set(ctx, ref(devs), { hosts: '*', logins: ['ec2-user'] });
    expect(again).toMatchObject({ created: false, changed: false });
    const updated = await s.sshLogins.set(ctx, ref(devs), {
      hosts: '*',
      logins: ['ec2-user', 'deploy'],
      portForwarding: true,
    });
    expect(updated).toMatchObject({ created: false, changed: true });
    expect(updated.login.id).toBe(first.login.id);
    expect((await s.sshLogins.list({ groupId: devs.id }))[0]).toMatchObject({
      logins: ['ec2-user', 'deploy'],
      portForwarding: true,
      groupName: devs.displayName,
    });
    await s.sshLogins.remove(ctx, first.login.id);
    expect(await s.sshLogins.list({ groupId: devs.id })).toEqual([]);
    const audit = await listAudit(s.store.db, { subject: `group:${devs.displayName}`, limit: 10 });
    expect(audit.map((e) => e.type)).toEqual(['ssh-login.added', 'ssh-login.updated']);
  });

  it('refuses bad host patterns, logins and lifetimes', async () => {
    const { s, devs, ref } = await world();
    const bad = [
      { hosts: 'a b', logins: ['ec2-user'] },
      { hosts: '', logins: ['ec2-user'] },
      { hosts: '*', logins: [] },
      { hosts: '*', logins: ['root;rm'] },
      { hosts: '*', logins: ['ec2-user'], maxDuration: 10 },
    ];
    for (const input of bad)
      await expect(s.sshLogins.set(ctx, ref(devs), input)).rejects.toThrow(InvalidInput);
  });

  it("drops a deleted group's mappings with the group", async () => {
    const { s, devs, ref } = await world();
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*', logins: ['ec2-user'] });
    await s.groups.delete(ctx, devs.id);
    expect(await s.sshLogins.list({ groupId: devs.id })).toEqual([]);
  });

  it('decide() sees a mapping removed, changed or dropped with its group at once (mappings kept per policy generation)', async () => {
    const { s, devs, admins, ref, principal } = await world();
    const target = parseTarget('ssh:ec2-user@web-1.dev.internal');
    const generation = async () =>
      Number(
        (
          await s.store.db
            .selectFrom('ca_policy_set')
            .select('generation')
            .where('id', '=', 1)
            .executeTakeFirstOrThrow()
        ).generation,
      );
    const mapping = await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['ec2-user'] });
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('allow');
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('allow'); // from the kept read
    await s.sshLogins.remove(ctx, mapping.login.id);
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('deny');
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['ec2-user'] });
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('allow');
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['admin'] });
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('deny');
    await s.sshLogins.set(ctx, ref(devs), { hosts: '*.dev.internal', logins: ['ec2-user'] });
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('allow');
    // a group deleted with no mapping moves no generation (no policy recompiling on every instance)
    const before = await generation();
    await s.groups.delete(ctx, admins.id);
    expect(await generation()).toBe(before);
    // the member's group deleted: its mappings go with it (cascade), and so does the kept read
    await s.groups.delete(ctx, devs.id);
    expect(await generation()).toBeGreaterThan(before);
    expect((await s.access.decide(await principal(), target, cli)).effect).toBe('deny');
  });

  it('serves mappings over the admin API with problem+json errors', async () => {
    const { devs } = await world();
    const post = (body: unknown) =>
      ferry.api('/api/v1/ssh/logins', { method: 'POST', body: JSON.stringify(body) });
    const created = await post({ group: devs.displayName, hosts: '*.dev.internal', logins: ['ec2-user'] });
    expect(created.status).toBe(201);
    expect(
      (await post({ group: devs.displayName, hosts: '*.dev.internal', logins: ['ec2-user'] })).status,
    ).toBe(200);
    const unknown = await post({ group: 'No-Such-Group', hosts: '*', logins: ['ec2-user'] });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    const invalid = await post({ group: devs.displayName, hosts: '*', logins: ['Bad Login'] });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { field: string }).field).toBe('logins');
    expect((await post({ group: devs.displayName, hosts: '*', logins: ['x'], extra: true })).status).toBe(
      400,
    );
    expect((await ferry.api('/api/v1/ssh/logins/nope', { method: 'DELETE' })).status).toBe(404);
    expect((await ferry.api('/api/v1/ssh/logins', { auth: false })).status).toBe(401);
    // a JSON null is "no limit of its own", not 0 (ajv's coercion once turned it into 0 and a 400)
    const unlimited = await post({
      group: devs.displayName,
      hosts: '*.ops',
      logins: ['ops'],
      maxDuration: null,
    });
    expect(unlimited.status).toBe(201);
    expect(await unlimited.json()).toMatchObject({ maxDuration: null });
  });

  it('the tenant file sets mappings, reports them in a dry run, and prune removes unlisted ones', async () => {
    const { s, devs } = await world();
    const { applyTenant } = await import('../app/tenant.js');
    const doc = {
      sshLogins: [
        { group: devs.displayName, hosts: '*.dev.internal', logins: ['ec2-user'], maxDuration: '5m' },
      ],
    };
    const dry = await applyTenant(s, ctx, doc, { dryRun: true, prune: false });
    expect(dry).toEqual([
      { action: 'create', kind: 'ssh-login', name: `group:${devs.displayName} → ec2-user@*.dev.internal` },
    ]);
    await applyTenant(s, ctx, doc, { dryRun: false, prune: false });
    expect(await applyTenant(s, ctx, doc, { dryRun: false, prune: false })).toEqual([]);
    expect((await s.sshLogins.list({ groupId: devs.id }))[0]).toMatchObject({ maxDuration: 300 });
    const changed = { sshLogins: [{ ...doc.sshLogins[0], logins: ['ec2-user', 'deploy'] }] };
    const update = await applyTenant(s, ctx, changed, { dryRun: false, prune: false });
    expect(update[0]).toMatchObject({ action: 'update', kind: 'ssh-login' });
    await expect(
      applyTenant(s, ctx, { sshLogins: [{ group: 'Nope', logins: ['x'] }] }, { dryRun: false, prune: false }),
    ).rejects.toThrow(InvalidInput);
    const pruned = await applyTenant(s, ctx, {}, { dryRun: true, prune: true });
    expect(pruned.some((c) => c.action === 'delete' && c.kind === 'ssh-login')).toBe(true);
  });
});
