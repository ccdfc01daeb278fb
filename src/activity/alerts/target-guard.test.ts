import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { type SmtpServer, startSmtpServer } from '../../../test/support/smtp.js';
import type { AuditContext } from '../../audit/actor.js';
import { AlertDelivery } from './delivery.js';
import { AlertSinks } from './sinks.js';
import {
  AlertSinkTargetRefused,
  AlertSinkTargetUnresolvable,
  checkedAddresses,
  internalReason,
  isCidr,
  type ResolvedAddress,
  type TargetPolicy,
} from './target-guard.js';

const HMAC_KEY = `${'t'.repeat(24)}target-guard-hmac-key`;
const ADMIN: AuditContext = { actor: { type: 'operator', name: 'target-guard-test' } };

describe('which addresses are internal', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.10', 'private'],
    ['100.64.0.1', 'shared address space'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fd00:ec2::254', 'unique local'],
    ['fc00::1', 'unique local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['192.0.0.170', 'IETF protocol'],
    ['198.19.1.1', 'benchmarking'],
    ['168.63.129.16', 'Azure'],
    ['fec0::1', 'site-local'],
    ['64:ff9b:1::a9fe:a9fe', 'NAT64'],
    ['2002:a9fe:a9fe::1', '6to4'],
  ])('%s is %s', (address, why) => {
    expect(internalReason(address)).toContain(why);
  });

  it.each([
    '203.0.113.7',
    '8.8.8.8',
    '172.32.0.1',
    '192.169.0.1',
    '2001:db8::1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
  ])('%s is not internal', (address) => {
    expect(internalReason(address)).toBeNull();
  });

  it('reads CIDR blocks for the allow list', () => {
    expect(['10.20.0.0/16', '127.0.0.1', 'fd00::/8', '::1/128'].every(isCidr)).toBe(true);
    expect(['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', 'fd00::/129', ''].some(isCidr)).toBe(false);
  });
});

describe('checking a target', () => {
  const policy = (extra: Partial<TargetPolicy> = {}, answers: ResolvedAddress[] = []): TargetPolicy => ({
    allowPrivate: false,
    allowNetworks: [],
    resolve: async () => answers,
    ...extra,
  });

  it('refuses a name when any of its addresses is internal, and says which and why', async () => {
    const mixed = policy({}, [
      { address: '203.0.113.7', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ]);
    await expect(checkedAddresses('hook.example.com', mixed)).rejects.toThrow(
      /hook.example.com resolves to 10.0.0.5, an internal address \(private \(RFC 1918\)\).*allowPrivateTargets/,
    );
    await expect(checkedAddresses('[::1]', policy())).rejects.toBeInstanceOf(AlertSinkTargetRefused);
    expect(
      await checkedAddresses('hook.example.com', policy({}, [{ address: '203.0.113.7', family: 4 }])),
    ).toEqual([{ address: '203.0.113.7', family: 4 }]);
  });

  it('lets the allow list and allowPrivateTargets through, and says when a name does not resolve', async () => {
    const relay = [{ address: '10.20.1.5', family: 4 as const }];
    expect(await checkedAddresses('smtp.corp', policy({ allowNetworks: ['10.20.0.0/16'] }, relay))).toEqual(
      relay,
    );
    await expect(
      checkedAddresses('smtp.corp', policy({ allowNetworks: ['10.30.0.0/16'] }, relay)),
    ).rejects.toBeInstanceOf(AlertSinkTargetRefused);
    expect(await checkedAddresses('127.0.0.1', policy({ allowPrivate: true }))).toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);
    await expect(checkedAddresses('nowhere.invalid', policy())).rejects.toBeInstanceOf(
      AlertSinkTargetUnresolvable,
    );
  });
});

describe.each(ENGINES)('alert sinks may not reach internal addresses by default (%s)', (engine) => {
  let ferry: TestFerry;
  let server: Server;
  let base: string;
  let port: number;
  let smtp: SmtpServer;
  const got: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    base = `http://127.0.0.1:${port}`;
    smtp = await startSmtpServer();
    // the default: no alerts.allowPrivateTargets
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
    await smtp?.close();
    await new Promise((r) => server.close(() => r(undefined)));
  });

  const addSink = (body: Record<string, unknown>) =>
    ferry.api('/api/v1/alerts/sinks', { method: 'POST', body: JSON.stringify(body) });

  it('refuses loopback, metadata, private and mapped addresses at creation with a 400 problem', async () => {
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ type: 'webhook', url: `${base}/hook`, secret: HMAC_KEY }, /127\.0\.0\.1.*loopback/],
      [
        { type: 'webhook', url: 'http://169.254.169.254/latest/meta-data/', secret: HMAC_KEY },
        /169\.254\.169\.254.*link-local/,
      ],
      [{ type: 'webhook', url: `http://[::1]:${port}/`, secret: HMAC_KEY }, /::1.*loopback/],
      [{ type: 'webhook', url: 'http://[::ffff:7f00:1]/', secret: HMAC_KEY }, /loopback/],
      [{ type: 'webhook', url: 'http://0.0.0.0/', secret: HMAC_KEY }, /unspecified/],
      [{ type: 'slack', url: 'https://192.168.1.10/services/T/B/C' }, /private/],
      [{ type: 'webhook', url: 'http://[fd00:ec2::254]/', secret: HMAC_KEY }, /unique local/],
      [{ type: 'webhook', url: `http://localhost:${port}/`, secret: HMAC_KEY }, /localhost resolves to/],
      [
        {
          type: 'email',
          host: '10.0.0.5',
          port: 6379,
          from: 'ferry@contoso.example',
          to: ['soc@contoso.example'],
        },
        /10\.0\.0\.5.*private/,
      ],
      [
        {
          type: 'email',
          host: smtp.host,
          port: smtp.port,
          from: 'ferry@contoso.example',
          to: ['soc@contoso.example'],
        },
        /loopback/,
      ],
    ];
    for (const [i, [body, reason]] of refused.entries()) {
      const res = await addSink({ name: `internal-${i}`, ...body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as { type: string; detail: string };
      expect(problem.type).toBe('https://ferry.dev/problems/alert-sink-target-refused');
      expect(problem.detail).toMatch(reason);
      expect(problem.detail).toMatch(/alerts\.allowPrivateTargets/);
    }
    expect(await ferry.services.alertSinks.list()).toEqual([]);
    const added = await ferry.services.store.db
      .selectFrom('audit_events')
      .select('type')
      .where('type', '=', 'alert-sink.added')
      .execute();
    expect(added).toEqual([]);
  });

  it('checks again at send time: a name that now resolves inside is a failed, audited delivery, never a request', async () => {
    let answer = '203.0.113.7';
    const targets: TargetPolicy = {
      allowPrivate: false,
      allowNetworks: [],
      resolve: async () => [{ address: answer, family: 4 }],
    };
    const { store, clock, masterKey } = ferry.services;
    const sinks = new AlertSinks(store, clock, masterKey, { targets });
    const delivery = new AlertDelivery(
      { store, clock, sinks, targets },
      { maxPerSinkPerHour: 100, maxAttempts: 5 },
    );
    // At creation the name resolves outside…
    await sinks.add(ADMIN, {
      name: `rebind-${engine}`,
      type: 'webhook',
      url: `http://hook.rebind.test:${port}/hook`,
      secret: HMAC_KEY,
    });
    // …then its DNS answers with loopback (rebinding).
    answer = '127.0.0.1';
    const [alert] = await ferry.services.detections.observe([
      {
        kind: 'finding',
        finding: {
          rule: 'root-activity',
          title: 'Root used the console',
          subject: `root-${engine}`,
          account: '123456789012',
          occurredAt: clock.now(),
          evidence: `evidence-rebind-${engine}`,
          details: {},
        },
      },
    ]);
    const before = got.length;
    expect(await delivery.deliver(alert!.id, `rebind-${engine}`)).toBe('failed');
    expect(got.length).toBe(before);
    const row = await store.db
      .selectFrom('alert_deliveries')
      .selectAll()
      .where('alert_id', '=', alert!.id)
      .where('sink', '=', `rebind-${engine}`)
      .executeTakeFirstOrThrow();
    // failed at once: retrying cannot make an internal address external
    expect(row).toMatchObject({ state: 'failed' });
    expect(Number(row.attempts)).toBe(1);
    expect(row.last_error).toMatch(/refused: hook\.rebind\.test resolves to 127\.0\.0\.1.*loopback/);
    const audited = await store.db
      .selectFrom('audit_events')
      .select(['type', 'outcome', 'data'])
      .where('type', '=', 'alert.delivery-failed')
      .where('subject', '=', `rebind-${engine}`)
      .execute();
    expect(audited).toHaveLength(1);
    expect(audited[0]!.outcome).toBe('failure');
    expect(audited[0]!.data).toMatch(/loopback/);
  });

  it('connects to the address it checked (no second lookup), and an allowed network is reached', async () => {
    // hook.pinned.test exists in no DNS: the request can only arrive if Ferry connects to the address
    // its own check resolved.
    const targets: TargetPolicy = {
      allowPrivate: false,
      allowNetworks: ['127.0.0.0/8'],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    };
    const { store, clock, masterKey } = ferry.services;
    const sinks = new AlertSinks(store, clock, masterKey, { targets });
    const delivery = new AlertDelivery(
      { store, clock, sinks, targets },
      { maxPerSinkPerHour: 100, maxAttempts: 5 },
    );
    await sinks.add(ADMIN, {
      name: `pinned-${engine}`,
      type: 'webhook',
      url: `http://hook.pinned.test:${port}/pinned`,
      secret: HMAC_KEY,
    });
    await sinks.add(ADMIN, {
      name: `pinned-mail-${engine}`,
      type: 'email',
      host: 'smtp.pinned.test',
      port: smtp.port,
      from: 'ferry@contoso.example',
      to: ['soc@contoso.example'],
    });
    const before = got.length;
    await delivery.test(ADMIN, `pinned-${engine}`);
    expect(got.length).toBe(before + 1);
    expect(got.at(-1)!.headers.host).toBe(`hook.pinned.test:${port}`);
    const mails = smtp.messages.length;
    await delivery.test(ADMIN, `pinned-mail-${engine}`);
    await smtp.waitFor(mails + 1);
  });
});
