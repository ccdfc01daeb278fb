import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { verifySignature } from '../../access/pim/notifications.js';
import { migrateToLatest } from '../../store/migrate.js';
import { openStore } from '../../store/open.js';
import { AlertSinks, type ConfigSink } from './sinks.js';

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

  it('refuses an API sink with the name of a config sink (409 naming alerts.sinks), and its removal through the API', async () => {
    const taken = await ferry.api('/api/v1/alerts/sinks', {
      method: 'POST',
      body: JSON.stringify({ name: 'cfg-hook', type: 'slack', url: `${base}/services/T/B/taken` }),
    });
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toContain('application/problem+json');
    expect(await taken.json()).toMatchObject({
      type: 'https://ferry.dev/problems/alert-sink-declared-in-config',
      sink: 'cfg-hook',
      owner: 'alerts.sinks',
      detail: expect.stringMatching(
        /the config file declares an alert sink named cfg-hook \(alerts\.sinks\)/,
      ),
    });
    const removal = await ferry.api('/api/v1/alerts/sinks/cfg-hook', { method: 'DELETE' });
    expect(removal.status).toBe(409);
    expect(((await removal.json()) as { detail: string }).detail).toMatch(/remove it there/);
    expect((await ferry.services.alertSinks.list()).map((s) => s.name)).toContain('cfg-hook');
  });

  // PostgreSQL: the table lock. (On SQLite every transaction begins immediate, so instances in their own
  // processes take turns; two connections in this one process would block its event loop instead.)
  if (engine === 'postgres')
    it('two instances syncing the config at once leave exactly the declared sinks, each added once', async () => {
      const declared: ConfigSink[] = [
        ...ferry.services.config.alerts.sinks,
        { name: 'race-a', type: 'webhook', url: `${base}/race-a`, secretEnv: envName },
        { name: 'race-b', type: 'slack', url: `${base}/services/T/B/race-b` },
      ];
      const stores = [openStore(ferry.db.url, { poolSize: 2 }), openStore(ferry.db.url, { poolSize: 2 })];
      try {
        await migrateToLatest(stores[0]!);
        const instances = stores.map(
          (store) =>
            new AlertSinks(store, ferry.services.clock, ferry.services.masterKey, {
              targets: { allowPrivate: true, allowNetworks: [] },
              configNames: declared.map((d) => d.name),
            }),
        );
        for (let round = 0; round < 3; round++)
          await Promise.all(instances.map((sinks) => sinks.syncFromConfig(declared)));
        const names = (await ferry.services.alertSinks.list()).filter((s) => s.createdBy === 'config-file');
        expect(names.map((s) => s.name)).toEqual(['cfg-hook', 'cfg-slack', 'race-a', 'race-b']);
        const added = await ferry.services.store.db
          .selectFrom('audit_events')
          .select('subject')
          .where('type', '=', 'alert-sink.added')
          .where('subject', 'in', ['race-a', 'race-b'])
          .execute();
        expect(added.map((a) => a.subject).sort()).toEqual(['race-a', 'race-b']);
        // and once more, declaring fewer: both remove race-b, once
        await Promise.all(
          instances.map((sinks) => sinks.syncFromConfig(declared.filter((d) => d.name !== 'race-b'))),
        );
        expect((await ferry.services.alertSinks.list()).map((s) => s.name)).not.toContain('race-b');
        const removed = await ferry.services.store.db
          .selectFrom('audit_events')
          .select('subject')
          .where('type', '=', 'alert-sink.removed')
          .where('subject', '=', 'race-b')
          .execute();
        expect(removed).toHaveLength(1);
      } finally {
        for (const store of stores) await store.close();
      }
    });

  it('does not overwrite an API sink the config later declares: reports it at start and in /readyz', async () => {
    const api = await ferry.api('/api/v1/alerts/sinks', {
      method: 'POST',
      body: JSON.stringify({ name: 'soc-first', type: 'slack', url: `${base}/services/T/B/api-first` }),
    });
    expect(api.status).toBe(201);
    // Another instance (same database and master key) whose config now declares that name too.
    const second = await startTestFerry(engine, {
      db: ferry.db,
      config: {
        keys: { masterKey: ferry.services.config.keys.masterKey },
        alerts: {
          allowPrivateTargets: true,
          sinks: [
            ...ferry.services.config.alerts.sinks,
            { name: 'soc-first', type: 'webhook', url: `${base}/from-config`, secretEnv: envName },
          ],
        },
      },
    });
    try {
      const kept = (await second.services.alertSinks.list()).find((s) => s.name === 'soc-first');
      expect(kept).toMatchObject({ type: 'slack', createdBy: expect.not.stringMatching(/^config-file$/) });
      // the detail is for an admin with audit:read (or the metrics token); anonymous callers see { ok: false }
      expect(await (await second.api('/readyz', { auth: false })).json()).toEqual({
        status: 'ready',
        database: 'ok',
        alertSinks: { ok: false },
      });
      const ready = (await (await second.api('/readyz')).json()) as Record<string, unknown>;
      expect(ready).toMatchObject({
        status: 'ready',
        alertSinks: { ok: false, notAppliedFromConfig: [{ name: 'soc-first', createdBy: kept!.createdBy }] },
      });
      // the first instance's config does not declare it: nothing to report there
      const first = (await (await ferry.api('/readyz')).json()) as Record<string, unknown>;
      expect(first.alertSinks).toBeUndefined();
    } finally {
      await second.close();
    }
  });
});
