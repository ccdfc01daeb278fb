import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attributed,
  cloudTrailRecord,
  consoleLogin,
  identities,
} from '../../../test/support/cloudtrail-records.js';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { scimClient } from '../../../test/support/scim.js';
import { type SmtpServer, startSmtpServer } from '../../../test/support/smtp.js';
import { verifySignature } from '../../access/pim/notifications.js';
import { appendAudit } from '../../audit/ledger.js';
import { ManualClock } from '../../clock.js';
import { watchAuditOnce } from '../detections/observer.js';

interface Delivery {
  sink: string;
  state: string;
  attempts: number;
  lastError: string | null;
}
interface AlertJson {
  id: string;
  rule: string;
  subject: string;
  title: string;
  account: string | null;
  deliveries: Delivery[];
  [field: string]: unknown;
}

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver on loopback: records every POST; answers with `status()`. */
async function receiver(
  status: () => number,
): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, got, close: () => new Promise((r) => server.close(() => r())) };
}

const HMAC_KEY = `${'k'.repeat(24)}webhook-hmac-key`;
const SMTP_PASSWORD = 'smtp-password-never-logged';

describe.each(ENGINES)('detections raise alerts that reach their sinks (%s)', (engine) => {
  const clock = new ManualClock('2026-12-06T09:30:00.000Z');
  let ferry: TestFerry;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let smtp: SmtpServer;
  let hookStatus = 204;

  beforeAll(async () => {
    hook = await receiver(() => hookStatus);
    smtp = await startSmtpServer();
    ferry = await startTestFerry(engine, {
      clock,
      config: {
        detections: {
          rules: {
            'signin-failure-spike': { threshold: 3, window: '15m' },
            'provisioning-errors': { threshold: 2 },
          },
          suppress: [
            {
              rule: 'iam-credentials-created',
              from: '2026-12-06T00:00:00Z',
              until: '2026-12-07T00:00:00Z',
              reason: 'CHG-1042 break-glass rotation',
            },
          ],
        },
        alerts: { maxAttempts: 2, maxPerSinkPerHour: 4, allowPrivateTargets: true },
      },
    });
    await watchAuditOnce(ferry.services.store, clock, ferry.services.detections); // start at the end of the trail
  });
  afterAll(async () => {
    await ferry?.close();
    await hook?.close();
    await smtp?.close();
  });

  const addSink = (body: Record<string, unknown>) =>
    ferry.api('/api/v1/alerts/sinks', { method: 'POST', body: JSON.stringify(body) });
  const alerts = async () =>
    ((await (await ferry.api('/api/v1/alerts?limit=100')).json()) as { alerts: AlertJson[] }).alerts;
  const auditTypes = async () =>
    (
      await ferry.services.store.db
        .selectFrom('audit_events')
        .select(['type', 'data'])
        .orderBy('seq')
        .execute()
    ).map((r) => r.type);

  it('adds sinks with their secrets sealed and never shows them', async () => {
    expect(
      (await addSink({ name: 'soc-webhook', type: 'webhook', url: `${hook.url}/hook`, secret: HMAC_KEY }))
        .status,
    ).toBe(201);
    expect(
      (await addSink({ name: 'soc-slack', type: 'slack', url: `${hook.url}/services/T000/B000/XXXXsecret` }))
        .status,
    ).toBe(201);
    const mail = await addSink({
      name: 'soc-mail',
      type: 'email',
      host: smtp.host,
      port: smtp.port,
      from: 'ferry@contoso.example',
      to: ['soc@contoso.example'],
      user: 'ferry',
      password: SMTP_PASSWORD,
      minSeverity: 'high',
    });
    // aiosmtpd offers no AUTH: a sink with a user would fail; this one is re-added without
    expect(mail.status).toBe(201);
    expect((await ferry.api('/api/v1/alerts/sinks/soc-mail', { method: 'DELETE' })).status).toBe(204);
    expect(
      (
        await addSink({
          name: 'soc-mail',
          type: 'email',
          host: smtp.host,
          port: smtp.port,
          from: 'ferry@contoso.example',
          to: ['soc@contoso.example'],
          minSeverity: 'high',
        })
      ).status,
    ).toBe(201);
    const listed = await (await ferry.api('/api/v1/alerts/sinks')).text();
    expect(listed).not.toContain(HMAC_KEY);
    expect(listed).not.toContain('XXXXsecret');
    const rows = await ferry.services.store.db.selectFrom('alert_sinks').selectAll().execute();
    for (const r of rows)
      for (const secret of [HMAC_KEY, 'XXXXsecret', SMTP_PASSWORD])
        expect(r.secret_sealed + r.settings).not.toContain(secret);
    const audit = JSON.stringify(
      await ferry.services.store.db.selectFrom('audit_events').select('data').execute(),
    );
    expect(audit).not.toContain(HMAC_KEY);
    expect(audit).not.toContain(SMTP_PASSWORD);
    // bad input is a problem, not a 500
    const bad = await addSink({ name: 'short', type: 'webhook', url: `${hook.url}/x`, secret: 'too-short' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(
      (await addSink({ name: 'soc-webhook', type: 'slack', url: 'https://hooks.slack.com/services/T/B/C' }))
        .status,
    ).toBe(409);
  });

  it('redacts a webhook URL that carries credentials (user:password@, query) everywhere it is shown, and still delivers to the real one', async () => {
    const secretUrl = `${hook.url.replace('http://', 'http://siem-user:url-password-42@')}/ingest?token=query-secret-77&tenant=contoso`;
    expect(
      (
        await addSink({
          name: 'siem-creds',
          type: 'webhook',
          url: secretUrl,
          secret: HMAC_KEY,
          minSeverity: 'critical',
        })
      ).status,
    ).toBe(201);
    const shown = [
      await (await ferry.api('/api/v1/alerts/sinks')).text(),
      JSON.stringify(await ferry.services.alertSinks.list()),
      JSON.stringify(await ferry.services.store.db.selectFrom('audit_events').select('data').execute()),
      JSON.stringify(await ferry.services.store.db.selectFrom('alert_sinks').selectAll().execute()),
    ];
    for (const text of shown)
      for (const secret of ['url-password-42', 'query-secret-77', 'siem-user'])
        expect(text).not.toContain(secret);
    const listed = (await (await ferry.api('/api/v1/alerts/sinks')).json()) as {
      sinks: Array<{ name: string; settings: { url: string } }>;
    };
    expect(listed.sinks.find((x) => x.name === 'siem-creds')!.settings.url).toBe(
      `${hook.url.replace('http://', 'http://redacted@')}/ingest?token=redacted&tenant=redacted`,
    );
    // the sample goes to the real URL, the user and password as HTTP Basic
    const before = hook.got.length;
    expect((await ferry.api('/api/v1/alerts/sinks/siem-creds/test', { method: 'POST' })).status).toBeLessThan(
      300,
    );
    const got = hook.got.slice(before).find((g) => g.path.startsWith('/ingest'));
    expect(got!.path).toBe('/ingest?token=query-secret-77&tenant=contoso');
    expect(got!.headers.authorization).toBe(
      `Basic ${Buffer.from('siem-user:url-password-42').toString('base64')}`,
    );
    expect((await ferry.api('/api/v1/alerts/sinks/siem-creds', { method: 'DELETE' })).status).toBe(204);
  });

  it('sends a root sign-in once to the signed webhook, Slack and e-mail, and audits raise and deliveries', async () => {
    const root = attributed(consoleLogin(identities.root(), { eventTime: '2026-12-06T09:20:00Z' }));
    await ferry.services.detectionObserver([root]);
    await ferry.workers.drainOnce();
    const webhook = hook.got.find((g) => g.path === '/hook')!;
    expect(webhook).toBeDefined();
    const now = Math.floor(clock.now().getTime() / 1000);
    expect(verifySignature(HMAC_KEY, webhook.headers['ferry-signature'] as string, webhook.body, now)).toBe(
      true,
    );
    expect(
      verifySignature(HMAC_KEY, webhook.headers['ferry-signature'] as string, webhook.body, now + 600),
    ).toBe(false);
    expect(
      verifySignature('x'.repeat(40), webhook.headers['ferry-signature'] as string, webhook.body, now),
    ).toBe(false);
    const body = JSON.parse(webhook.body);
    expect(body).toMatchObject({
      type: 'ferry.alert',
      alert: { rule: 'root-activity', severity: 'critical', account: '123456789012' },
    });
    expect(webhook.headers['ferry-alert-id']).toBe(body.alert.id);
    const slack = JSON.parse(hook.got.find((g) => g.path.startsWith('/services/'))!.body);
    expect(slack.text).toContain('[critical] root user console sign-in succeeded');
    expect(slack.blocks[0].type).toBe('section');
    const [mail] = await smtp.waitFor(1);
    expect(mail!.subject).toBe(
      '[Ferry critical] root user console sign-in succeeded in account 123456789012',
    );
    expect(mail!.raw).toContain('rule:        root-activity');
    const alert = (await alerts()).find((a) => a.rule === 'root-activity');
    expect(alert!.deliveries.map((d: Delivery) => [d.sink, d.state])).toEqual([
      ['soc-mail', 'delivered'],
      ['soc-slack', 'delivered'],
      ['soc-webhook', 'delivered'],
    ]);
    const types = await auditTypes();
    expect(types.filter((t) => t === 'alert.raised')).toHaveLength(1);
    expect(types.filter((t) => t === 'alert.delivered')).toHaveLength(3);
    // The same rule and subject within the deduplication window: one alert, two occurrences, nothing sent.
    const before = hook.got.length;
    await ferry.services.detectionObserver([
      attributed(consoleLogin(identities.root(), { eventTime: '2026-12-06T09:25:00Z' })),
    ]);
    await ferry.workers.drainOnce();
    expect(hook.got.length).toBe(before);
    expect((await alerts()).find((a) => a.rule === 'root-activity')).toMatchObject({
      id: alert!.id,
      occurrences: 2,
      lastSeenAt: '2026-12-06T09:25:00.000Z',
    });
    const metrics = await ferry.services.metrics.registry.metrics();
    expect(metrics).toContain(
      'ferry_alerts_raised_total{rule="root-activity",severity="critical",suppressed="false"} 1',
    );
    expect(metrics).toContain('ferry_alert_deliveries_total{sink="soc-webhook",outcome="delivered"} 1');
  });

  it("reads Ferry's roles, SAML provider and revocations from the database for the CloudTrail rules", async () => {
    const s = ferry.services;
    const ctx = { actor: { type: 'operator' as const, name: 'test' } };
    await s.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
    await s.accounts.upsertRole(ctx, '123456789012', { name: 'Developer', maxSessionDuration: 43200 });
    await s.store.db
      .insertInto('aws_session_revocations')
      .values({
        account_id: '123456789012',
        role_name: 'Developer',
        source_identity: 'test-awsdeveloper@contoso.example',
        user_id: null,
        cutoff: '2026-12-06T09:00:00.000Z',
        reason: 'user deactivated',
        created_at: '2026-12-06T09:00:00.000Z',
        updated_at: '2026-12-06T09:00:00.000Z',
      })
      .execute();
    const developer = 'arn:aws:iam::123456789012:role/Developer';
    const provider = 'arn:aws:iam::123456789012:saml-provider/Ferry';
    const sts = (
      eventName: string,
      userIdentity: Record<string, unknown>,
      requestParameters: Record<string, unknown>,
    ) =>
      attributed(
        cloudTrailRecord({
          eventName,
          eventSource: 'sts.amazonaws.com',
          userIdentity,
          requestParameters,
          eventTime: '2026-12-06T09:27:00Z',
        }),
      );
    await s.detectionObserver([
      sts(
        'AssumeRoleWithSAML',
        identities.samlUser({ user: 'test-awsdeveloper@contoso.example', provider }),
        { roleArn: developer, principalArn: provider },
      ),
      sts('AssumeRole', identities.iamUser('mallory'), { roleArn: developer, roleSessionName: 'x' }),
      attributed(
        cloudTrailRecord({
          eventName: 'UpdateAssumeRolePolicy',
          eventSource: 'iam.amazonaws.com',
          userIdentity: identities.iamUser('mallory'),
          requestParameters: { roleName: 'Developer' },
          eventTime: '2026-12-06T09:27:00Z',
        }),
      ),
      attributed(
        cloudTrailRecord({
          eventName: 'ListBuckets',
          eventSource: 's3.amazonaws.com',
          eventTime: '2026-12-06T09:28:00Z',
          userIdentity: identities.assumedRole({
            role: 'Developer',
            session: 'test-awsdeveloper@contoso.example',
            sourceIdentity: 'test-awsdeveloper@contoso.example',
            creationDate: '2026-12-06T08:10:00Z',
          }),
        }),
      ),
    ]);
    const raised = (await alerts()).filter((a) =>
      ['session-outside-ferry', 'federation-tampering', 'revoked-credentials-used'].includes(a.rule),
    );
    expect(raised.map((a) => [a.rule, a.subject]).sort()).toEqual([
      ['federation-tampering', developer],
      ['revoked-credentials-used', 'test-awsdeveloper@contoso.example'],
      ['session-outside-ferry', developer],
    ]);
    expect(raised.find((a) => a.rule === 'session-outside-ferry')!.title).toContain(
      'AssumeRole into Ferry-managed role',
    );
    await ferry.workers.drainOnce();
  });

  it('records an alert inside a suppression window without sending it', async () => {
    const before = hook.got.length;
    const created = cloudTrailRecord({
      eventName: 'CreateAccessKey',
      eventSource: 'iam.amazonaws.com',
      userIdentity: identities.iamUser('ops'),
      requestParameters: { userName: 'break-glass' },
      eventTime: '2026-12-06T09:26:00Z',
    });
    await ferry.services.detectionObserver([attributed(created)]);
    await ferry.workers.drainOnce();
    expect(hook.got.length).toBe(before);
    const alert = (await alerts()).find((a) => a.rule === 'iam-credentials-created');
    expect(alert).toMatchObject({
      rule: 'iam-credentials-created',
      suppressedReason: 'CHG-1042 break-glass rotation',
      deliveries: [],
    });
  });

  it('counts failed sign-ins per person from the audit trail and raises at the threshold, not below', async () => {
    const { store } = ferry.services;
    const fail = (subject: string) =>
      store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: 'signin',
          outcome: 'failure',
          actor: { type: 'anonymous' },
          subject,
          ip: '203.0.113.9',
          data: { step: 'password', reason: 'bad-password' },
        }),
      );
    for (let i = 0; i < 2; i++) await fail('test-awsadmin@contoso.example');
    await fail('test-awsdeveloper@contoso.example');
    await ferry.workers.sequencer.sealAll();
    await watchAuditOnce(store, clock, ferry.services.detections);
    expect((await alerts()).filter((a) => a.rule === 'signin-failure-spike')).toHaveLength(0);
    await fail('test-awsadmin@contoso.example');
    await ferry.workers.sequencer.sealAll();
    await watchAuditOnce(store, clock, ferry.services.detections);
    const spikes = (await alerts()).filter((a) => a.rule === 'signin-failure-spike');
    expect(spikes).toHaveLength(1);
    expect(spikes[0]).toMatchObject({ subject: 'test-awsadmin@contoso.example', severity: 'medium' });
    expect(spikes[0]!.title).toContain('3 failed sign-ins for test-awsadmin@contoso.example within 15m');
  });

  it('raises when an administrator role is activated, not for other roles', async () => {
    const { store } = ferry.services;
    const activated = (target: string) =>
      store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: 'pim.activation.activated',
          outcome: 'success',
          actor: { type: 'user', id: 'u1', name: 'test-awsadmin@contoso.example' },
          subject: 'test-awsadmin@contoso.example',
          data: {
            activationId: `a-${target}`,
            target,
            from: 'approved',
            to: 'active',
            reason: 'INC-7 database failover',
            durationSeconds: 3600,
            approvals: [],
          },
        }),
      );
    await activated('aws:123456789012/Developer');
    await activated('aws:123456789012/Administrator');
    await ferry.workers.sequencer.sealAll();
    await watchAuditOnce(store, clock, ferry.services.detections);
    const found = (await alerts()).filter((a) => a.rule === 'admin-role-activated');
    expect(found).toHaveLength(1);
    expect(found[0]!.title).toBe(
      'test-awsadmin@contoso.example activated administrator role aws:123456789012/Administrator (INC-7 database failover)',
    );
  });

  it('counts SCIM requests Ferry refused as provisioning errors, raising at the threshold and not below', async () => {
    const scim = await scimClient(ferry, 'entra-provisioning');
    const bad = () => scim.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'] });
    expect((await bad()).status).toBe(400);
    expect((await alerts()).filter((a) => a.rule === 'provisioning-errors')).toHaveLength(0);
    expect((await bad()).status).toBe(400);
    // counted after the answer went out: wait for it
    let errors: AlertJson[] = [];
    for (let i = 0; i < 100 && errors.length === 0; i++) {
      errors = (await alerts()).filter((a) => a.rule === 'provisioning-errors');
      if (errors.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]!.subject).toBe('scim entra-provisioning → Ferry');
  });

  it('adds SCIM requests without a valid bearer token up into one signal: no per-request or per-caller counts, one alert', async () => {
    const before = await alerts();
    const countsBefore = await ferry.services.store.db
      .selectFrom('detection_events')
      .select(['rule', 'subject'])
      .execute();
    const hit = (headers: Record<string, string>) =>
      fetch(new URL('/scim/v2/Users', ferry.url), { headers }).then((r) => r.status);
    // a flood: 30 requests, half without a token, half with made-up ones for many "people"
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        hit(i % 2 ? { authorization: `Bearer forged-token-for-person-${i}` } : {}),
      ),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
    await new Promise((r) => setTimeout(r, 100)); // the answers' hooks ran
    // nothing was written per request: the failures wait in one aggregate
    const during = await ferry.services.store.db
      .selectFrom('detection_events')
      .select(['rule', 'subject'])
      .execute();
    expect(during).toHaveLength(countsBefore.length);
    await ferry.services.detections.flushScimAuthFailures();
    const rows = await ferry.services.store.db
      .selectFrom('detection_events')
      .selectAll()
      .where('rule', '=', 'scim-auth-failures')
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ subject: 'SCIM authentication failures' });
    expect(Number(rows[0]!.weight)).toBe(30);
    // no provisioning-errors (per connection) counted for them, and no per-person subjects anywhere
    const after = await ferry.services.store.db
      .selectFrom('detection_events')
      .select(['rule', 'subject'])
      .execute();
    expect(after.filter((r) => r.rule !== 'scim-auth-failures')).toEqual(countsBefore);
    expect(after.some((r) => r.subject.includes('forged'))).toBe(false);
    const raised = (await alerts()).filter((a) => !before.some((b) => b.id === a.id));
    expect(raised.map((a) => a.rule)).toEqual(['scim-auth-failures']);
    expect(raised[0]!.title).toBe(
      '30 SCIM requests without a valid bearer token for SCIM authentication failures within 15m (threshold 20)',
    );
    expect(raised[0]!.details).toMatchObject({ withoutToken: 15, withInvalidToken: 15 });
    // a second flood in the same hour is the same alert (its count grows), not a storm
    await Promise.all(Array.from({ length: 25 }, () => hit({})));
    await new Promise((r) => setTimeout(r, 100));
    await ferry.services.detections.flushScimAuthFailures();
    const again = (await alerts()).filter((a) => a.rule === 'scim-auth-failures');
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ occurrences: 2 });
    expect(again[0]!.title).toMatch(/^55 SCIM requests/);
  });

  it('retries a failing sink with backoff, then records the failure; `alerts test` says why a sink fails', async () => {
    hookStatus = 500;
    clock.advance(2 * 3_600_000);
    await ferry.services.detectionObserver([
      attributed(
        cloudTrailRecord({
          eventName: 'StopLogging',
          eventSource: 'cloudtrail.amazonaws.com',
          userIdentity: identities.iamUser('mallory'),
          requestParameters: { name: 'org-trail' },
          eventTime: '2026-12-06T11:31:00Z',
        }),
      ),
    ]);
    await ferry.workers.drainOnce();
    let alert = (await alerts()).find((a) => a.rule === 'cloudtrail-disabled')!;
    expect(alert.deliveries.find((d: Delivery) => d.sink === 'soc-webhook')).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'alert sink soc-webhook: HTTP 500',
    });
    clock.advance(5_000); // past the outbox's first backoff
    await ferry.workers.drainOnce();
    alert = (await alerts()).find((a) => a.rule === 'cloudtrail-disabled')!;
    expect(alert.deliveries.find((d: Delivery) => d.sink === 'soc-webhook')).toMatchObject({
      state: 'failed',
      attempts: 2,
    });
    expect(await auditTypes()).toContain('alert.delivery-failed');
    const test = await ferry.api('/api/v1/alerts/sinks/soc-webhook/test', { method: 'POST' });
    expect(test.status).toBe(502);
    expect(await test.json()).toMatchObject({
      type: 'https://ferry.dev/problems/alert-sink-unreachable',
      detail: 'alert sink soc-webhook: HTTP 500',
    });
    hookStatus = 204;
    const ok = await ferry.api('/api/v1/alerts/sinks/soc-mail/test', { method: 'POST' });
    expect(ok.status).toBe(200);
    const mails = await smtp.waitFor(3);
    expect(mails.at(-1)!.subject).toContain('Test alert from Ferry to soc-mail');
    expect((await ferry.api('/api/v1/alerts/sinks/nope/test', { method: 'POST' })).status).toBe(404);
  });

  it('rate-limits a sink per hour: alerts beyond the limit are recorded, not sent', async () => {
    clock.advance(2 * 3_600_000);
    const base = clock.now().getTime();
    for (let i = 0; i < 5; i++) {
      const t = new Date(base + i * 1000).toISOString();
      await ferry.services.detectionObserver([
        attributed(
          cloudTrailRecord({
            eventName: 'ListBuckets',
            eventSource: 's3.amazonaws.com',
            userIdentity: identities.root(`21098765432${i}`),
            eventTime: t,
            account: `21098765432${i}`,
          }),
        ),
      ]);
    }
    await ferry.workers.drainOnce();
    const states = (await alerts())
      .filter((a) => String(a.account).startsWith('2109876543'))
      .flatMap((a) =>
        a.deliveries.filter((d: Delivery) => d.sink === 'soc-webhook').map((d: Delivery) => d.state),
      );
    expect(states.filter((s: string) => s === 'delivered')).toHaveLength(4);
    expect(states.filter((s: string) => s === 'rate-limited')).toHaveLength(1);
  });
});
