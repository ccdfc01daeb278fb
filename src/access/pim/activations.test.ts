import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { principalOf } from '../../identity/principal-of.js';
import { openStore, type Store } from '../../store/open.js';
import { AwsAccounts } from '../aws-accounts.js';
import { Activations, PimForbidden, StepUpRequired } from './activations.js';
import { Eligibilities } from './eligibilities.js';
import { IllegalTransition } from './lifecycle.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };
const HOUR = 3600;

describe.each(ENGINES)('PIM activations on %s', (engine) => {
  let ferry: TestFerry;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let seq = 0;
  const unique = (p: string) => `${p}-${++seq}`;
  let second: Store | null = null;
  /**
   * A second instance's view of the same database. On PostgreSQL it has its own connection pool, so
   * the two really race; SQLite serves one instance (better-sqlite3 blocks its thread on a lock, so two
   * connections in one process would only wait on each other), so there it shares the connection and
   * its calls interleave with the first instance's at every await.
   */
  let other: Activations;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock, config: { pim: { answerWithin: '4h' } } });
    if (engine === 'postgres') second = openStore(ferry.db.url);
    const store = second ?? ferry.services.store;
    const accounts = new AwsAccounts(store, clock);
    other = new Activations(store, clock, accounts, new Eligibilities(store, clock, accounts), {
      answerWithin: 4 * 3600_000,
    });
  });
  afterAll(async () => {
    await second?.close();
    await ferry?.close();
  });

  /** Account with Administrator; developers eligible for it, approved by admins (N of M as given). */
  async function world(rules: { approvals?: number; requireMfa?: boolean; requireTicket?: boolean } = {}) {
    const s = ferry.services;
    const accountId = String(200000000000 + ++seq);
    await s.accounts.upsert(ctx, { id: accountId, alias: unique('Acct') });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Administrator', maxSessionDuration: 43200 });
    const devs = await s.groups.create(ctx, { displayName: unique('Devs') });
    const admins = await s.groups.create(ctx, { displayName: unique('Admins') });
    const person = async (prefix: string, group: { id: string }) => {
      const u = await s.users.create(ctx, { userName: `${unique(prefix)}@contoso.example` });
      await s.groups.setMembership(ctx, group.id, u.id, true);
      return u;
    };
    const dev = await person('dev', devs);
    const admin1 = await person('admin', admins);
    const admin2 = await person('admin', admins);
    // A developer who is also an admin: may approve others, never themself.
    const devAdmin = await person('devadmin', devs);
    await s.groups.setMembership(ctx, admins.id, devAdmin.id, true);
    const { eligibility } = await s.eligibilities.set(
      ctx,
      { type: 'group', id: devs.id, name: devs.displayName },
      accountId,
      'Administrator',
      {
        maxDuration: HOUR,
        requireJustification: true,
        requireTicket: rules.requireTicket ?? false,
        requireMfa: rules.requireMfa ?? false,
        approvers: [{ type: 'group', id: admins.id, name: admins.displayName }],
        approvalsRequired: rules.approvals ?? 1,
        autoApprove: null,
      },
    );
    const as = (u: { id: string }, amr = ['pwd', 'otp']) =>
      principalOf(s.store.db, u.id, { amr, authTime: null });
    const target = { kind: 'aws-role' as const, account: accountId, role: 'Administrator' };
    return { s, accountId, devs, admins, dev, admin1, admin2, devAdmin, eligibility, as, target };
  }

  const auditOf = async (activationId: string) => {
    const rows = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'actor', 'data'])
      .where('type', 'like', 'pim.activation.%')
      .orderBy('seq')
      .execute();
    return rows
      .map((r) => ({ type: r.type, actor: JSON.parse(r.actor), data: JSON.parse(r.data) }))
      .filter((r) => r.data.activationId === activationId);
  };
  const revokeEvents = async (userId: string) =>
    (
      await ferry.services.store.db
        .selectFrom('outbox')
        .select('payload')
        .where('type', '=', 'aws.sessions-revoke-requested')
        .execute()
    )
      .map((r) => JSON.parse(r.payload))
      .filter((e) => e.userId === userId);

  it('request → approve → active: the role is in decide() and entitlements, capped at the activation end', async () => {
    const w = await world();
    const dev = await w.as(w.dev);
    expect((await w.s.access.decide(dev, w.target, cli)).effect).toBe('deny');

    const a = await w.s.activations.request(ctx, dev, {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'INC-1 database failover',
    });
    expect(a).toMatchObject({ state: 'requested', approvalsRequired: 1, userName: w.dev.userName });
    expect(a.answerBy).toBe('2026-03-02T13:00:00.000Z'); // answerWithin 4h
    expect((await w.s.access.decide(dev, w.target, cli)).effect).toBe('deny');
    expect((await w.s.activations.pendingFor(await w.as(w.admin1))).map((x) => x.id)).toContain(a.id);
    expect((await w.s.activations.pendingFor(dev)).map((x) => x.id)).not.toContain(a.id);

    const active = await w.s.activations.approve(ctx, await w.as(w.admin1), a.id, 'ok, go');
    expect(active.state).toBe('active');
    expect(active.activatedAt).toBe(clock.now().toISOString());
    expect(active.expiresAt).toBe(new Date(clock.now().getTime() + HOUR * 1000).toISOString());

    clock.advance(20 * 60_000);
    const d = await w.s.access.decide(dev, w.target, cli);
    expect(d.effect).toBe('allow');
    if (d.effect !== 'allow') return;
    expect(d.maxDuration).toBe(40 * 60); // what is left of the hour, not the role's 12 h
    expect(d.reasons[0]).toMatchObject({ source: 'activation', ref: a.id });
    const ent = await w.s.access.entitlements(dev, cli);
    expect(ent.map((e) => `${e.target.account}/${e.target.role}`)).toEqual([`${w.accountId}/Administrator`]);

    expect((await auditOf(a.id)).map((e) => [e.type, e.actor.name ?? e.actor.type])).toEqual([
      ['pim.activation.requested', 'test'],
      ['pim.activation.approved', 'test'],
      ['pim.activation.active', 'test'],
    ]);
  });

  it('expiry with the injected clock: issuance stops at the end, the scheduler expires it once and asks AWS to revoke', async () => {
    const w = await world();
    const dev = await w.as(w.dev);
    const a = await w.s.activations.request(ctx, dev, {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: 900,
      justification: 'deploy',
    });
    await w.s.activations.approve(ctx, await w.as(w.admin2), a.id, null);
    clock.advance(899_000);
    expect((await w.s.access.decide(dev, w.target, cli)).effect).toBe('allow');
    expect((await w.s.activations.runDue()).expired).toBe(0);
    clock.advance(1_000);
    // Before the scheduler runs, decide() already refuses: the end time is read, not the state.
    expect((await w.s.access.decide(dev, w.target, cli)).effect).toBe('deny');
    expect(await w.s.access.entitlements(dev, cli)).toEqual([]);
    expect(await revokeEvents(w.dev.id)).toEqual([]);

    // Two instances run the scheduler at the same moment: exactly one expiry.
    const [mine, theirs] = await Promise.all([w.s.activations.runDue(), other.runDue()]);
    expect(mine.expired + theirs.expired).toBe(1);
    expect((await w.s.activations.get(a.id)).state).toBe('expired');
    expect((await auditOf(a.id)).filter((e) => e.type === 'pim.activation.expired')).toHaveLength(1);
    const events = await revokeEvents(w.dev.id);
    expect(events).toEqual([
      {
        type: 'aws.sessions-revoke-requested',
        userId: w.dev.id,
        userName: w.dev.userName,
        account: w.accountId,
        role: 'Administrator',
        reason: `activation ${a.id} expired`,
      },
    ]);
    expect((await w.s.activations.runDue()).expired).toBe(0);
    await expect(w.s.activations.revoke(ctx, null, a.id, 'late')).rejects.toBeInstanceOf(IllegalTransition);
  });

  it('the scheduler claims each due activation once across instances (many due at once)', async () => {
    const w = await world();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const u = await ferry.services.users.create(ctx, { userName: `${unique('many')}@contoso.example` });
      await ferry.services.groups.setMembership(ctx, w.devs.id, u.id, true);
      const a = await w.s.activations.request(ctx, await w.as(u), {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: 900,
        justification: 'batch',
      });
      await w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null);
      ids.push(a.id);
    }
    clock.advance(901_000);
    const results = await Promise.all([
      w.s.activations.runDue(2),
      other.runDue(2),
      w.s.activations.runDue(),
      other.runDue(),
    ]);
    expect(results.reduce((n, r) => n + r.expired, 0)).toBe(6);
    for (const id of ids) {
      expect((await w.s.activations.get(id)).state).toBe('expired');
      expect((await auditOf(id)).filter((e) => e.type === 'pim.activation.expired')).toHaveLength(1);
    }
  });

  it('a request nobody answers lapses at its deadline; answering it afterwards is a conflict', async () => {
    const w = await world();
    const a = await w.s.activations.request(ctx, await w.as(w.dev), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
    });
    clock.advance(4 * 3600_000 - 1);
    expect((await w.s.activations.runDue()).lapsed).toBe(0);
    clock.advance(1);
    expect((await w.s.activations.runDue()).lapsed).toBe(1);
    const lapsed = await w.s.activations.get(a.id);
    expect(lapsed).toMatchObject({ state: 'lapsed', endedBy: 'system:pim-scheduler' });
    await expect(w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null)).rejects.toBeInstanceOf(
      IllegalTransition,
    );
    expect(await revokeEvents(w.dev.id)).toEqual([]); // never active: nothing to revoke
  });

  it('nobody approves their own request, non-approvers cannot, and rules are enforced', async () => {
    const w = await world({ requireTicket: true });
    const devAdmin = await w.as(w.devAdmin);
    await expect(
      w.s.activations.request(ctx, devAdmin, {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: HOUR,
        justification: 'x',
      }),
    ).rejects.toThrow(/ticket/);
    await expect(
      w.s.activations.request(ctx, devAdmin, {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: HOUR,
        ticket: 'T-1',
      }),
    ).rejects.toThrow(/justification/);
    await expect(
      w.s.activations.request(ctx, devAdmin, {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: 2 * HOUR,
        justification: 'x',
        ticket: 'T-1',
      }),
    ).rejects.toThrow(/at most 3600 seconds/);
    await expect(
      w.s.activations.request(ctx, await w.as(w.admin1), {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: HOUR,
        justification: 'x',
        ticket: 'T-1',
      }),
    ).rejects.toBeInstanceOf(PimForbidden); // admins are approvers, not eligible
    const a = await w.s.activations.request(ctx, devAdmin, {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
      ticket: 'T-1',
    });
    await expect(
      w.s.activations.request(ctx, devAdmin, {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: HOUR,
        justification: 'x',
        ticket: 'T-2',
      }),
    ).rejects.toThrow(/already has activation/);
    await expect(w.s.activations.approve(ctx, devAdmin, a.id, 'me')).rejects.toThrow(/their own request/);
    await expect(w.s.activations.approve(ctx, await w.as(w.dev), a.id, null)).rejects.toThrow(
      /not an approver/,
    );
    await expect(w.s.activations.cancel(ctx, await w.as(w.admin1), a.id, null)).rejects.toBeInstanceOf(
      PimForbidden,
    );
    expect((await w.s.activations.get(a.id)).state).toBe('requested');
    const denied = await w.s.activations.deny(ctx, await w.as(w.admin1), a.id, 'not during the freeze');
    expect(denied).toMatchObject({ state: 'denied', endReason: 'not during the freeze' });
    await expect(w.s.activations.deny(ctx, await w.as(w.admin2), a.id, null)).rejects.toBeInstanceOf(
      IllegalTransition,
    );
  });

  it('two requests for the same role at once: one is open, the other is a conflict', async () => {
    const w = await world();
    const req = { account: w.accountId, role: 'Administrator', durationSeconds: HOUR, justification: 'x' };
    const results = await Promise.allSettled([
      w.s.activations.request(ctx, await w.as(w.dev), req),
      other.request(ctx, await w.as(w.dev), req),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as Error).name).toBe('Conflict');
    expect(await w.s.activations.list({ userId: w.dev.id, states: ['requested'] })).toHaveLength(1);
  });

  it('MFA at activation: a password-only sign-in gets a step-up answer', async () => {
    const w = await world({ requireMfa: true });
    const req = { account: w.accountId, role: 'Administrator', durationSeconds: HOUR, justification: 'x' };
    const err = await w.s.activations.request(ctx, await w.as(w.dev, ['pwd']), req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepUpRequired);
    expect((err as StepUpRequired).require).toEqual(['mfa']);
    expect((await w.s.activations.request(ctx, await w.as(w.dev, ['pwd', 'otp']), req)).state).toBe(
      'requested',
    );
  });

  it('two approvers at once (1 of M): exactly one transition, the other is a conflict', async () => {
    const w = await world();
    const a = await w.s.activations.request(ctx, await w.as(w.dev), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
    });
    const results = await Promise.allSettled([
      w.s.activations.approve(ctx, await w.as(w.admin1), a.id, 'one'),
      other.approve(ctx, await w.as(w.admin2), a.id, 'two'),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r) => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(IllegalTransition);
    const final = await w.s.activations.get(a.id);
    expect(final.state).toBe('active');
    expect(final.approvals).toHaveLength(1);
    const types = (await auditOf(a.id)).map((e) => e.type);
    expect(types.filter((t) => t === 'pim.activation.approved')).toHaveLength(1);
    expect(types.filter((t) => t === 'pim.activation.active')).toHaveLength(1);
  });

  it('two approvers at once (2 of M): both approvals count, one approval transition', async () => {
    const w = await world({ approvals: 2 });
    const a = await w.s.activations.request(ctx, await w.as(w.dev), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
    });
    const first = await w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null);
    expect(first).toMatchObject({ state: 'requested', approvals: [{ userName: w.admin1.userName }] });
    await expect(w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null)).rejects.toThrow(
      /already approved/,
    );
    const b = await w.s.activations.request(ctx, await w.as(w.devAdmin), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'y',
    });
    const results = await Promise.all([
      w.s.activations.approve(ctx, await w.as(w.admin1), b.id, 'a'),
      other.approve(ctx, await w.as(w.admin2), b.id, 'b'),
    ]);
    expect(results.map((r) => r.state).sort()).toEqual(['active', 'requested']);
    const final = await w.s.activations.get(b.id);
    expect(final.state).toBe('active');
    expect(final.approvals.map((x) => x.userName).sort()).toEqual(
      [w.admin1.userName, w.admin2.userName].sort(),
    );
    const types = (await auditOf(b.id)).map((e) => e.type);
    expect(types).toEqual([
      'pim.activation.requested',
      'pim.activation.approval-recorded',
      'pim.activation.approved',
      'pim.activation.active',
    ]);
  });

  it('revoke by the person ends it at once and asks for their AWS sessions; not when a standing assignment covers the role', async () => {
    const w = await world();
    const a = await w.s.activations.request(ctx, await w.as(w.dev), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
    });
    await w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null);
    const revoked = await w.s.activations.revoke(ctx, await w.as(w.dev), a.id, 'done early');
    expect(revoked).toMatchObject({ state: 'revoked', endReason: 'done early', endedBy: 'operator:test' });
    expect((await w.s.access.decide(await w.as(w.dev), w.target, cli)).effect).toBe('deny');
    expect(await revokeEvents(w.dev.id)).toHaveLength(1);

    // devAdmin is also in a group with a standing Administrator assignment: their sessions stay.
    await w.s.assignments.add(
      ctx,
      { type: 'group', id: w.admins.id, name: w.admins.displayName },
      w.accountId,
      'Administrator',
    );
    const b = await w.s.activations.request(ctx, await w.as(w.devAdmin), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: HOUR,
      justification: 'x',
    });
    await w.s.activations.approve(ctx, await w.as(w.admin1), b.id, null);
    await w.s.activations.revoke(ctx, null, b.id, 'admin');
    expect(await revokeEvents(w.devAdmin.id)).toEqual([]);
  });

  it('an activation stops counting when the person leaves the eligible group or the eligibility is removed', async () => {
    const w = await world();
    const start = async (u: { id: string }) => {
      const a = await w.s.activations.request(ctx, await w.as(u), {
        account: w.accountId,
        role: 'Administrator',
        durationSeconds: HOUR,
        justification: 'x',
      });
      return w.s.activations.approve(ctx, await w.as(w.admin1), a.id, null);
    };
    await start(w.dev);
    expect((await w.s.access.decide(await w.as(w.dev), w.target, cli)).effect).toBe('allow');
    await w.s.groups.setMembership(ctx, w.devs.id, w.dev.id, false);
    expect((await w.s.access.decide(await w.as(w.dev), w.target, cli)).effect).toBe('deny');
    await start(w.devAdmin);
    expect((await w.s.access.decide(await w.as(w.devAdmin), w.target, cli)).effect).toBe('allow');
    await w.s.eligibilities.remove(ctx, w.eligibility.id);
    expect((await w.s.access.decide(await w.as(w.devAdmin), w.target, cli)).effect).toBe('deny');
  });

  it('auto-approval: conditions met → active at once by the system; not met → waits for approval', async () => {
    const w = await world();
    await w.s.eligibilities.set(
      ctx,
      { type: 'group', id: w.devs.id, name: w.devs.displayName },
      w.accountId,
      'Administrator',
      {
        maxDuration: HOUR,
        requireJustification: false,
        requireTicket: false,
        requireMfa: false,
        approvers: [{ type: 'group', id: w.admins.id, name: w.admins.displayName }],
        approvalsRequired: 1,
        autoApprove: { maxDuration: 1800, withTicket: true },
      },
    );
    const quick = await w.s.activations.request(ctx, await w.as(w.dev), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: 1800,
      ticket: 'CHG-7',
    });
    expect(quick.state).toBe('active');
    expect((await auditOf(quick.id)).map((e) => [e.type, e.actor.name])).toEqual([
      ['pim.activation.requested', 'test'],
      ['pim.activation.approved', 'pim-auto-approval'],
      ['pim.activation.active', 'pim-auto-approval'],
    ]);
    const slow = await w.s.activations.request(ctx, await w.as(w.devAdmin), {
      account: w.accountId,
      role: 'Administrator',
      durationSeconds: 1801,
      ticket: 'CHG-8',
    });
    expect(slow.state).toBe('requested');
  });
});
