import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { ManualClock } from '../clock.js';
import type { Actor } from './actor.js';
import { exportEvents, OCSF_VERSION, toOcsf } from './export.js';
import { type AuditInput, appendAudit, listAudit } from './ledger.js';

const alice: Actor = { type: 'user', id: 'u-alice', name: 'alice@contoso.example' };
const admin: Actor = { type: 'api-token', id: 't-1', name: 'terraform' };

/** Representative events, each with the OCSF class and activity it must export as. */
const CASES: Array<{ input: AuditInput; classUid: number; activityId: number; mfa?: boolean }> = [
  {
    input: {
      type: 'signin',
      outcome: 'success',
      actor: alice,
      subject: alice.name,
      ip: '192.0.2.10',
      requestId: 'req-1',
      data: { step: 'password', sessionId: 's-1', amr: ['pwd'] },
    },
    classUid: 3002,
    activityId: 1,
    mfa: false,
  },
  {
    input: {
      type: 'signin',
      outcome: 'failure',
      actor: { type: 'anonymous' },
      subject: 'mallory@contoso.example',
      ip: '198.51.100.7',
      data: { step: 'password', reason: 'bad-password' },
    },
    classUid: 3002,
    activityId: 1,
    mfa: false,
  },
  {
    input: {
      type: 'signin',
      outcome: 'success',
      actor: alice,
      subject: alice.name,
      ip: '192.0.2.10',
      data: { step: 'totp', amr: ['pwd', 'otp', 'mfa'] },
    },
    classUid: 3002,
    activityId: 1,
    mfa: true,
  },
  {
    input: {
      type: 'signin.refusals',
      outcome: 'failure',
      actor: { type: 'system', name: 'throttle' },
      subject: 'mallory@contoso.example',
      data: { refused: 40 },
    },
    classUid: 3002,
    activityId: 1,
  },
  {
    input: {
      type: 'session.revoked',
      outcome: 'success',
      actor: admin,
      subject: alice.name,
      data: { sessionId: 's-1' },
    },
    classUid: 3002,
    activityId: 2,
  },
  {
    input: {
      type: 'user.created',
      outcome: 'success',
      actor: admin,
      subject: 'bob@contoso.example',
      data: { userId: 'u-bob' },
    },
    classUid: 3001,
    activityId: 1,
  },
  {
    input: {
      type: 'user.updated',
      outcome: 'success',
      actor: admin,
      subject: 'bob@contoso.example',
      data: {},
    },
    classUid: 3001,
    activityId: 99,
  },
  {
    input: {
      type: 'user.disabled',
      outcome: 'success',
      actor: admin,
      subject: 'bob@contoso.example',
      data: {},
    },
    classUid: 3001,
    activityId: 5,
  },
  {
    input: {
      type: 'user.password-set',
      outcome: 'success',
      actor: admin,
      subject: 'bob@contoso.example',
      data: {},
    },
    classUid: 3001,
    activityId: 4,
  },
  {
    input: { type: 'mfa.reset', outcome: 'success', actor: admin, subject: 'bob@contoso.example', data: {} },
    classUid: 3001,
    activityId: 11,
  },
  {
    input: {
      type: 'mfa.totp.enrolled',
      outcome: 'success',
      actor: alice,
      subject: alice.name,
      ip: '192.0.2.10',
    },
    classUid: 3001,
    activityId: 10,
  },
  {
    input: {
      type: 'group.created',
      outcome: 'success',
      actor: admin,
      subject: 'aws-admins',
      data: { groupId: 'g-1' },
    },
    classUid: 3006,
    activityId: 6,
  },
  {
    input: { type: 'membership.changed', outcome: 'success', actor: admin, subject: 'aws-admins', data: {} },
    classUid: 3006,
    activityId: 99,
  },
  {
    input: { type: 'oidc-client.created', outcome: 'success', actor: admin, subject: 'ci', data: {} },
    classUid: 6003,
    activityId: 1,
  },
  {
    input: {
      type: 'aws-account.removed',
      outcome: 'success',
      actor: admin,
      subject: '123456789012',
      data: {},
    },
    classUid: 6003,
    activityId: 4,
  },
  {
    input: {
      type: 'audit.archived',
      outcome: 'success',
      actor: { type: 'system', name: 'audit-archive' },
      data: {},
    },
    classUid: 6003,
    activityId: 3,
  },
];

const CATEGORY: Record<number, number> = { 3001: 3, 3002: 3, 3006: 3, 6003: 6 };

/** The fields OCSF 1.3 requires of every event, and of the event's class. */
function expectRequiredFields(r: Record<string, unknown>): void {
  for (const field of [
    'activity_id',
    'category_uid',
    'class_uid',
    'severity_id',
    'time',
    'type_uid',
    'metadata',
  ])
    expect(r, field).toHaveProperty(field);
  const classUid = r.class_uid as number;
  expect(r.category_uid).toBe(CATEGORY[classUid]);
  expect(r.type_uid).toBe(classUid * 100 + (r.activity_id as number));
  expect(Number.isInteger(r.time)).toBe(true);
  expect([1, 2]).toContain(r.status_id);
  const metadata = r.metadata as {
    version: string;
    product: { name: string; vendor_name: string; version: string };
  };
  expect(metadata.version).toBe(OCSF_VERSION);
  expect(metadata.product).toMatchObject({ name: 'Ferry', vendor_name: 'Ferry' });
  expect(metadata.product.version).toMatch(/^\d+\.\d+\.\d+/);
  expect(r.actor).toBeTypeOf('object');
  if (classUid === 3001 || classUid === 3002) expect((r.user as { name: string }).name).toBeTruthy();
  if (classUid === 3002) expect(r.service ?? r.dst_endpoint).toBeTruthy();
  if (classUid === 3006) expect((r.group as { name: string }).name).toBeTruthy();
  if (classUid === 6003) {
    expect((r.api as { operation: string }).operation).toBeTruthy();
    expect(r.src_endpoint).toBeTypeOf('object');
  }
}

describe.each(ENGINES)('exporting audit events for SIEMs on %s', (engine) => {
  let ferry: TestFerry;
  const clock = new ManualClock('2026-04-01T10:00:00.000Z');
  let since: string;
  let until: string;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
    clock.advance(3_600_000);
    since = clock.now().toISOString();
    const { store } = ferry.services;
    for (const c of CASES) {
      clock.advance(1_000);
      await store.db.transaction().execute((trx) => appendAudit(trx, store.engine, clock, c.input));
    }
    clock.advance(1_000);
    until = clock.now().toISOString();
    // One after the window.
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'user.deleted',
        outcome: 'success',
        actor: admin,
        subject: 'late',
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await ferry?.close();
  });

  it('maps every event to its OCSF class with the required fields', async () => {
    const events = await listAudit(ferry.services.store.db, { since, until, limit: 1000 });
    expect(events.map((e) => e.type)).toEqual(CASES.map((c) => c.input.type));
    for (const [i, e] of events.entries()) {
      const r = toOcsf(e);
      const c = CASES[i]!;
      expect([e.type, r.class_uid, r.activity_id]).toEqual([e.type, c.classUid, c.activityId]);
      expectRequiredFields(r);
      expect(r.time).toBe(Date.parse(e.time));
      expect(r.status_id).toBe(e.outcome === 'failure' ? 2 : 1);
      if (c.mfa !== undefined) expect(r.is_mfa).toBe(c.mfa);
      if (e.ip) expect(r.src_endpoint).toEqual({ ip: e.ip });
      expect((r.metadata as { uid: string }).uid).toBe(e.id);
    }
    const failure = toOcsf(events[1]!);
    expect(failure).toMatchObject({
      status: 'Failure',
      status_detail: 'bad-password',
      user: { name: 'mallory@contoso.example' },
      severity_id: 2,
    });
    expect(toOcsf(events[0]!)).toMatchObject({
      actor: { user: { uid: 'u-alice', name: 'alice@contoso.example' } },
      session: { uid: 's-1' },
      metadata: { correlation_uid: 'req-1' },
    });
  });

  it('GET /api/v1/audit/export streams JSON lines or OCSF for a time window', async () => {
    const q = `since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`;
    const ocsf = await ferry.api(`/api/v1/audit/export?format=ocsf&${q}`);
    expect(ocsf.status).toBe(200);
    expect(ocsf.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const records = (await ocsf.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r.class_uid, r.activity_id])).toEqual(
      CASES.map((c) => [c.classUid, c.activityId]),
    );
    for (const r of records) expectRequiredFields(r);

    const jsonl = await ferry.api(`/api/v1/audit/export?${q}`);
    const events = (await jsonl.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; leafIndex: unknown });
    expect(events.map((e) => e.type)).toEqual(CASES.map((c) => c.input.type));
    // The same lines as the library writes (paged by sequence).
    let direct = '';
    for await (const line of exportEvents(ferry.services.store.db, { format: 'jsonl', since, until }))
      direct += line;
    expect(direct.trim().split('\n')).toHaveLength(CASES.length);

    const bad = await ferry.api('/api/v1/audit/export?format=cef');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await ferry.api('/api/v1/audit/export?since=yesterday')).status).toBe(400);
    expect((await ferry.api('/api/v1/audit/export', { auth: false })).status).toBe(401);
  });
});
