import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { ManualClock } from '../clock.js';
import { principalOf } from '../identity/principal-of.js';
import { openStore } from '../store/open.js';
import { postgresAwsRoleReads, postgresEntitlementReads } from './decide-reads.js';
import { bumpPolicyGeneration, policyGeneration } from './policies/generation.js';
import type { Principal } from './principal.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };

// The single statement is PostgreSQL's (SQLite reads in-process and keeps the separate queries); the
// decisions it feeds are covered on both engines by access.test.ts and pim/activations.test.ts.
describe('decide() reads for an AWS role in one statement (postgres)', () => {
  let ferry: TestFerry;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let seq = 0;
  const unique = (p: string) => `${p}-${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry('postgres', { clock });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  /** Developer through a group, Administrator directly, Auditor through a live activation (eligible via a group). */
  async function world() {
    const s = ferry.services;
    const accountId = String(300000000000 + ++seq);
    const alias = unique('Acct');
    await s.accounts.upsert(ctx, { id: accountId, alias });
    for (const name of ['Developer', 'Administrator', 'Auditor'])
      await s.accounts.upsertRole(ctx, accountId, { name, maxSessionDuration: 7200 });
    const devs = await s.groups.create(ctx, { displayName: unique('Devs') });
    const oncall = await s.groups.create(ctx, { displayName: unique('Oncall') });
    const approvers = await s.groups.create(ctx, { displayName: unique('Approvers') });
    const user = await s.users.create(ctx, { userName: `${unique('dev')}@contoso.example` });
    const approver = await s.users.create(ctx, { userName: `${unique('approver')}@contoso.example` });
    await s.groups.setMembership(ctx, devs.id, user.id, true);
    await s.groups.setMembership(ctx, oncall.id, user.id, true);
    await s.groups.setMembership(ctx, approvers.id, approver.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: devs.id, name: devs.displayName },
      accountId,
      'Developer',
    );
    await s.assignments.add(
      ctx,
      { type: 'user', id: user.id, name: user.userName },
      accountId,
      'Administrator',
    );
    await s.eligibilities.set(
      ctx,
      { type: 'group', id: oncall.id, name: oncall.displayName },
      accountId,
      'Auditor',
      {
        maxDuration: 3600,
        requireJustification: false,
        requireTicket: false,
        requireMfa: false,
        approvers: [{ type: 'group', id: approvers.id, name: approvers.displayName }],
        approvalsRequired: 1,
        autoApprove: null,
      },
    );
    const as = (u: { id: string }) => principalOf(s.store.db, u.id, { amr: ['pwd', 'otp'], authTime: null });
    const requested = await s.activations.request(ctx, await as(user), {
      account: accountId,
      role: 'Auditor',
      durationSeconds: 3600,
    });
    await s.activations.approve(ctx, await as(approver), requested.id, 'ok');
    return { s, accountId, alias, user, oncall, principal: () => as(user) };
  }

  /** The same facts as the services read them one query at a time. */
  async function separately(s: TestFerry['services'], p: Principal, account: string, role: string) {
    return {
      assignments: await s.assignments.forPrincipal(
        p.id,
        p.groups.map((g) => g.id),
        p.kind,
      ),
      grants: p.kind === 'user' ? await s.activations.activeFor(p.id) : [],
      role: (await s.accounts.role(account, role).catch(() => ({ role: null }))).role,
      policyGeneration: await policyGeneration(s.store.db),
    };
  }

  it('reads what the separate queries read: assignments, live activations, the role, the policy generation', async () => {
    const { s, accountId, alias, principal } = await world();
    const read = postgresAwsRoleReads(s.store, clock);
    const p = await principal();
    for (const [account, role] of [
      [accountId, 'Developer'],
      [accountId, 'Auditor'],
      [alias.toUpperCase(), 'Administrator'],
      [accountId, 'NoSuchRole'],
      ['999999999999', 'Developer'],
    ] as const) {
      const one = await read(p, { kind: 'aws-role', account, role });
      expect(one).toEqual(await separately(s, p, account, role));
    }
    const one = await read(p, { kind: 'aws-role', account: accountId, role: 'Developer' });
    expect(one.assignments.map((a) => a.roleName).sort()).toEqual(['Administrator', 'Developer']);
    expect(one.grants.map((g) => g.roleName)).toEqual(['Auditor']);
    expect(one.role).toMatchObject({ accountId, name: 'Developer', maxSessionDuration: 7200 });
    expect((await read(p, { kind: 'aws-role', account: accountId, role: 'NoSuchRole' })).role).toBeNull();

    const before = one.policyGeneration;
    await bumpPolicyGeneration(s.store.db);
    expect(
      (await read(p, { kind: 'aws-role', account: accountId, role: 'Developer' })).policyGeneration,
    ).toBe(before + 1);
  });

  it('a membership that ended counts at once: its assignment and the activation it made eligible are gone', async () => {
    const { s, accountId, user, oncall, principal } = await world();
    expect(
      (
        await s.access.decide(
          await principal(),
          { kind: 'aws-role', account: accountId, role: 'Auditor' },
          cli,
        )
      ).effect,
    ).toBe('allow');
    await s.groups.setMembership(ctx, oncall.id, user.id, false);
    const p = await principal();
    const read = postgresAwsRoleReads(s.store, clock);
    expect((await read(p, { kind: 'aws-role', account: accountId, role: 'Auditor' })).grants).toEqual([]);
    const d = await s.access.decide(p, { kind: 'aws-role', account: accountId, role: 'Auditor' }, cli);
    expect(d.effect).toBe('deny');

    await s.users.update(ctx, user.id, { active: false });
    const offboarded = await s.access.decide(
      await principal(),
      { kind: 'aws-role', account: accountId, role: 'Developer' },
      cli,
    );
    expect(offboarded.effect).toBe('deny');
  });

  it('a workload reads its own assignments and no activations', async () => {
    const { s, accountId, user, principal } = await world();
    const person = await principal();
    // a workload whose id happens to be a person's: only workload assignments are its own
    const workload: Principal = { ...person, kind: 'workload', groups: [] };
    const one = await postgresAwsRoleReads(s.store, clock)(workload, {
      kind: 'aws-role',
      account: accountId,
      role: 'Administrator',
    });
    expect(one.assignments).toEqual([]);
    expect(one.grants).toEqual([]);
    expect(one).toEqual(await separately(s, workload, accountId, 'Administrator'));
    expect(user.id).toBe(workload.id);
  });

  it('stays one prepared statement with one generic plan, whatever the number of groups (ADR 0058)', async () => {
    const { s, accountId, principal } = await world();
    const p = await principal();
    // one connection, so every read below runs in the server session whose prepared statements we list
    const store = openStore(ferry.db.url, { poolSize: 1 });
    try {
      const read = postgresAwsRoleReads(store, clock);
      const target = { kind: 'aws-role', account: accountId, role: 'Developer' } as const;
      for (let i = 0; i < 12; i++) {
        const someGroups = { ...p, groups: p.groups.slice(0, i % 3) };
        expect(await read(someGroups, target)).toEqual(
          await separately(s, someGroups, accountId, 'Developer'),
        );
      }
      const { rows } = await sql<{ generic_plans: string; custom_plans: string }>`
        select generic_plans, custom_plans from pg_prepared_statements where statement like '%pim_activations%'`.execute(
        store.db,
      );
      expect(rows).toHaveLength(1);
      // five custom plans while the server compares, then the generic one for the rest
      expect(Number(rows[0]!.generic_plans)).toBeGreaterThanOrEqual(7);
    } finally {
      await store.close();
    }
  });

  /** What entitlements() reads when the store has no single statement for it. */
  async function entitlementsSeparately(s: TestFerry['services'], p: Principal) {
    const { assignments, grants, policyGeneration } = await separately(s, p, '999999999999', 'none');
    const targets = [...assignments, ...grants].map((x) => ({ account: x.accountId, role: x.roleName }));
    return { assignments, grants, roles: await s.accounts.rolesByTarget(targets), policyGeneration };
  }

  it("entitlements() reads in one statement what it reads separately, and a membership's end at once", async () => {
    const { s, accountId, user, oncall, principal } = await world();
    const read = postgresEntitlementReads(s.store, clock);
    const p = await principal();
    const one = await read(p);
    expect(one).toEqual(await entitlementsSeparately(s, p));
    expect([...one.roles.keys()].sort()).toEqual(
      ['Administrator', 'Auditor', 'Developer'].map((r) => `aws:${accountId}/${r}`),
    );
    const workload: Principal = { ...p, kind: 'workload', groups: [] };
    expect(await read(workload)).toEqual({
      assignments: [],
      grants: [],
      roles: new Map(),
      policyGeneration: one.policyGeneration,
    });
    expect((await s.access.entitlements(p, cli)).map((e) => e.target.role).sort()).toEqual([
      'Administrator',
      'Auditor',
      'Developer',
    ]);

    await s.groups.setMembership(ctx, oncall.id, user.id, false);
    const after = await principal();
    expect(await read(after)).toEqual(await entitlementsSeparately(s, after));
    expect((await s.access.entitlements(after, cli)).map((e) => e.target.role).sort()).toEqual([
      'Administrator',
      'Developer',
    ]);
  });

  it('entitlements() reads stay one prepared statement with one generic plan', async () => {
    const { accountId, principal } = await world();
    const p = await principal();
    const store = openStore(ferry.db.url, { poolSize: 1 });
    try {
      const read = postgresEntitlementReads(store, clock);
      for (let i = 0; i < 12; i++) {
        const someGroups = { ...p, groups: p.groups.slice(0, i % 3) };
        expect((await read(someGroups)).roles.has(`aws:${accountId}/Administrator`)).toBe(true);
      }
      const { rows } = await sql<{ generic_plans: string }>`
        select generic_plans from pg_prepared_statements where statement like '%with assigned as%'`.execute(
        store.db,
      );
      expect(rows).toHaveLength(1);
      expect(Number(rows[0]!.generic_plans)).toBeGreaterThanOrEqual(7);
    } finally {
      await store.close();
    }
  });
});
