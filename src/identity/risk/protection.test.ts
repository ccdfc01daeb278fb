import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { userRiskOf } from '../../access/policies/store-source.js';
import { parseTarget } from '../../access/targets.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { principalOf } from '../principal-of.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const GOOD = 'Tr0ub4dor&3-unlikely-horse';
const MINUTE = 60_000;

describe.each(ENGINES)('identity protection on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      clock,
      config: { signin: { requireMfa: false, addressMaxFailures: 1000 } },
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const user = async (password = GOOD) => {
    const u = await ferry.services.users.create(ctx, { userName: `risk-${++seq}@contoso.example`, password });
    return u;
  };
  const signin = (name: string, password: string, ip: string) =>
    ferry.services.signin.password(name, password, { ip, requestId: null });
  const detections = async (kind: string, filter: { userId?: string; ip?: string } = {}) =>
    (await ferry.services.protection.list(filter.userId ? { userId: filter.userId } : {})).filter(
      (d) => d.kind === kind && (filter.ip === undefined || d.ip === filter.ip),
    );
  const sessionRisk = async (result: Awaited<ReturnType<typeof signin>>) => {
    expect(result.status).toBe('signed-in');
    return result.status === 'signed-in' ? result.session.signInRisk : null;
  };

  it('brute force: five wrong passwords for one account within 15 minutes, not the same spread over hours', async () => {
    const slow = await user();
    for (let i = 0; i < 5; i++) {
      await signin(slow.userName, `wrong-${i}`, '192.0.2.10');
      clock.advance(20 * MINUTE);
    }
    expect(await detections('brute-force', { userId: slow.id })).toEqual([]);

    const fast = await user();
    for (let i = 0; i < 5; i++) await signin(fast.userName, `wrong-${i}`, '192.0.2.11');
    const found = await detections('brute-force', { userId: fast.id });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 'medium', state: 'open', detail: { failures: 5 } });
    expect(await userRiskOf(ferry.services.store, fast.id)).toBe('medium');
    clock.advance(60 * MINUTE);
  });

  it('password spray: one address, many accounts, one password; not many accounts with many passwords', async () => {
    const victims = await Promise.all([1, 2, 3, 4, 5].map(() => user()));
    for (const [i, v] of victims.entries())
      await signin(v.userName, `different-password-${i}`, '198.51.100.77');
    expect(await detections('password-spray', { ip: '198.51.100.77' })).toEqual([]);

    for (const v of victims) await signin(v.userName, 'Winter2026!', '198.51.100.78');
    await signin('nobody-here@contoso.example', 'Winter2026!', '198.51.100.78');
    const found = await detections('password-spray', { ip: '198.51.100.78' });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 'high', userId: null, subject: '198.51.100.78' });
    expect(found[0]!.detail).toMatchObject({ distinctPasswords: 1 });
    // A correct password from the spraying address is a high-risk sign-in.
    expect(await sessionRisk(await signin(victims[0]!.userName, GOOD, '198.51.100.78'))).toBe('high');
    expect(await sessionRisk(await signin(victims[1]!.userName, GOOD, '198.51.100.5'))).toBe('none');
    clock.advance(60 * MINUTE);
  });

  it('a common or leaked password raises the user risk; a strong one does not', async () => {
    const weak = await user('password123');
    const strong = await user();
    expect(await sessionRisk(await signin(weak.userName, 'password123', '192.0.2.20'))).toBe('medium');
    expect(await sessionRisk(await signin(strong.userName, GOOD, '192.0.2.21'))).toBe('none');
    expect(await detections('leaked-password', { userId: weak.id })).toHaveLength(1);
    expect(await detections('leaked-password', { userId: strong.id })).toEqual([]);
    expect(await userRiskOf(ferry.services.store, weak.id)).toBe('high');
  });

  it('unfamiliar source: a new network in a new country, not a neighbour address', async () => {
    const u = await user();
    expect(await sessionRisk(await signin(u.userName, GOOD, '81.2.69.160'))).toBe('none'); // GB, first ever
    clock.advance(3 * 3600_000);
    expect(await sessionRisk(await signin(u.userName, GOOD, '81.2.69.161'))).toBe('none'); // same /24
    clock.advance(3 * 3600_000);
    expect(await sessionRisk(await signin(u.userName, GOOD, '8.8.8.8'))).toBe('medium'); // US, new
    const found = await detections('unfamiliar-source', { userId: u.id });
    expect(found).toHaveLength(1);
    expect(found[0]!.detail).toMatchObject({ country: 'US', knownCountries: ['GB'] });
    expect(await detections('impossible-travel', { userId: u.id })).toEqual([]);
  });

  it('impossible travel: another country 30 minutes later; the same trip a day later is not', async () => {
    const u = await user();
    await signin(u.userName, GOOD, '81.2.69.170'); // GB
    clock.advance(30 * MINUTE);
    expect(await sessionRisk(await signin(u.userName, GOOD, '1.0.1.5'))).toBe('high'); // CN
    const found = await detections('impossible-travel', { userId: u.id });
    expect(found).toHaveLength(1);
    expect(found[0]!.detail).toMatchObject({ from: 'GB', to: 'CN', minutesApart: 30 });

    const traveller = await user();
    await signin(traveller.userName, GOOD, '81.2.69.171');
    clock.advance(24 * 3600_000);
    await signin(traveller.userName, GOOD, '1.0.1.6');
    expect(await detections('impossible-travel', { userId: traveller.id })).toEqual([]);
  });

  it('token reuse: a login grant used from a second network is high risk; its first network and other grants are not', async () => {
    const u = await user();
    const p = ferry.services.protection;
    expect(await p.tokenUsed('grant-a', u, '192.0.2.40')).toBe('none');
    expect(await p.tokenUsed('grant-a', u, '192.0.2.41')).toBe('none');
    expect(await p.tokenUsed('grant-b', u, '203.0.113.9')).toBe('none');
    expect(await detections('token-reuse', { userId: u.id })).toEqual([]);
    expect(await p.tokenUsed('grant-a', u, '203.0.113.9')).toBe('high');
    expect(await p.tokenUsed('grant-a', u, '203.0.113.9')).toBe('high');
    const found = await detections('token-reuse', { userId: u.id });
    expect(found).toHaveLength(1);
    expect(found[0]!.detail).toMatchObject({ firstNetwork: '192.0.2.0/24', network: '203.0.113.0/24' });
    expect(JSON.stringify(found[0]!.detail)).not.toContain('grant-a');
  });

  it('the sign-in risk reaches decide(), and an admin confirms or dismisses detections (audited)', async () => {
    const s = ferry.services;
    const u = await user('password123');
    await s.accounts.upsert(ctx, { id: '400000000001', alias: 'RiskAcct' });
    await s.accounts.upsertRole(ctx, '400000000001', { name: 'Reader' });
    await s.assignments.add(ctx, { type: 'user', id: u.id, name: u.userName }, '400000000001', 'Reader');
    await s.policies.put(ctx, {
      name: `risky users blocked ${u.userName}`,
      state: 'on',
      include: { users: [u.userName] },
      targets: ['all'],
      conditions: { userRisk: ['high'] },
      grant: { block: true },
    });
    const result = await signin(u.userName, 'password123', '192.0.2.30');
    expect(result.status).toBe('signed-in');
    const session = result.status === 'signed-in' ? result.session : null;
    const target = parseTarget('aws:400000000001/Reader');
    const decide = async () =>
      s.access.decide(await principalOf(s.store.db, u.id, session), target, {
        client: 'browser',
        ip: '192.0.2.30',
      });
    expect((await decide()).effect).toBe('deny');

    const [leaked] = await detections('leaked-password', { userId: u.id });
    const res = await ferry.api(`/api/v1/risk/detections/${leaked!.id}/dismiss`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: 'dismissed', resolvedBy: 'test-admin' });
    expect((await decide()).effect).toBe('allow');
    const confirm = await ferry.api(`/api/v1/risk/detections/${leaked!.id}/confirm`, { method: 'POST' });
    expect(await confirm.json()).toMatchObject({ state: 'confirmed', level: 'high' });
    expect((await decide()).effect).toBe('deny');

    const listed = (await (
      await ferry.api(`/api/v1/risk/detections?user=${encodeURIComponent(u.userName)}`)
    ).json()) as {
      items: Array<{ kind: string }>;
    };
    expect(listed.items.map((d) => d.kind)).toEqual(['leaked-password']);
    const audit = await s.store.db
      .selectFrom('audit_events')
      .select('type')
      .where('subject', '=', u.userName)
      .where('type', 'like', 'risk.%')
      .orderBy('seq')
      .execute();
    expect(audit.map((a) => a.type)).toEqual(['risk.detected', 'risk.dismissed', 'risk.confirmed']);
    expect((await ferry.api('/api/v1/risk/detections/nope/dismiss', { method: 'POST' })).status).toBe(404);
  });
});
