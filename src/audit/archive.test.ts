import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import { s3Archive } from '../aws/audit-heads-s3.js';
import { ManualClock } from '../clock.js';
import { AuditSigningKeys, auditKeyId } from '../keys/audit-signing-keys.js';
import { MasterKey } from '../keys/master-key.js';
import { openStore, type Store } from '../store/open.js';
import {
  type ArchiveStore,
  archiveAudit,
  archiveOnSchedule,
  fileArchive,
  manifestSignedBytes,
  proveFromArchive,
  recordedSegments,
  type SegmentManifest,
} from './archive.js';
import { ArchiveScheduler } from './archive-schedule.js';
import { type AuditEvent, appendAudit } from './ledger.js';
import { Sequencer } from './sequencer.js';
import { checkProofFile } from './tree-head.js';
import { proveConsistency, proveInclusion, type VerifyResult, verifyLedger } from './verify.js';

const TABLES = [
  'audit_archive_status',
  'audit_events',
  'audit_tree_nodes',
  'audit_tree_heads',
  'audit_signing_keys',
  'audit_archive_segments',
] as const;

async function resetLedger(store: Store): Promise<void> {
  for (const t of TABLES) await store.db.deleteFrom(t).execute();
  await store.db.updateTable('audit_sequencer').set({ holder: null, lease_until: null }).execute();
}

/** Appends `n` events one second apart (times 08:00:01, 08:00:02, …) and seals them in batches of 4. */
async function appendAndSeal(store: Store, clock: ManualClock, sequencer: Sequencer, n: number, from = 0) {
  const out: AuditEvent[] = [];
  for (let i = from; i < from + n; i++) {
    clock.advance(1_000);
    out.push(
      await store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: i % 2 ? 'signin.password' : 'user.updated',
          outcome: 'success',
          actor: { type: 'system', name: 'test' },
          subject: `user-${i}@contoso.example`,
          ip: `192.0.2.${i % 250}`,
          data: { i },
        }),
      ),
    );
  }
  await sequencer.sealAll();
  return out;
}

describe.each(ENGINES)('archiving and pruning the audit ledger on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let keys: AuditSigningKeys;
  let sequencer: Sequencer;
  let dir: string;
  let archive: ArchiveStore;
  const masterKey = new MasterKey(randomBytes(32));
  const actor = { type: 'operator', name: 'root' } as const;

  beforeAll(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url, { poolSize: 4 });
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  beforeEach(async () => {
    await resetLedger(store);
    clock = new ManualClock('2026-02-01T08:00:00.000Z');
    keys = new AuditSigningKeys(store, clock, masterKey);
    sequencer = new Sequencer({ store, clock, keys }, { batchSize: 4 });
    dir = mkdtempSync(join(tmpdir(), 'ferry-archive-'));
    archive = fileArchive(dir);
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const verify = async (withArchive = false) =>
    verifyLedger(store.db, {
      keys: await keys.trusted(),
      batch: 3,
      archive: withArchive ? archive : undefined,
    });
  const expectBroken = (result: VerifyResult, reason: RegExp, file?: RegExp, leafIndex?: number) => {
    expect(result.ok, JSON.stringify(result)).toBe(false);
    expect(result.firstBad?.reason).toMatch(reason);
    if (file) expect(result.firstBad?.file).toMatch(file);
    if (leafIndex !== undefined) expect(result.firstBad?.leafIndex).toBe(leafIndex);
  };

  /** 14 events (heads of 4, 8, 12, 14), the first 8 archived in two segments of 4. */
  async function archivedLedger() {
    const events = await appendAndSeal(store, clock, sequencer, 14);
    // Event 9 (leaf 8) is the first at or after the cutoff: leaves 0–7 go.
    const result = await archiveAudit(
      { store, clock, keys, archive },
      { before: new Date(events[8]!.time), actor, maxEvents: 4 },
    );
    // the audit.archived records are sealed as a running instance's sequencer would
    await sequencer.sealAll();
    return { events, result };
  }

  it('archives old events as signed segments, prunes them, and verification still holds, with and without the archive', async () => {
    const events = await appendAndSeal(store, clock, sequencer, 14);
    const before = new Date(events[8]!.time);
    const dry = await archiveAudit(
      { store, clock, keys, archive },
      { before, actor, maxEvents: 4, dryRun: true },
    );
    expect(dry.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([
      [0, 4],
      [4, 8],
    ]);
    expect(readdirSync(dir)).toEqual([]);
    expect((await verify()).archived).toBe(0);

    const result = await archiveAudit({ store, clock, keys, archive }, { before, actor, maxEvents: 4 });
    expect(result).toMatchObject({ dryRun: false, prunedBelow: 8 });
    expect(readdirSync(dir)).toEqual([
      '0000000000000000-0000000000000004.events.jsonl',
      '0000000000000000-0000000000000004.manifest.json',
      '0000000000000004-0000000000000008.events.jsonl',
      '0000000000000004-0000000000000008.manifest.json',
    ]);
    const left = await store.db.selectFrom('audit_events').select(['id', 'leaf_index', 'type']).execute();
    expect(left.filter((r) => r.leaf_index !== null && Number(r.leaf_index) < 8)).toEqual([]);
    // Archiving is itself audited, one event per segment.
    const archivedEvents = left.filter((r) => r.type === 'audit.archived');
    expect(archivedEvents).toHaveLength(2);
    await sequencer.sealAll();

    const plain = await verify();
    expect(plain).toMatchObject({ ok: true, archived: 8, archiveChecked: false, events: 8 });
    const full = await verify(true);
    expect(full).toMatchObject({ ok: true, archived: 8, archiveChecked: true, events: 16 });
    expect(full.headsChecked).toBeGreaterThan(plain.headsChecked);

    // Proofs for events still in the database, across the archived prefix, hold.
    const pub = (await keys.current()).publicKeyPem;
    for (const e of [events[8]!, events[9]!, events[13]!]) {
      const proof = await proveInclusion(store.db, e.id);
      expect(checkProofFile(proof, pub)).toBeNull();
    }
    expect(checkProofFile(await proveConsistency(store.db, 12), pub)).toBeNull();
    // From a head inside the archived prefix the database no longer holds the subtrees: it says so.
    await expect(proveConsistency(store.db, 4)).rejects.toThrow(
      /leaves 4–7 is archived and no longer in the database/,
    );
    // An archived event is not in the database: say where to look…
    await expect(proveInclusion(store.db, events[2]!.id)).rejects.toThrow(/archived.*--archive/);
    // …and its segment, found by the leaf in the recorded ranges, proves it against the head at the
    // segment's end; only that segment's two files are read, and the archive is not listed.
    const segments = await recordedSegments(store.db);
    expect(segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([
      [0, 4],
      [4, 8],
    ]);
    for (const leaf of [0, 2, 5, 7]) {
      const reads: string[] = [];
      const watched: ArchiveStore = {
        name: archive.name,
        put: archive.put,
        get: (name) => {
          reads.push(name);
          return archive.get(name);
        },
        list: () => {
          reads.push('(list)');
          return archive.list();
        },
      };
      const proof = await proveFromArchive(watched, events[leaf]!.id, { leafIndex: leaf, segments });
      const name = leaf < 4 ? '0000000000000000-0000000000000004' : '0000000000000004-0000000000000008';
      expect(reads).toEqual([`${name}.manifest.json`, `${name}.events.jsonl`]);
      expect(proof.head.treeSize).toBe(leaf < 4 ? 4 : 8);
      expect(checkProofFile(proof, pub)).toBeNull();
    }
    // Without the records (an auditor with the archive alone), the names carry the ranges.
    expect(checkProofFile(await proveFromArchive(archive, events[5]!.id, { leafIndex: 5 }), pub)).toBeNull();
    // A leaf that holds another event, or that no segment holds, is refused by name.
    await expect(proveFromArchive(archive, events[5]!.id, { leafIndex: 6, segments })).rejects.toThrow(
      /leaf 6 holds audit event .*, not .*check the leafIndex/,
    );
    await expect(proveFromArchive(archive, events[5]!.id, { leafIndex: 99, segments })).rejects.toThrow(
      /no segment of the archive .* holds leaf 99/,
    );

    // A second run continues from the checkpoint; nothing younger than the cutoff is taken.
    clock.advance(60_000);
    const again = await archiveAudit(
      { store, clock, keys, archive },
      { before: new Date(events[13]!.time), actor, maxEvents: 100 },
    );
    expect(again.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([[8, 12]]);
    await sequencer.sealAll();
    expect(await verify(true)).toMatchObject({ ok: true, archived: 12 });
    expect(await verify()).toMatchObject({ ok: true, archived: 12 });
    const proof = await proveFromArchive(archive, events[10]!.id, {
      leafIndex: 10,
      segments: await recordedSegments(store.db),
    });
    expect(checkProofFile(proof, pub)).toBeNull();
  });

  it('refuses to archive a ledger that does not verify', async () => {
    const events = await appendAndSeal(store, clock, sequencer, 8);
    await store.db
      .updateTable('audit_events')
      .set({ subject: 'someone-else' })
      .where('id', '=', events[1]!.id)
      .execute();
    await expect(
      archiveAudit({ store, clock, keys, archive }, { before: new Date('2027-01-01T00:00:00Z'), actor }),
    ).rejects.toThrow(/do not reproduce the signed head/);
    expect(readdirSync(dir)).toEqual([]);
    expect(await store.db.selectFrom('audit_events').select('id').execute()).toHaveLength(8);
  });

  it('verify --archive names a tampered events file, and the leaf', async () => {
    const { events } = await archivedLedger();
    const file = join(dir, '0000000000000004-0000000000000008.events.jsonl');
    chmodSync(file, 0o644);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('user-6@contoso.example', 'user-666@contoso.example');
    writeFileSync(file, lines.join('\n'));
    expect((await verify()).ok).toBe(true); // the database alone does not see the archive
    expectBroken(
      await verify(true),
      /line 3 \(leaf 6\).*does not match the leaf/,
      /0004-0000000000000008\.events\.jsonl$/,
      6,
    );
    expect((await verify(true)).firstBad?.id).toBe(events[6]!.id);
  });

  it('verify --archive refuses a manifest re-signed with another key, and a head signed with another key', async () => {
    await archivedLedger();
    const path = join(dir, '0000000000000000-0000000000000004.manifest.json');
    const original = readFileSync(path, 'utf8');
    const m = JSON.parse(original) as SegmentManifest;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    chmodSync(path, 0o644);
    const forged = { ...m, keyId: auditKeyId(publicKey) };
    forged.signature = sign(null, manifestSignedBytes(forged), privateKey).toString('base64');
    writeFileSync(path, JSON.stringify(forged));
    expectBroken(
      await verify(true),
      /signed with an unknown key/,
      /0000000000000000-0000000000000004\.manifest\.json$/,
      0,
    );
    // The manifest is genuine but the head in it is not: re-signed by another key.
    const badHead = { ...m.head, keyId: auditKeyId(publicKey) };
    const { signHead } = await import('./tree-head.js');
    const reSigned = signHead(
      {
        treeSize: badHead.treeSize,
        rootHash: badHead.rootHash,
        timestamp: badHead.timestamp,
        keyId: badHead.keyId,
      },
      privateKey,
    );
    const key = await keys.current();
    const withBadHead = { ...m, head: reSigned };
    withBadHead.signature = sign(null, manifestSignedBytes(withBadHead), key.privateKey).toString('base64');
    writeFileSync(path, JSON.stringify(withBadHead));
    expectBroken(await verify(true), /the head in .*unknown key/, /manifest\.json$/, 0);
    // An altered manifest (a leaf hash changed) no longer matches its own signature.
    const altered = { ...m, leafHashes: [...m.leafHashes] };
    altered.leafHashes[1] = '0'.repeat(64);
    writeFileSync(path, JSON.stringify(altered));
    expectBroken(await verify(true), /bad signature/, /manifest\.json$/);
  });

  it('verify --archive names a missing segment', async () => {
    await archivedLedger();
    rmSync(join(dir, '0000000000000000-0000000000000004.manifest.json'), { force: true });
    expectBroken(
      await verify(true),
      /leaves 0–3 are in no segment of the archive \(a segment is missing\)/,
      undefined,
      0,
    );
  });

  it('verify --archive names a missing last segment and a missing events file', async () => {
    await archivedLedger();
    rmSync(join(dir, '0000000000000004-0000000000000008.events.jsonl'), { force: true });
    expectBroken(await verify(true), /0004-0000000000000008\.events\.jsonl is missing/, /events\.jsonl$/, 4);
    rmSync(join(dir, '0000000000000004-0000000000000008.manifest.json'), { force: true });
    expectBroken(
      await verify(true),
      /leaves 4–7 were pruned from the database but are in no segment/,
      undefined,
      4,
    );
  });

  it('verify --archive names a segment from another tree, even one signed with the same key', async () => {
    await archivedLedger();
    // Another ledger that shares the signing key (a restored copy that diverged, a staging twin).
    const otherDb = await createMigratedTestDatabase(engine);
    const other = openStore(otherDb.url, { poolSize: 2 });
    const otherDir = mkdtempSync(join(tmpdir(), 'ferry-archive-other-'));
    try {
      const keyRows = await store.db.selectFrom('audit_signing_keys').selectAll().execute();
      await other.db.insertInto('audit_signing_keys').values(keyRows).execute();
      const otherClock = new ManualClock('2026-02-01T08:00:00.000Z');
      const otherKeys = new AuditSigningKeys(other, otherClock, masterKey);
      const otherSeq = new Sequencer({ store: other, clock: otherClock, keys: otherKeys }, { batchSize: 4 });
      const theirs = await appendAndSeal(other, otherClock, otherSeq, 10, 1000);
      await archiveAudit(
        { store: other, clock: otherClock, keys: otherKeys, archive: fileArchive(otherDir) },
        { before: new Date(theirs[8]!.time), actor, maxEvents: 4 },
      );
      for (const suffix of ['.events.jsonl', '.manifest.json']) {
        const name = `0000000000000004-0000000000000008${suffix}`;
        chmodSync(join(dir, name), 0o644);
        writeFileSync(join(dir, name), readFileSync(join(otherDir, name)));
      }
      expectBroken(await verify(true), /another tree/, /0004-0000000000000008\.manifest\.json$/, 4);
      // Its first segment in place of ours: signed, internally whole, but not this ledger's tree.
      for (const suffix of ['.events.jsonl', '.manifest.json']) {
        const name = `0000000000000000-0000000000000004${suffix}`;
        chmodSync(join(dir, name), 0o644);
        writeFileSync(join(dir, name), readFileSync(join(otherDir, name)));
      }
      expectBroken(await verify(true), /another tree|do not reproduce the signed head/);
    } finally {
      await other.close();
      await otherDb.drop();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('ferry audit archive / verify --archive / prove --archive (operator commands)', async () => {
    const cliMasterKey = randomBytes(32);
    await store.db.deleteFrom('audit_signing_keys').execute();
    keys = new AuditSigningKeys(store, clock, new MasterKey(cliMasterKey));
    sequencer = new Sequencer({ store, clock, keys }, { batchSize: 4 });
    const events = await appendAndSeal(store, clock, sequencer, 10);
    const cwd = mkdtempSync(join(tmpdir(), 'ferry-archive-cli-'));
    try {
      const configFile = join(cwd, 'ferry.yaml');
      writeFileSync(
        configFile,
        toYaml({
          database: { url: tdb.url },
          keys: { masterKey: cliMasterKey.toString('base64') },
          log: { level: 'warn' },
          audit: { retention: { destination: { type: 'file', directory: dir } } },
        }),
      );
      const before = events[8]!.time;
      const dry = await ferry(
        ['audit', 'archive', '--before', before, '--dry-run', '--config', configFile],
        cwd,
      );
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/would archive 0000000000000000-0000000000000008: leaves 0–7, 8 events/);
      expect(readdirSync(dir)).toEqual([]);
      const run = await ferry(['audit', 'archive', '--before', before, '--config', configFile], cwd);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/archived 8 events to file:.*; the database now starts at leaf 8/);
      await sequencer.sealAll();
      const plain = await ferry(['audit', 'verify', '--config', configFile], cwd);
      expect(plain.code, plain.stdout).toBe(0);
      expect(plain.stdout).toMatch(/leaves below 8 are archived and were not checked \(add --archive\)/);
      const full = await ferry(['audit', 'verify', '--archive', dir, '--config', configFile], cwd);
      expect(full.code, full.stdout).toBe(0);
      expect(full.stdout).toMatch(/intact: 11 events.*\(leaves below 8 checked in the archive\)/);
      // A pruned event is found by its leaf (the database no longer knows its id).
      const noLeaf = await ferry(
        ['audit', 'prove', events[3]!.id, '--archive', dir, '--config', configFile],
        cwd,
      );
      expect(noLeaf.code).not.toBe(0);
      expect(noLeaf.stderr).toMatch(/no longer in the database: add --leaf N/);
      const proved = await ferry(
        ['audit', 'prove', events[3]!.id, '--archive', dir, '--leaf', '3', '--config', configFile],
        cwd,
      );
      expect(proved.code, proved.stderr).toBe(0);
      writeFileSync(join(cwd, 'proof.json'), proved.stdout);
      writeFileSync(join(cwd, 'audit.pub'), (await keys.current()).publicKeyPem);
      const checked = await ferry(['audit', 'check-proof', 'proof.json', '--public-key', 'audit.pub'], cwd);
      expect(checked.stdout).toBe('proof holds\n');
      const notHere = await ferry(['audit', 'prove', events[3]!.id, '--config', configFile], cwd);
      expect(notHere.code).toBe(2);
      expect(notHere.stderr).toMatch(/archived: prove it from the archive with --archive/);
      // A tampered segment: exit 1, naming the file and the leaf.
      const file = join(dir, '0000000000000000-0000000000000008.events.jsonl');
      chmodSync(file, 0o644);
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('user-4@contoso.example', 'user-44@contoso.example'),
      );
      const broken = await ferry(['audit', 'verify', '--archive', dir, '--config', configFile], cwd);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toMatch(
        /BROKEN at leaf 4 \(.+\) in 0000000000000000-0000000000000008\.events\.jsonl: .*line 5 \(leaf 4\)/,
      );
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);

  it('on schedule, exactly one of two instances archives (the lease); the other skips', async () => {
    const events = await appendAndSeal(store, clock, sequencer, 10);
    const second = openStore(tdb.url, { poolSize: 2 });
    try {
      const retention = {
        archiveAfter: clock.now().getTime() - Date.parse(events[8]!.time),
        maxEventsPerSegment: 100,
      };
      const results = await Promise.all([
        archiveOnSchedule({ store, clock, keys, archive }, retention),
        archiveOnSchedule(
          { store: second, clock, keys: new AuditSigningKeys(second, clock, masterKey), archive },
          retention,
        ),
      ]);
      // One archived leaves 0–7; the other found the lease taken (or, had it come after, nothing left).
      const done = results.filter((r) => r !== null && r.segments.length > 0);
      expect(done).toHaveLength(1);
      expect(done[0]!.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([[0, 8]]);
      const archived = await store.db
        .selectFrom('audit_events')
        .select(['type', 'actor'])
        .where('type', '=', 'audit.archived')
        .execute();
      expect(archived).toHaveLength(1);
      expect(JSON.parse(archived[0]!.actor)).toEqual({ type: 'system', name: 'audit-archive' });
      await sequencer.sealAll();
      expect(await verify(true)).toMatchObject({ ok: true, archived: 8 });
    } finally {
      await second.close();
    }
  });

  it('a destination that fails is retried with backoff and reported; events stay and writes go on', async () => {
    const events = await appendAndSeal(store, clock, sequencer, 10);
    // A "directory" under a regular file: the destination is refused (a file where a directory must be),
    // as an unwritable mount would be (tests run as root, so a mode cannot stop them).
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, 'x');
    const broken = fileArchive(join(blocker, 'archive'));
    const retention = {
      archiveAfter: clock.now().getTime() - Date.parse(events[8]!.time),
      maxEventsPerSegment: 100,
      intervalMs: 3_600_000,
    };
    const scheduler = new ArchiveScheduler({ store, clock, keys, archive: broken }, retention);
    const warned: object[] = [];
    const log = { warn: (obj: object) => warned.push(obj) };
    expect(await scheduler.runDue(log)).toBeNull();
    const first = await scheduler.status();
    expect(first).toMatchObject({
      destination: broken.name,
      archivedBelow: 0,
      failures: 1,
      nextAttemptAt: new Date(clock.now().getTime() + 5_000).toISOString(),
    });
    expect(first.lastError).toMatch(/not-a-directory is not a directory/);
    expect(warned).toHaveLength(1);
    // Nothing was pruned, and writes go on while the archive is down.
    expect(await store.db.selectFrom('audit_events').select('id').execute()).toHaveLength(10);
    await appendAndSeal(store, clock, sequencer, 1, 10);
    // Not again before the backoff has passed (tick() does not even read the row)…
    expect(await scheduler.tick(log)).toBeNull();
    expect((await scheduler.status()).failures).toBe(1);
    // …then again, the delay doubled.
    clock.advance(5_000);
    expect(await scheduler.tick(log)).toBeNull();
    expect(await scheduler.status()).toMatchObject({
      failures: 2,
      nextAttemptAt: new Date(clock.now().getTime() + 10_000).toISOString(),
    });
    // Once the destination is back, the next attempt archives and the failures are cleared.
    rmSync(blocker);
    clock.advance(10_000);
    // (the cutoff moved on with the clock: all 11 events are old enough now)
    const done = await scheduler.tick(log);
    expect(done?.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([[0, 11]]);
    expect(await scheduler.status()).toMatchObject({
      archivedBelow: 11,
      failures: 0,
      lastError: null,
      nextAttemptAt: null,
    });
    // The backoff is shared: a second instance's scheduler sees the same status row.
    const other = new ArchiveScheduler({ store, clock, keys, archive: broken }, retention);
    expect((await other.status()).archivedAt).toBe(clock.now().toISOString());
    await sequencer.sealAll();
    expect(await verifyLedger(store.db, { keys: await keys.trusted(), archive: broken })).toMatchObject({
      ok: true,
      archived: 11,
    });
  });

  it('verify (without the archive) refuses an archive record nobody sealed: the oldest events deleted behind a forged one', async () => {
    await appendAndSeal(store, clock, sequencer, 14);
    // what a database writer could do: delete the first 8 events and claim they were archived
    await store.db.deleteFrom('audit_events').where('leaf_index', '<', 8).execute();
    await store.db
      .insertInto('audit_archive_segments')
      .values({
        first_leaf: 0,
        end_leaf: 8,
        events: 8,
        first_time: '2026-01-01T00:00:00.000Z',
        last_time: '2026-01-01T00:00:00.000Z',
        destination: 'file:/nowhere',
        name: '00000000-00000008',
        events_sha256: '0'.repeat(64),
        manifest_sha256: '0'.repeat(64),
        archived_at: '2026-01-01T00:00:00.000Z',
      })
      .execute();
    expectBroken(
      await verify(),
      /no sealed audit.archived event records an archive ending there/,
      undefined,
      8,
    );
  });

  it('verify (without the archive) catches a forged checkpoint frontier', async () => {
    await archivedLedger();
    await store.db
      .updateTable('audit_tree_heads')
      .set({ frontier: JSON.stringify(['0'.repeat(64)]) })
      .where('tree_size', '=', 8)
      .execute();
    expectBroken(await verify(), /frontier kept for the archived leaves below 8 does not match/);
  });
});

describe('archiving audit segments to S3 (moto)', () => {
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

  it('writes segments under COMPLIANCE retention when the bucket has Object Lock, and verifies from S3', async () => {
    const s3 = new S3Client({
      region: aws.region,
      endpoint: aws.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: 'ferry-archive', ObjectLockEnabledForBucket: true }));
    const clock = new ManualClock('2026-03-01T09:00:00.000Z');
    const keys = new AuditSigningKeys(store, clock, new MasterKey(randomBytes(32)));
    const sequencer = new Sequencer({ store, clock, keys }, { batchSize: 4 });
    const events = await appendAndSeal(store, clock, sequencer, 10);
    const archive = s3Archive(
      {
        bucket: 'ferry-archive',
        prefix: 'ledger/',
        retainDays: 30,
        region: aws.region,
        endpoint: aws.endpoint,
      },
      clock,
    );
    const result = await archiveAudit(
      { store, clock, keys, archive },
      { before: new Date(events[8]!.time), actor: { type: 'operator', name: 'root' } },
    );
    expect(result.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([[0, 8]]);
    expect(await archive.list()).toEqual([
      '0000000000000000-0000000000000008.events.jsonl',
      '0000000000000000-0000000000000008.manifest.json',
    ]);
    // Read back by a client of the test's own, not the code under test.
    const head = await s3.send(
      new HeadObjectCommand({
        Bucket: 'ferry-archive',
        Key: 'ledger/0000000000000000-0000000000000008.manifest.json',
      }),
    );
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    expect(head.ObjectLockRetainUntilDate?.toISOString()).toMatch(/^2026-03-31/);
    await sequencer.sealAll();
    const trusted = await keys.trusted();
    expect(await verifyLedger(store.db, { keys: trusted, archive })).toMatchObject({
      ok: true,
      archived: 8,
      archiveChecked: true,
    });
    const proof = await proveFromArchive(archive, events[3]!.id, { leafIndex: 3 });
    expect(checkProofFile(proof, (await keys.current()).publicKeyPem)).toBeNull();
    // An object replaced in the bucket (a bucket without Object Lock, or after retention) is named.
    const lines = (await archive.get('0000000000000000-0000000000000008.events.jsonl'))!
      .toString('utf8')
      .split('\n');
    lines[5] = lines[5]!.replace('"outcome":"success"', '"outcome":"failure"');
    await archive.put(
      '0000000000000000-0000000000000008.events.jsonl',
      Buffer.from(lines.join('\n')),
      'application/x-ndjson',
    );
    const broken = await verifyLedger(store.db, { keys: trusted, archive });
    expect(broken.ok).toBe(false);
    expect(broken.firstBad).toMatchObject({
      leafIndex: 5,
      file: '0000000000000000-0000000000000008.events.jsonl',
    });
  }, 120_000);

  it('an S3 destination that is down (no such bucket) is retried with backoff, then archives once it is there', async () => {
    const clock = new ManualClock('2026-04-01T09:00:00.000Z');
    const keys = new AuditSigningKeys(store, clock, new MasterKey(randomBytes(32)));
    await store.db.deleteFrom('audit_signing_keys').execute();
    for (const t of TABLES) await store.db.deleteFrom(t).execute();
    await store.db.updateTable('audit_sequencer').set({ holder: null, lease_until: null }).execute();
    const sequencer = new Sequencer({ store, clock, keys }, { batchSize: 4 });
    const events = await appendAndSeal(store, clock, sequencer, 6);
    const archive = s3Archive(
      {
        bucket: 'ferry-archive-late',
        prefix: 'l/',
        retainDays: 0,
        region: aws.region,
        endpoint: aws.endpoint,
      },
      clock,
    );
    const scheduler = new ArchiveScheduler(
      { store, clock, keys, archive },
      {
        archiveAfter: clock.now().getTime() - Date.parse(events[4]!.time),
        maxEventsPerSegment: 100,
        intervalMs: 3_600_000,
      },
    );
    expect(await scheduler.runDue()).toBeNull();
    const down = await scheduler.status();
    expect(down).toMatchObject({ destination: 's3://ferry-archive-late/l/', failures: 1, archivedBelow: 0 });
    expect(down.lastError).toMatch(/bucket/i);
    const s3 = new S3Client({
      region: aws.region,
      endpoint: aws.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: 'ferry-archive-late' }));
    clock.advance(5_000);
    expect((await scheduler.tick())?.segments.map((s) => [s.firstLeaf, s.endLeaf])).toEqual([[0, 6]]);
    expect(await scheduler.status()).toMatchObject({ failures: 0, archivedBelow: 6, lastError: null });
  }, 60_000);
});

const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

/** Runs the built `ferry` command the way an operator does, without any FERRY_* settings of ours. */
function ferry(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FERRY_BIN, ...args], { cwd, env, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('audit.retention configuration', () => {
  it('needs a destination to archive to, and a positive age', async () => {
    const { configSchema } = await import('../app/config.js');
    const base = {
      database: { url: 'sqlite::memory:' },
      keys: { masterKey: randomBytes(32).toString('base64') },
    };
    expect(() => configSchema.parse({ ...base, audit: { retention: { archiveAfter: '400d' } } })).toThrow(
      /needs a destination/,
    );
    expect(() =>
      configSchema.parse({
        ...base,
        audit: { retention: { archiveAfter: 'soon', destination: { type: 'file', directory: '/x' } } },
      }),
    ).toThrow(/expected a duration/);
    const ok = configSchema.parse({
      ...base,
      audit: { retention: { archiveAfter: '400d', destination: { type: 's3', bucket: 'corp-archive' } } },
    });
    expect(ok.audit.retention).toMatchObject({
      archiveAfter: 400 * 86_400_000,
      interval: 3_600_000,
      maxEventsPerSegment: 50_000,
      destination: { type: 's3', bucket: 'corp-archive', prefix: 'ferry-audit-archive/', retainDays: 2555 },
    });
    expect(configSchema.parse(base).audit.retention.archiveAfter).toBeNull();
  });
});
