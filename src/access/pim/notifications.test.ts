import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { configSchema } from '../../app/config.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import type { DomainEvent } from '../../events.js';
import { principalOf } from '../../identity/principal-of.js';
import type { TargetPolicy } from '../../outbound/target-guard.js';
import { enqueueEvent } from '../../store/outbox.js';
import {
  type PimWebhook,
  REFUSED_NOTIFICATION_ATTEMPTS,
  sendNotification,
  signature,
  verifySignature,
} from './notifications.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const SECRET = 'whsec_0123456789abcdef0123456789abcdef';

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What a receiver written without Ferry's code does: recompute HMAC-SHA256 over "<t>.<body>" with node:crypto. */
function receiverAccepts(header: string, body: string, secret: string, nowSeconds: number): boolean {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isFinite(t) || Math.abs(nowSeconds - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${parts.t}.${body}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('PIM webhooks', () => {
  let ferry: TestFerry;
  let receiver: Server;
  const received: Received[] = [];
  let failNext = 0;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext -= 1;
          res.writeHead(503).end();
          return;
        }
        received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    ferry = await startTestFerry('sqlite', {
      config: {
        // the receiver is on loopback: allowed by name, as an operator allows their SOC's subnet
        alerts: { allowTargetNetworks: ['127.0.0.1/32'] },
        pim: {
          webhooks: [
            { name: 'slack', url: `${base}/slack`, format: 'slack' },
            { name: 'soc', url: `${base}/generic`, format: 'generic', secret: SECRET },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('config: a generic webhook needs a secret of 32+ characters; Slack needs none', () => {
    const parse = (webhooks: unknown) => configSchema.safeParse({ pim: { webhooks } });
    expect(parse([{ name: 'soc', url: 'https://soc.example.com/h', format: 'generic' }]).success).toBe(false);
    expect(parse([{ name: 'soc', url: 'https://soc.example.com/h', secret: 'short' }]).success).toBe(false);
    expect(parse([{ name: 'soc', url: 'ftp://soc.example.com/h', secret: SECRET }]).success).toBe(false);
    expect(parse([{ name: 'soc', url: 'https://soc.example.com/h', secret: SECRET }]).success).toBe(true);
    expect(
      parse([{ name: 'slack', url: 'https://hooks.slack.com/services/T/B/X', format: 'slack' }]).success,
    ).toBe(true);
  });

  it('signatures: node:crypto agrees, and a changed body, wrong secret or old timestamp is refused', () => {
    const body = '{"a":1}';
    const now = 1_770_000_000;
    const header = signature(SECRET, now, body);
    expect(header).toMatch(/^t=1770000000,v1=[0-9a-f]{64}$/);
    expect(receiverAccepts(header, body, SECRET, now)).toBe(true);
    expect(verifySignature(SECRET, header, body, now)).toBe(true);
    expect(verifySignature(SECRET, header, '{"a":2}', now)).toBe(false);
    expect(verifySignature(`${SECRET}x`, header, body, now)).toBe(false);
    expect(verifySignature(SECRET, header, body, now + 301)).toBe(false); // replayed later
    expect(verifySignature(SECRET, header.replace('t=1770000000', 't=1770000100'), body, now + 100)).toBe(
      false,
    );
    expect(verifySignature(SECRET, undefined, body, now)).toBe(false);
    expect(verifySignature(SECRET, 'v1=00', body, now)).toBe(false);
  });

  it('a request goes to Slack and to the signed endpoint through the outbox, with approve/deny links; a failed delivery is retried', async () => {
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
    await s.accounts.upsertRole(ctx, '123456789012', { name: 'Administrator', maxSessionDuration: 3600 });
    const devs = await s.groups.create(ctx, { displayName: 'Devs' });
    const admins = await s.groups.create(ctx, { displayName: 'Admins' });
    const dev = await s.users.create(ctx, { userName: 'dev@contoso.example' });
    await s.groups.setMembership(ctx, devs.id, dev.id, true);
    await s.eligibilities.set(
      ctx,
      { type: 'group', id: devs.id, name: 'Devs' },
      '123456789012',
      'Administrator',
      {
        maxDuration: 3600,
        requireJustification: true,
        requireTicket: false,
        requireMfa: false,
        approvers: [{ type: 'group', id: admins.id, name: 'Admins' }],
        approvalsRequired: 1,
        autoApprove: null,
      },
    );
    failNext = 1; // the first delivery attempt fails
    const a = await s.activations.request(ctx, await principalOf(s.store.db, dev.id, null), {
      account: 'Account1',
      role: 'Administrator',
      durationSeconds: 1800,
      justification: 'INC-42 <script> & co',
      ticket: 'INC-42',
    });
    // The outbox rows exist with the request, before anything is delivered.
    const queued = await s.store.db
      .selectFrom('outbox')
      .select(['type', 'payload'])
      .where('type', '=', 'pim.notification')
      .execute();
    expect(queued.map((q) => JSON.parse(q.payload).webhook).sort()).toEqual(['slack', 'soc']);

    await ferry.workers.drainOnce();
    expect(received).toHaveLength(1); // one of the two failed and waits for its retry
    const failed = await s.store.db
      .selectFrom('outbox')
      .select(['last_error', 'available_at', 'processed_at'])
      .where('type', '=', 'pim.notification')
      .where('processed_at', 'is', null)
      .execute();
    expect(failed).toHaveLength(1);
    expect(failed[0]!.last_error).toMatch(/HTTP 503/);
    await s.store.db
      .updateTable('outbox')
      .set({ available_at: '2000-01-01T00:00:00.000Z' })
      .where('processed_at', 'is', null)
      .execute();
    await ferry.workers.drainOnce();
    expect(received).toHaveLength(2);

    const slack = received.find((r) => r.path === '/slack')!;
    const generic = received.find((r) => r.path === '/generic')!;
    expect(slack.headers['ferry-signature']).toBeUndefined();
    const slackBody = JSON.parse(slack.body) as { text: string; blocks: Array<Record<string, unknown>> };
    expect(slackBody.text).toBe('dev@contoso.example requests aws:123456789012/Administrator for 30m');
    expect(JSON.stringify(slackBody.blocks)).toContain('INC-42 &lt;script&gt; &amp; co');
    const buttons = (
      slackBody.blocks.find((b) => b.type === 'actions') as { elements: Array<{ url: string }> }
    ).elements;
    expect(buttons.map((b) => b.url)).toEqual([
      `${ferry.url}/pim/activations/${a.id}?action=approve`,
      `${ferry.url}/pim/activations/${a.id}?action=deny`,
    ]);

    const header = generic.headers['ferry-signature'] as string;
    expect(receiverAccepts(header, generic.body, SECRET, Math.floor(Date.now() / 1000))).toBe(true);
    expect(
      receiverAccepts(header, generic.body.replace('30', '90'), SECRET, Math.floor(Date.now() / 1000)),
    ).toBe(false);
    const body = JSON.parse(generic.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: 'activation.requested',
      actor: 'operator:test',
      activation: { id: a.id, state: 'requested', userName: 'dev@contoso.example', ticket: 'INC-42' },
      links: {
        approve: `${ferry.url}/pim/activations/${a.id}?action=approve`,
        deny: `${ferry.url}/pim/activations/${a.id}?action=deny`,
      },
    });
  });
});

describe('PIM webhooks reach only the targets the alert guard allows', () => {
  let receiver: Server;
  let base: string;
  const hits: string[] = [];
  const clock = new ManualClock('2026-12-06T12:00:00.000Z');
  const notification = {
    type: 'pim.notification',
    webhook: 'soc',
    change: 'requested',
    actor: 'operator:test',
    reason: null,
    activation: {
      id: 'act-1',
      state: 'requested',
      userName: 'dev@contoso.example',
      target: 'aws:123456789012/Administrator',
      durationSeconds: 1800,
      justification: null,
      ticket: null,
      approvalsRequired: 1,
      approvals: [],
      expiresAt: null,
    },
  } as unknown as Extract<DomainEvent, { type: 'pim.notification' }>;
  const hook = (url: string): PimWebhook[] => [{ name: 'soc', url, format: 'generic', secret: SECRET }];
  const policy = (p: Partial<TargetPolicy> = {}): TargetPolicy => ({
    allowPrivate: false,
    allowNetworks: [],
    ...p,
  });
  const send = (url: string, targets: TargetPolicy) =>
    sendNotification(hook(url), notification, 'https://ferry.example', clock, targets);

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      if (req.url === '/bounce')
        res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => receiver?.close(r));
  });

  it('refuses loopback, cloud metadata and a name that resolves inside, and sends nothing there', async () => {
    await expect(send(`${base}/generic`, policy())).rejects.toThrow(
      /webhook soc: refused: 127\.0\.0\.1, an internal address \(loopback\).*allowPrivateTargets/,
    );
    await expect(send('http://169.254.169.254/latest/meta-data/', policy())).rejects.toThrow(
      /refused: .*link-local/,
    );
    await expect(send('http://[::ffff:10.0.0.5]/x', policy())).rejects.toThrow(/refused: .*private/);
    const rebinding = policy({ resolve: async () => [{ address: '10.0.0.5', family: 4 }] });
    await expect(send('https://hooks.example.com/x', rebinding)).rejects.toThrow(
      /refused: hooks\.example\.com resolves to 10\.0\.0\.5/,
    );
    expect(hits).toEqual([]);
  });

  it('sends where alerts.allowTargetNetworks or allowPrivateTargets allows, and follows no redirect', async () => {
    await send(`${base}/allowed-network`, policy({ allowNetworks: ['127.0.0.0/8'] }));
    await send(`${base}/allowed-private`, policy({ allowPrivate: true }));
    await expect(send(`${base}/bounce`, policy({ allowNetworks: ['127.0.0.1'] }))).rejects.toThrow(
      /webhook soc: HTTP 307/,
    );
    expect(hits).toEqual(['/allowed-network', '/allowed-private', '/bounce']);
  });
});

describe.each(ENGINES)('a PIM webhook that refuses for good (%s)', (engine) => {
  let ferry: TestFerry;
  let receiver: Server;
  const hits: string[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      // a deleted Slack webhook answers 404 (here 410); a receiver that is down answers 503; a flaky one
      // is down for six tries, then answers one 410 while it comes back
      const flakyTry = hits.filter((h) => h === '/flaky').length;
      const gone = req.url === '/gone' || (req.url === '/flaky' && flakyTry > 6);
      res.writeHead(gone ? 410 : req.url === '/busy' ? 429 : 503).end();
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    ferry = await startTestFerry(engine, {
      config: {
        alerts: { allowTargetNetworks: ['127.0.0.1/32'] },
        pim: {
          webhooks: [
            { name: 'gone', url: `${base}/gone`, format: 'slack' },
            { name: 'busy', url: `${base}/busy`, format: 'slack' },
            { name: 'down', url: `${base}/down`, format: 'slack' },
            { name: 'flaky', url: `${base}/flaky`, format: 'slack' },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('is dropped after a bounded number of tries, audited and counted; a busy or failing one keeps its backoff', async () => {
    const { store, clock } = ferry.services;
    await store.db.transaction().execute(async (trx) => {
      for (const webhook of ['gone', 'busy', 'down', 'flaky'])
        await enqueueEvent(trx, clock, {
          type: 'pim.notification',
          webhook,
          change: 'requested',
          actor: 'operator:test',
          reason: null,
          activation: { id: 'act-1', state: 'requested', userName: 'dev', target: 'aws:1/Admin' },
        } as unknown as DomainEvent);
    });
    const pending = () =>
      store.db
        .selectFrom('outbox')
        .select(['payload', 'attempts'])
        .where('type', '=', 'pim.notification')
        .where('processed_at', 'is', null)
        .execute()
        .then((rows) => rows.map((r) => JSON.parse(r.payload).webhook as string).sort());
    for (let attempt = 1; attempt <= REFUSED_NOTIFICATION_ATTEMPTS + 2; attempt++) {
      await ferry.workers.drainOnce();
      // the next retry now, not after its backoff
      await store.db
        .updateTable('outbox')
        .set({ available_at: '2000-01-01T00:00:00.000Z' })
        .where('processed_at', 'is', null)
        .execute();
      if (attempt < REFUSED_NOTIFICATION_ATTEMPTS)
        expect(await pending()).toEqual(['busy', 'down', 'flaky', 'gone']);
    }
    // the flaky receiver's one refusal after six failures of another kind counts as the first, not the seventh
    expect(await pending()).toEqual(['busy', 'down', 'flaky']);
    const flaky = await store.db
      .selectFrom('outbox')
      .select(['attempts', 'last_error'])
      .where('type', '=', 'pim.notification')
      .where('payload', 'like', '%"webhook":"flaky"%')
      .executeTakeFirstOrThrow();
    expect(flaky.attempts).toBe(REFUSED_NOTIFICATION_ATTEMPTS + 2);
    expect(flaky.last_error).toMatch(/HTTP 410.*\(permanent refusal 1 of 5\)$/);
    expect(hits.filter((h) => h === '/gone')).toHaveLength(REFUSED_NOTIFICATION_ATTEMPTS);
    expect(hits.filter((h) => h === '/down')).toHaveLength(REFUSED_NOTIFICATION_ATTEMPTS + 2);

    const res = await ferry.api('/api/v1/audit/events?type=pim.notification-dropped');
    expect(res.status).toBe(200);
    const events = ((await res.json()) as { items: unknown[] }).items;
    expect(events).toEqual([
      expect.objectContaining({
        type: 'pim.notification-dropped',
        outcome: 'failure',
        subject: 'gone',
        data: expect.objectContaining({
          webhook: 'gone',
          activationId: 'act-1',
          change: 'requested',
          status: 410,
          attempts: REFUSED_NOTIFICATION_ATTEMPTS,
        }),
      }),
    ]);
    const counted = await ferry.services.metrics.registry
      .getSingleMetric('ferry_pim_notifications_total')!
      .get();
    const count = (webhook: string, outcome: string) =>
      counted.values.find((v) => v.labels.webhook === webhook && v.labels.outcome === outcome)?.value ?? 0;
    expect(count('gone', 'dropped')).toBe(1);
    expect(count('gone', 'retrying')).toBe(REFUSED_NOTIFICATION_ATTEMPTS - 1);
    expect(count('busy', 'dropped')).toBe(0);
    expect(count('down', 'retrying')).toBe(REFUSED_NOTIFICATION_ATTEMPTS + 2);
  });
});
