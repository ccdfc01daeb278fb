import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { verifySignature } from '../../access/pim/notifications.js';

const HMAC_KEY = `${'c'.repeat(24)}config-hmac-key-from-env`;
const SLACK_PATH = '/services/T0CONFIG/B0CONFIG/slackfilesecret';

describe.each(ENGINES)('alert sinks declared in the config file (%s)', (engine) => {
  let ferry: TestFerry;
  let dir: string;
  const got: Array<{ path: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  let base: string;
  const envName = `FERRY_TEST_ALERT_HMAC_${engine.toUpperCase()}`;

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = mkdtempSync(join(tmpdir(), 'ferry-config-sinks-'));
    writeFileSync(join(dir, 'slack-url'), `${base}${SLACK_PATH}\n`, { mode: 0o600 });
    process.env[envName] = HMAC_KEY;
    ferry = await startTestFerry(engine, {
      config: {
        alerts: {
          // the receivers are listeners on loopback
          allowPrivateTargets: true,
          sinks: [
            {
              name: 'cfg-hook',
              type: 'webhook',
              url: `${base}/cfg?token=query-secret-from-config`,
              secretEnv: envName,
              minSeverity: 'high',
            },
            { name: 'cfg-slack', type: 'slack', secretFile: join(dir, 'slack-url') },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    delete process.env[envName];
    await new Promise((r) => server.close(() => r(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  const addedEvents = async () =>
    (
      await ferry.services.store.db
        .selectFrom('audit_events')
        .select('type')
        .where('type', 'in', ['alert-sink.added', 'alert-sink.removed'])
        .execute()
    ).length;

  it('creates them at start with the referenced secrets sealed, shown and audited without secrets', async () => {
    const listed = (await (await ferry.api('/api/v1/alerts/sinks')).json()) as {
      sinks: Array<{
        name: string;
        type: string;
        minSeverity: string;
        createdBy: string;
        settings: Record<string, unknown>;
      }>;
    };
    expect(listed.sinks.map((s) => [s.name, s.type, s.minSeverity, s.createdBy])).toEqual([
      ['cfg-hook', 'webhook', 'high', 'config-file'],
      ['cfg-slack', 'slack', 'low', 'config-file'],
    ]);
    expect(listed.sinks[0]!.settings.url).toBe(`${base}/cfg?token=redacted`);
    const everywhere = JSON.stringify([
      listed,
      await ferry.services.store.db.selectFrom('alert_sinks').selectAll().execute(),
      await ferry.services.store.db.selectFrom('audit_events').select('data').execute(),
    ]);
    for (const secret of [HMAC_KEY, 'slackfilesecret', 'query-secret-from-config'])
      expect(everywhere).not.toContain(secret);
  });

  it('delivers with the secrets from the references', async () => {
    expect((await ferry.api('/api/v1/alerts/sinks/cfg-hook/test', { method: 'POST' })).status).toBeLessThan(
      300,
    );
    expect((await ferry.api('/api/v1/alerts/sinks/cfg-slack/test', { method: 'POST' })).status).toBeLessThan(
      300,
    );
    const hook = got.find((g) => g.path.startsWith('/cfg'))!;
    expect(hook.path).toBe('/cfg?token=query-secret-from-config');
    const signature = String(hook.headers['ferry-signature']);
    expect(verifySignature(HMAC_KEY, signature, hook.body, Math.floor(Date.now() / 1000))).toBe(true);
    expect(got.some((g) => g.path === SLACK_PATH)).toBe(true);
  });

  it('changes nothing when started again with the same config, and removes only config sinks no longer declared', async () => {
    const before = await addedEvents();
    const declared = ferry.services.config.alerts.sinks;
    await ferry.services.alertSinks.syncFromConfig(declared);
    expect(await addedEvents()).toBe(before);
    await ferry.api('/api/v1/alerts/sinks', {
      method: 'POST',
      body: JSON.stringify({ name: 'api-sink', type: 'slack', url: `${base}/services/T/B/api` }),
    });
    await ferry.services.alertSinks.syncFromConfig(declared.filter((d) => d.name === 'cfg-hook'));
    expect((await ferry.services.alertSinks.list()).map((s) => s.name)).toEqual(['api-sink', 'cfg-hook']);
    // a reference that does not resolve is refused, naming the variable and not a value
    await expect(
      ferry.services.alertSinks.syncFromConfig([
        { name: 'x', type: 'webhook', url: base, secretEnv: 'FERRY_NOT_SET_ANYWHERE' },
      ]),
    ).rejects.toThrow(/FERRY_NOT_SET_ANYWHERE is not set/);
  });
});
