import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { awsCli, type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import { freePort } from '../../test/support/process.js';
import { s3HeadDestination } from '../aws/audit-heads-s3.js';
import { ManualClock } from '../clock.js';
import { AuditSigningKeys } from '../keys/audit-signing-keys.js';
import { MasterKey } from '../keys/master-key.js';
import { openStore, type Store } from '../store/open.js';
import { fileDestination, HeadExporter, readHeads, webhookDestination } from './export.js';
import { appendAudit } from './ledger.js';
import { Sequencer } from './sequencer.js';
import type { SignedTreeHead } from './tree-head.js';
import { verifyLedger } from './verify.js';

/** the test's receivers listen on loopback, which the target guard refuses unless allowed */
const LOOPBACK_ALLOWED = { allowPrivate: false, allowNetworks: ['127.0.0.1/32'] };

describe.each(ENGINES)('publishing signed tree heads on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let keys: AuditSigningKeys;
  let sequencer: Sequencer;
  let dir: string;

  beforeAll(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url);
    keys = new AuditSigningKeys(store, new ManualClock(), new MasterKey(randomBytes(32)));
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  beforeEach(async () => {
    for (const t of ['audit_events', 'audit_tree_nodes', 'audit_tree_heads', 'audit_exports'] as const)
      await store.db.deleteFrom(t).execute();
    await store.db.updateTable('audit_sequencer').set({ holder: null, lease_until: null }).execute();
    clock = new ManualClock('2026-03-01T09:00:00.000Z');
    sequencer = new Sequencer({ store, clock, keys });
    dir = mkdtempSync(join(tmpdir(), 'ferry-heads-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const appendAndSeal = async (n: number) => {
    for (let i = 0; i < n; i++)
      await store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: 'user.updated',
          outcome: 'success',
          actor: { type: 'system', name: 'test' },
          subject: `u${i}`,
        }),
      );
    await sequencer.sealAll();
  };

  it('publishes each new head to a directory, and verify --against then catches a truncation that removed the heads too', async () => {
    const exporter = new HeadExporter({ store, clock }, [fileDestination(dir)]);
    await appendAndSeal(5);
    expect(await exporter.exportDue()).toBe(1);
    expect(await exporter.exportDue()).toBe(0); // nothing new
    await appendAndSeal(3);
    expect(await exporter.exportDue()).toBe(1);
    expect(readdirSync(dir)).toEqual(['0000000000000005.json', '0000000000000008.json']);
    const published = readHeads([dir]);
    const trusted = await keys.trusted();
    expect(await verifyLedger(store.db, { keys: trusted, against: published })).toMatchObject({
      ok: true,
      headsChecked: 4,
    });
    // Someone with database access removes the newest events and every head that covered them.
    await store.db.deleteFrom('audit_events').where('leaf_index', '>=', 5).execute();
    await store.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 5).execute();
    expect((await verifyLedger(store.db, { keys: trusted })).ok).toBe(true);
    const against = await verifyLedger(store.db, { keys: trusted, against: published });
    expect(against.ok).toBe(false);
    expect(against.firstBad?.reason).toMatch(/published head signs 8 events but the database's tree has 5/);
    // A head the database rewrote cannot replace the published file either.
    await appendAndSeal(3);
    await expect(
      fileDestination(dir).publish(
        (await import('./verify.js')).headFromRow(
          await store.db
            .selectFrom('audit_tree_heads')
            .selectAll()
            .where('tree_size', '=', 8)
            .executeTakeFirstOrThrow(),
        ),
      ),
    ).rejects.toThrow(/holds another head of 8 events/);
  });

  it('a destination that is down is retried with backoff and reported, while the others still get every head', async () => {
    const received: SignedTreeHead[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push(JSON.parse(body) as SignedTreeHead);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/heads`;
    const downUrl = `http://127.0.0.1:${await freePort()}/heads`;
    try {
      const exporter = new HeadExporter({ store, clock }, [
        webhookDestination(url, { targets: LOOPBACK_ALLOWED }),
        webhookDestination(downUrl, { targets: LOOPBACK_ALLOWED, timeoutMs: 2_000 }),
      ]);
      await appendAndSeal(4);
      expect(await exporter.exportDue()).toBe(1);
      expect(received.map((h) => h.treeSize)).toEqual([4]);
      const [up, down] = await exporter.status();
      expect(up).toMatchObject({ treeSize: 4, failures: 0, lastError: null });
      expect(down).toMatchObject({ treeSize: 0, failures: 1, nextAttemptAt: '2026-03-01T09:00:05.000Z' });
      expect(down!.lastError).toBeTruthy();
      // Not again before the backoff has passed…
      await appendAndSeal(1);
      await exporter.exportDue();
      expect((await exporter.status())[1]).toMatchObject({ failures: 1 });
      expect(received.map((h) => h.treeSize)).toEqual([4, 5]);
      // …then again, with the delay doubled.
      clock.advance(5_000);
      await exporter.exportDue();
      expect((await exporter.status())[1]).toMatchObject({
        failures: 2,
        nextAttemptAt: '2026-03-01T09:00:15.000Z',
      });
    } finally {
      server.close();
    }
  });

  it('a webhook destination on an internal address is refused (target guard) and nothing is sent there', async () => {
    let hits = 0;
    const server: Server = createServer((req, res) => {
      hits += 1;
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/heads`;
    try {
      const exporter = new HeadExporter({ store, clock }, [
        webhookDestination(url, { targets: { allowPrivate: false, allowNetworks: [] } }),
        webhookDestination('http://169.254.169.254/latest/heads', {
          targets: { allowPrivate: false, allowNetworks: ['127.0.0.1/32'] },
        }),
      ]);
      await appendAndSeal(2);
      expect(await exporter.exportDue()).toBe(0);
      const [loopback, metadata] = await exporter.status();
      expect(loopback!.lastError).toMatch(
        /127\.0\.0\.1, an internal address \(loopback\).*allowPrivateTargets/,
      );
      expect(metadata!.lastError).toMatch(/169\.254\.169\.254, an internal address \(link-local/);
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe('publishing signed tree heads to S3 (moto)', () => {
  let aws: LocalAws;
  let tdb: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    aws = await startLocalAws();
    tdb = await createMigratedTestDatabase('sqlite');
    store = openStore(tdb.url);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
    await aws?.stop();
  });

  it('writes each head under COMPLIANCE retention in a bucket with Object Lock, and plainly in one without', async () => {
    const clock = new ManualClock('2026-03-01T09:00:00.000Z');
    expect(
      (
        await awsCli(aws, [
          's3api',
          'create-bucket',
          '--bucket',
          'ferry-heads-locked',
          '--object-lock-enabled-for-bucket',
        ])
      ).code,
    ).toBe(0);
    expect((await awsCli(aws, ['s3api', 'create-bucket', '--bucket', 'ferry-heads-plain'])).code).toBe(0);
    const keys = new AuditSigningKeys(store, clock, new MasterKey(randomBytes(32)));
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'x',
        outcome: 'success',
        actor: { type: 'anonymous' },
      }),
    );
    await new Sequencer({ store, clock, keys }).sealAll();
    const common = { prefix: 'ferry/', retainDays: 30, region: aws.region, endpoint: aws.endpoint };
    const exporter = new HeadExporter({ store, clock }, [
      s3HeadDestination({ ...common, bucket: 'ferry-heads-locked' }, clock),
      s3HeadDestination({ ...common, bucket: 'ferry-heads-plain' }, clock),
    ]);
    expect(await exporter.exportDue()).toBe(2);
    const key = 'ferry/0000000000000001.json';
    // (moto answers GetObjectRetention with a 500; HeadObject reports the same lock.)
    const locked = await awsCli(aws, [
      's3api',
      'head-object',
      '--bucket',
      'ferry-heads-locked',
      '--key',
      key,
    ]);
    expect(locked.code, locked.stderr).toBe(0);
    expect(JSON.parse(locked.stdout)).toMatchObject({ ObjectLockMode: 'COMPLIANCE' });
    expect(JSON.parse(locked.stdout).ObjectLockRetainUntilDate).toMatch(/^2026-03-31/);
    const plain = await awsCli(aws, ['s3api', 'head-object', '--bucket', 'ferry-heads-plain', '--key', key]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).ObjectLockMode).toBeUndefined();
    const got = await awsCli(aws, ['s3', 'cp', `s3://ferry-heads-plain/${key}`, '-']);
    const head = JSON.parse(got.stdout) as SignedTreeHead;
    expect(head.treeSize).toBe(1);
    expect(await verifyLedger(store.db, { keys: await keys.trusted(), against: [head] })).toMatchObject({
      ok: true,
    });
  }, 120_000);
});
