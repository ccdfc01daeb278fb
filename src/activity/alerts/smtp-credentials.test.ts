import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { type SmtpServer, startSmtpServer } from '../../../test/support/smtp.js';
import type { AuditContext } from '../../audit/actor.js';
import { AlertDelivery } from './delivery.js';
import { AlertSinks } from './sinks.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'smtp-credentials-test' } };
const PASSWORD = 'smtp-password-never-in-plaintext-42';

/**
 * An SMTP server that offers AUTH but no STARTTLS and records every byte it receives: what a client
 * that sends credentials without TLS would hand to anyone on the path.
 */
async function recordingSmtp(): Promise<{ server: Server; port: number; received: () => string }> {
  let bytes = '';
  const server = createServer((socket: Socket) => {
    socket.setEncoding('utf8');
    socket.write('220 plain.test ESMTP\r\n');
    let line = '';
    let inData = false;
    socket.on('data', (chunk: string) => {
      bytes += chunk;
      line += chunk;
      for (let i = line.indexOf('\r\n'); i >= 0; i = line.indexOf('\r\n')) {
        const cmd = line.slice(0, i);
        line = line.slice(i + 2);
        if (inData) {
          if (cmd === '.') {
            inData = false;
            socket.write('250 queued\r\n');
          }
          continue;
        }
        const verb = cmd.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write('250-plain.test\r\n250 AUTH PLAIN LOGIN\r\n');
        else if (verb === 'AUTH') socket.write('235 accepted\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else if (verb === 'STARTTLS') socket.write('502 not here\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, received: () => bytes };
}

describe.each(ENGINES)('SMTP sinks never send credentials in plaintext (%s)', (engine) => {
  let ferry: TestFerry;
  let plain: Awaited<ReturnType<typeof recordingSmtp>>;
  let smtp: SmtpServer;

  beforeAll(async () => {
    plain = await recordingSmtp();
    smtp = await startSmtpServer();
    ferry = await startTestFerry(engine, { config: { alerts: { allowPrivateTargets: true } } });
  });
  afterAll(async () => {
    await ferry?.close();
    await smtp?.close();
    await new Promise((r) => plain?.server.close(r));
  });

  const addSink = (body: Record<string, unknown>) =>
    ferry.api('/api/v1/alerts/sinks', { method: 'POST', body: JSON.stringify(body) });
  const mail = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'email',
    host: '127.0.0.1',
    port: plain.port,
    from: 'ferry@contoso.example',
    to: ['soc@contoso.example'],
    ...extra,
  });
  const leaked = () => {
    const sent = plain.received();
    const plainAuth = Buffer.from(`\0ferry\0${PASSWORD}`).toString('base64');
    const loginAuth = Buffer.from(PASSWORD).toString('base64');
    return sent.includes(PASSWORD) || sent.includes(plainAuth) || sent.includes(loginAuth);
  };

  it('refuses requireTls false for a sink with a user, even on loopback', async () => {
    const res = await addSink(mail('plain-auth', { user: 'ferry', password: PASSWORD, requireTls: false }));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(JSON.stringify(await res.json())).toMatch(/requireTls cannot be false/);
    expect((await ferry.services.alertSinks.list()).map((s) => s.name)).not.toContain('plain-auth');
  });

  it('a sink with a user requires TLS by default: a server without STARTTLS never sees the password', async () => {
    const res = await addSink(mail('default-auth', { user: 'ferry', password: PASSWORD }));
    expect(res.status).toBe(201);
    expect(((await res.json()) as { settings: Record<string, unknown> }).settings).toMatchObject({
      requireTls: true,
      user: 'ferry',
    });
    const test = await ferry.api('/api/v1/alerts/sinks/default-auth/test', { method: 'POST' });
    expect(test.status).not.toBe(200);
    expect(plain.received()).toMatch(/EHLO/); // it did connect…
    expect(plain.received()).not.toMatch(/^AUTH/m); // …and stopped before credentials
    expect(leaked()).toBe(false);
  });

  it('a sink stored with requireTls false and a user (before this was refused) still never sends it in plaintext', async () => {
    const { store, clock, masterKey } = ferry.services;
    const targets = ferry.services.outboundTargets;
    const sinks = new AlertSinks(store, clock, masterKey, { targets });
    await addSink(mail('legacy-auth', { user: 'ferry', password: PASSWORD }));
    const row = await store.db
      .selectFrom('alert_sinks')
      .select('settings')
      .where('name', '=', 'legacy-auth')
      .executeTakeFirstOrThrow();
    await store.db
      .updateTable('alert_sinks')
      .set({ settings: JSON.stringify({ ...JSON.parse(row.settings), requireTls: false }) })
      .where('name', '=', 'legacy-auth')
      .execute();
    const delivery = new AlertDelivery(
      { store, clock, sinks, targets },
      { maxPerSinkPerHour: 100, maxAttempts: 5 },
    );
    await expect(delivery.test(ADMIN, 'legacy-auth')).rejects.toThrow(/STARTTLS|TLS/);
    expect(plain.received()).not.toMatch(/^AUTH/m);
    expect(leaked()).toBe(false);
  });

  it('a relay without a user still takes plain SMTP (the real server, aiosmtpd)', async () => {
    const res = await addSink(mail('relay', { host: smtp.host, port: smtp.port }));
    expect(res.status).toBe(201);
    expect(((await res.json()) as { settings: Record<string, unknown> }).settings).toMatchObject({
      requireTls: false,
      user: null,
    });
    const before = smtp.messages.length;
    expect((await ferry.api('/api/v1/alerts/sinks/relay/test', { method: 'POST' })).status).toBe(200);
    await smtp.waitFor(before + 1);
  });
});
