import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { ManualClock } from '../clock.js';
import { AuditSigningKeys, auditKeyId } from '../keys/audit-signing-keys.js';
import { MasterKey } from '../keys/master-key.js';
import { dbTime } from '../store/db-time.js';
import { openStore, type Store } from '../store/open.js';
import type { Actor } from './actor.js';
import { canonicalJson } from './canonical-json.js';
import {
  type AuditEvent,
  type AuditInput,
  appendAudit,
  auditRow,
  eventFromRow,
  GENESIS_HASH,
  hashEvent,
  leafEventOf,
  leafHashOf,
  leafJson,
  listAudit,
} from './ledger.js';
import { Frontier } from './merkle.js';
import { Sequencer } from './sequencer.js';
import { checkProofFile, leafData, type SignedTreeHead, signHead } from './tree-head.js';
import { headFromRow, proveConsistency, proveInclusion, type VerifyResult, verifyLedger } from './verify.js';

const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

const ACTORS: Actor[] = [
  { type: 'user', id: 'u-1', name: 'Test-AWSAdmin@contoso.example' },
  { type: 'api-token', id: 't-1', name: 'terraform' },
  { type: 'system', name: 'outbox-worker' },
  { type: 'operator', name: 'root' },
  { type: 'anonymous' },
];

/** Varied events, so that every field takes part in the hash. */
function input(i: number): AuditInput {
  return {
    type: i % 2 ? 'signin.password' : 'user.updated',
    outcome: i % 3 ? 'success' : 'failure',
    actor: ACTORS[i % ACTORS.length]!,
    subject: `user-${i}@contoso.example`,
    ip: `192.0.2.${i}`,
    requestId: `req-${i}`,
    data: { i, changed: ['displayName'], nested: { b: i * 2, a: 'ä €' } },
  };
}

async function append(store: Store, clock: ManualClock, i: number): Promise<AuditEvent> {
  clock.advance(1_000);
  return store.db.transaction().execute((trx) => appendAudit(trx, store.engine, clock, input(i)));
}

async function appendMany(store: Store, clock: ManualClock, n: number, from = 1): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for (let i = from; i < from + n; i++) out.push(await append(store, clock, i));
  return out;
}

async function resetLedger(store: Store): Promise<void> {
  for (const t of ['audit_events', 'audit_tree_nodes', 'audit_tree_heads', 'audit_signing_keys'] as const)
    await store.db.deleteFrom(t).execute();
  await store.db.updateTable('audit_sequencer').set({ holder: null, lease_until: null }).execute();
}

async function sealedEvents(store: Store): Promise<AuditEvent[]> {
  const rows = await store.db
    .selectFrom('audit_events')
    .selectAll()
    .where('leaf_index', 'is not', null)
    .orderBy('leaf_index')
    .execute();
  return rows.map(eventFromRow);
}

/**
 * What an attacker with write access to the database (but not the master key) does after changing
 * events: recompute every leaf hash, every stored tree node and every head's root and frontier, so
 * that nothing stored disagrees with anything else. Heads keep their signature, or are re-signed with
 * `forgeKey` (a key of the attacker's own).
 */
async function recomputeEverything(store: Store, forgeKey?: { id: string; privateKey: KeyObject }) {
  const events = await sealedEvents(store);
  const heads = await store.db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size').execute();
  await store.db.deleteFrom('audit_tree_nodes').execute();
  const f = new Frontier();
  const nodes: Array<{ level: number; idx: number; hash: string }> = [];
  const rootAt = new Map<number, { root: string; frontier: string }>();
  for (const e of events) {
    const hash = leafHashOf(e);
    await store.db.updateTable('audit_events').set({ leaf_hash: hash }).where('id', '=', e.id).execute();
    f.append(Buffer.from(hash, 'hex'), (level, idx, h) =>
      nodes.push({ level, idx, hash: h.toString('hex') }),
    );
    rootAt.set(f.size, {
      root: f.root().toString('hex'),
      frontier: JSON.stringify(f.hashes().map((h) => h.toString('hex'))),
    });
  }
  if (nodes.length) await store.db.insertInto('audit_tree_nodes').values(nodes).execute();
  for (const h of heads) {
    const at = rootAt.get(Number(h.tree_size));
    if (!at) continue;
    let signature = h.signature;
    let keyId = h.key_id;
    if (forgeKey) {
      const forged = signHead(
        { treeSize: Number(h.tree_size), rootHash: at.root, timestamp: h.signed_at, keyId: forgeKey.id },
        forgeKey.privateKey,
      );
      signature = forged.signature;
      keyId = forgeKey.id;
    }
    await store.db
      .updateTable('audit_tree_heads')
      .set({ root_hash: at.root, frontier: at.frontier, signature, key_id: keyId })
      .where('tree_size', '=', h.tree_size)
      .execute();
  }
}

describe('an appended event’s leaf hash', () => {
  it('is the hash of leafData() of its fields, however its data is nested, ordered or missing', () => {
    const clock = new ManualClock(new Date('2026-12-06T12:00:00Z'));
    const odd: AuditInput[] = [
      { type: 'x', outcome: 'success', actor: { type: 'anonymous' } },
      {
        type: 'ssh-certificate.issued',
        outcome: 'failure',
        actor: { type: 'user', name: 'Zoë "q" \\ \u2028', id: 'u' },
        subject: null,
        ip: undefined,
        requestId: null,
        data: {
          z: [{ b: 1, a: [null, { d: undefined, c: '€' }] }],
          a: undefined,
          m: {},
          '': 'empty key',
          n: -0.5,
        },
      },
    ];
    for (const given of [...Array.from({ length: 30 }, (_, i) => input(i)), ...odd]) {
      clock.advance(1);
      const { row, event } = auditRow(clock, given);
      expect(row.hash).toBe(leafHashOf({ ...event, seq: 0 }));
      expect(row.leaf_hash).toBe(row.hash);
      expect(row.data).toBe(canonicalJson(given.data ?? {}));
      expect(row.actor).toBe(canonicalJson(given.actor));
    }
  });
});

describe.each(ENGINES)('audit ledger on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let keys: AuditSigningKeys;
  let sequencer: Sequencer;
  const masterKey = new MasterKey(randomBytes(32));

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
  });

  const verify = async (against?: unknown[]) =>
    verifyLedger(store.db, { keys: await keys.trusted(), against, batch: 3 });
  const expectBroken = (result: VerifyResult, reason: RegExp) => {
    expect(result.ok).toBe(false);
    expect(result.firstBad?.reason).toMatch(reason);
  };

  /** 10 events sealed in batches of 4 (heads of 4, 8 and 10), and the latest head. */
  async function sealedLedger(): Promise<{ events: AuditEvent[]; head: SignedTreeHead }> {
    await appendMany(store, clock, 10);
    expect(await sequencer.sealAll()).toBe(10);
    const events = await sealedEvents(store);
    const row = await store.db
      .selectFrom('audit_tree_heads')
      .selectAll()
      .orderBy('tree_size', 'desc')
      .executeTakeFirstOrThrow();
    return { events, head: headFromRow(row) };
  }

  it('appends without a position, then seals every event exactly once at consecutive leaves under signed heads', async () => {
    const appended = await appendMany(store, clock, 10);
    expect(appended.every((e) => e.leafIndex === null)).toBe(true);
    expect((await verify()).unsealed).toBe(10);
    expect(await sequencer.sealAll()).toBe(10);
    const events = await sealedEvents(store);
    expect(events.map((e) => e.leafIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(events.map((e) => e.id)).toEqual(appended.map((e) => e.id));
    const heads = await store.db
      .selectFrom('audit_tree_heads')
      .select('tree_size')
      .orderBy('tree_size')
      .execute();
    expect(heads.map((h) => Number(h.tree_size))).toEqual([4, 8, 10]);
    expect(await verify()).toEqual({
      ok: true,
      events: 10,
      treeSize: 10,
      headsChecked: 3,
      unsealed: 0,
      archived: 0,
      archiveChecked: false,
      firstBad: null,
    });
    // listAudit still reads in append order, now with positions.
    const listed = await listAudit(store.db, { limit: 100 });
    expect(listed.map((e) => e.leafIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('an append rolled back with its change leaves nothing to seal', async () => {
    await expect(
      store.db.transaction().execute(async (trx) => {
        await appendAudit(trx, store.engine, clock, input(1));
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await sequencer.sealAll()).toBe(0);
    expect(await verify()).toMatchObject({ ok: true, events: 0, unsealed: 0 });
  });

  describe('finds tampering even when every stored hash, node and root was recomputed', () => {
    it('an edited event', async () => {
      const { events } = await sealedLedger();
      await store.db
        .updateTable('audit_events')
        .set({ data: '{"i":99}' })
        .where('id', '=', events[5]!.id)
        .execute();
      const naive = await verify();
      expectBroken(naive, /do not match the signed head/);
      expect(naive.firstBad).toMatchObject({ leafIndex: 5, id: events[5]!.id });
      await recomputeEverything(store);
      expectBroken(await verify(), /bad signature/);
    });

    it('a deleted event', async () => {
      const { events } = await sealedLedger();
      await store.db.deleteFrom('audit_events').where('id', '=', events[3]!.id).execute();
      expectBroken(await verify(), /leaf 3 is missing/);
      // …and with the later events moved up to close the gap:
      for (const e of events.slice(4))
        await store.db
          .updateTable('audit_events')
          .set({ leaf_index: (e.leafIndex as number) - 1 })
          .where('id', '=', e.id)
          .execute();
      await recomputeEverything(store);
      expectBroken(await verify(), /bad signature|truncated/);
    });

    it('an inserted event', async () => {
      const { events } = await sealedLedger();
      for (const e of [...events].reverse().slice(0, 8))
        await store.db
          .updateTable('audit_events')
          .set({ leaf_index: (e.leafIndex as number) + 1 })
          .where('id', '=', e.id)
          .execute();
      const forged = { ...events[1]!, id: 'forged-event', seq: 10_000, data: { forged: true } };
      await store.db
        .insertInto('audit_events')
        .values({
          seq: forged.seq,
          id: forged.id,
          time: forged.time,
          type: forged.type,
          outcome: forged.outcome,
          actor: canonicalJson(forged.actor),
          subject: forged.subject,
          ip: forged.ip,
          request_id: forged.requestId,
          data: canonicalJson(forged.data),
          prev_hash: '',
          hash: leafHashOf(forged),
          leaf_hash: leafHashOf(forged),
          leaf_index: 2,
        })
        .execute();
      await recomputeEverything(store);
      expectBroken(await verify(), /bad signature/);
    });

    it('two events swapped', async () => {
      const { events } = await sealedLedger();
      const [a, b] = [events[2]!, events[6]!];
      await store.db.updateTable('audit_events').set({ leaf_index: -1 }).where('id', '=', a.id).execute();
      await store.db.updateTable('audit_events').set({ leaf_index: 2 }).where('id', '=', b.id).execute();
      await store.db.updateTable('audit_events').set({ leaf_index: 6 }).where('id', '=', a.id).execute();
      expectBroken(await verify(), /do not match the signed head/);
      await recomputeEverything(store);
      expectBroken(await verify(), /bad signature/);
    });

    it('the newest events removed: caught by the head, and by a published head once the heads go too', async () => {
      const { events, head } = await sealedLedger();
      await store.db.deleteFrom('audit_events').where('leaf_index', '>=', 8).execute();
      expectBroken(await verify(), /has 8 events but the latest signed head signs 10 \(truncated\)/);
      // The attacker also deletes the heads that cover them: the database alone is consistent again…
      await store.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 8).execute();
      expect((await verify()).ok).toBe(true);
      // …but not with the head that was published before.
      expect(events).toHaveLength(10);
      expectBroken(await verify([head]), /published head signs 10 events but the database's tree has 8/);
    });

    it('a history rewritten and re-signed with another key', async () => {
      const { events } = await sealedLedger();
      await store.db
        .updateTable('audit_events')
        .set({ subject: 'someone-else' })
        .where('id', '=', events[0]!.id)
        .execute();
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      await recomputeEverything(store, { id: auditKeyId(publicKey), privateKey });
      expectBroken(await verify(), /signed with an unknown key/);
    });

    it('a public key swapped in the database is not trusted', async () => {
      await sealedLedger();
      const { publicKey } = generateKeyPairSync('ed25519');
      await store.db
        .updateTable('audit_signing_keys')
        .set({ public_key: publicKey.export({ format: 'pem', type: 'spki' }) as string })
        .execute();
      await expect(new AuditSigningKeys(store, clock, masterKey).trusted()).rejects.toThrow(/does not match/);
    });

    it('an event placed in the tree without a head covering it', async () => {
      await sealedLedger();
      const [extra] = await appendMany(store, clock, 1, 50);
      await store.db
        .updateTable('audit_events')
        .set({ leaf_index: 10 })
        .where('id', '=', extra!.id)
        .execute();
      expectBroken(await verify(), /no signed head covers them/);
    });
  });

  it('prints inclusion proofs that hold offline with the public key alone, and not for anything else', async () => {
    const { events, head } = await sealedLedger();
    const pem = (await keys.current()).publicKeyPem;
    for (const e of events) {
      const proof = await proveInclusion(store.db, e.id);
      expect(proof.head).toEqual(head);
      expect(checkProofFile(JSON.parse(JSON.stringify(proof)), pem)).toBeNull();
    }
    const proof = await proveInclusion(store.db, events[4]!.id, { treeSize: 8 });
    expect(proof.head.treeSize).toBe(8);
    expect(checkProofFile(proof, pem)).toBeNull();
    // An altered event, another key, or a proof moved onto another tree's head: each fails, and says so.
    expect(checkProofFile({ ...proof, event: { ...proof.event, outcome: 'failure' } }, pem)).toMatch(
      /not at leaf 4/,
    );
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expect(checkProofFile(proof, other)).toMatch(/unknown key|bad signature/);
    expect(checkProofFile({ ...proof, head }, pem)).toMatch(/proof for another tree/);
    expect(checkProofFile({ format: 'nonsense' }, pem)).toMatch(/not a Ferry audit inclusion proof/);
    const unsealed = await append(store, clock, 99);
    await expect(proveInclusion(store.db, unsealed.id)).rejects.toThrow(/not sealed yet/);
    await expect(proveInclusion(store.db, 'no-such-event')).rejects.toThrow(/no audit event/);
  });

  it('proves each signed head extends every earlier one, and a rewrite breaks that', async () => {
    const { events } = await sealedLedger();
    const pem = (await keys.current()).publicKeyPem;
    for (const [from, to] of [
      [4, 8],
      [4, 10],
      [8, 10],
      [10, 10],
    ] as const)
      expect(checkProofFile(await proveConsistency(store.db, from, to), pem)).toBeNull();
    const old = await proveConsistency(store.db, 4, 10);
    // Rewriting event 1 and re-deriving everything cannot be shown consistent with the signed head of 4.
    await store.db
      .updateTable('audit_events')
      .set({ ip: '203.0.113.66' })
      .where('id', '=', events[1]!.id)
      .execute();
    await recomputeEverything(store);
    const after = await proveConsistency(store.db, 4, 10);
    expect(checkProofFile(after, pem)).toMatch(/bad signature/);
    // Even someone holding the master key, who re-signs the rewritten tree, cannot show it extends
    // the head of 4 that was published before.
    const key = await keys.current();
    const resigned = signHead(
      { treeSize: 10, rootHash: after.to.rootHash, timestamp: after.to.timestamp, keyId: key.id },
      key.privateKey,
    );
    expect(resigned.rootHash).not.toBe(old.to.rootHash);
    expect(checkProofFile({ ...after, from: old.from, to: resigned }, pem)).toMatch(
      /does not extend the signed tree of 4/,
    );
  });

  it('seals the old hash chain first, in its order, keeping each event’s chain link inside its leaf', async () => {
    // Events as the chain wrote them before migration 0019.
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 5; seq++) {
      const e = {
        seq,
        id: `legacy-${seq}`,
        time: `2025-12-0${seq}T00:00:00.000Z`,
        type: 'user.created',
        outcome: 'success' as const,
        actor: { type: 'operator', name: 'root' } as Actor,
        subject: `u${seq}`,
        ip: null,
        requestId: null,
        data: { seq },
        prevHash: prev,
      };
      const hash = hashEvent(e);
      await store.db
        .insertInto('audit_events')
        .values({
          seq,
          id: e.id,
          time: e.time,
          type: e.type,
          outcome: e.outcome,
          actor: canonicalJson(e.actor),
          subject: e.subject,
          ip: null,
          request_id: null,
          data: canonicalJson(e.data),
          prev_hash: prev,
          hash,
        })
        .execute();
      prev = hash;
    }
    const fresh = await appendMany(store, clock, 3);
    expect(fresh[0]!.seq).toBeGreaterThan(5);
    await sequencer.sealAll();
    const sealed = await sealedEvents(store);
    expect(sealed.map((e) => e.id)).toEqual([
      ...[1, 2, 3, 4, 5].map((s) => `legacy-${s}`),
      ...fresh.map((e) => e.id),
    ]);
    const proof = await proveInclusion(store.db, 'legacy-3');
    expect(proof.event.chain?.prevHash).toBe(sealed[1]!.hash);
    expect(checkProofFile(proof, (await keys.current()).publicKeyPem)).toBeNull();
    expect(await verify()).toMatchObject({ ok: true, events: 8 });
  });

  it('an event edited after its append but before sealing is named by verify (sealing places the appended hash)', async () => {
    const appended = await appendMany(store, clock, 5);
    await store.db
      .updateTable('audit_events')
      .set({ data: '{"i":99}' })
      .where('id', '=', appended[2]!.id)
      .execute();
    expect(await sequencer.sealAll()).toBe(5);
    const result = await verify();
    expectBroken(result, /./);
    expect(result.firstBad).toMatchObject({ leafIndex: 2, id: appended[2]!.id });
  });

  it('seals while appends keep the event loop busy back to back, without waiting for them to pause', async () => {
    const sealedDuring: number[] = [];
    let appending = true;
    const running = new Sequencer(
      { store, clock, keys, onSealed: (_head, n) => appending && sealedDuring.push(n) },
      { batchSize: 1000, settleMs: 5, pollMs: 60_000 },
    );
    running.start();
    const until = performance.now() + 1_500;
    let appended = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        while (performance.now() < until) await append(store, clock, w * 100_000 + appended++);
      }),
    );
    appending = false;
    await running.stop();
    // Sealed in several batches while the writers ran, not in one after they stopped (before the
    // fix, SQLite's back-to-back appends starved the sequencer's timer: no batch until the end).
    expect(sealedDuring.length).toBeGreaterThan(1);
    expect(appended).toBeGreaterThan(0);
  });

  it('one sequencer at a time: the lease holder seals, another takes over only once the lease ran out', async () => {
    const other = new Sequencer(
      { store, clock, keys: new AuditSigningKeys(store, clock, masterKey) },
      { batchSize: 4 },
    );
    await appendMany(store, clock, 3);
    expect(await sequencer.sealOnce()).toMatchObject({ sealed: 3, leader: true });
    await appendMany(store, clock, 2);
    expect(await other.sealOnce()).toEqual({ sealed: 0, head: null, leader: false });
    // the first holder died and its lease ran out (terms are database time)
    await store.db
      .updateTable('audit_sequencer')
      .set({ lease_until: dbTime(store.engine, -1) })
      .execute();
    expect(await other.sealOnce()).toMatchObject({ sealed: 2, leader: true });
    expect(await sequencer.sealOnce()).toMatchObject({ sealed: 0, leader: false });
    expect(await verify()).toMatchObject({ ok: true, events: 5, treeSize: 5 });
  });

  it('two sequencers whose clocks disagree by minutes: the one running ahead takes no live lease', async () => {
    // Before the lease was database time, `ahead` read the holder's term (written by a clock ten
    // minutes behind) as long over, and two sequencers sealed at once.
    const ahead = new ManualClock(new Date(clock.now().getTime() + 10 * 60_000));
    const other = new Sequencer({ store, clock: ahead, keys: new AuditSigningKeys(store, ahead, masterKey) });
    await appendMany(store, clock, 3);
    expect(await sequencer.sealOnce()).toMatchObject({ sealed: 3, leader: true });
    await appendMany(store, clock, 2, 4);
    expect(await other.sealOnce()).toEqual({ sealed: 0, head: null, leader: false });
    expect(await sequencer.sealOnce()).toMatchObject({ sealed: 2, leader: true });
    expect(await other.sealOnce()).toEqual({ sealed: 0, head: null, leader: false });
    expect(await verify()).toMatchObject({ ok: true, events: 5, treeSize: 5 });
  });

  it('sequencers racing while appends keep coming seal each event once, in one consistent tree', async () => {
    const racers = [sequencer, new Sequencer({ store, clock, keys }, { batchSize: 4 })];
    let stop = false;
    const sealing = racers.map(async (s) => {
      while (!stop) {
        await s.sealOnce();
        clock.advance(2_000); // leases keep running out, so both get turns
      }
    });
    await Promise.all(Array.from({ length: 4 }, (_, w) => appendMany(store, clock, 10, w * 100)));
    stop = true;
    await Promise.all(sealing);
    clock.advance(10_000);
    await sequencer.sealAll();
    const sealed = await sealedEvents(store);
    expect(sealed.map((e) => e.leafIndex)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(new Set(sealed.map((e) => e.id)).size).toBe(40);
    expect(await verify()).toMatchObject({ ok: true, events: 40, unsealed: 0 });
  });

  describe('ferry audit verify / prove / check-proof (operator commands)', () => {
    let dir: string;
    let configFile: string;
    const cliMasterKey = randomBytes(32);

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'ferry-audit-cli-'));
      configFile = join(dir, 'ferry.yaml');
      writeFileSync(
        configFile,
        toYaml({
          database: { url: tdb.url },
          keys: { masterKey: cliMasterKey.toString('base64') },
          log: { level: 'warn' },
        }),
      );
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      await store.db.deleteFrom('audit_signing_keys').execute();
      keys = new AuditSigningKeys(store, clock, new MasterKey(cliMasterKey));
      sequencer = new Sequencer({ store, clock, keys }, { batchSize: 4 });
    });

    it('verify exits 0 when intact, 1 naming the edited event; prove’s output holds under check-proof', async () => {
      const { events, head } = await sealedLedger();
      const ok = await ferry(['audit', 'verify', '--config', configFile], dir);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/intact: 10 events, 3 signed heads checked/);

      const headsDir = join(dir, 'heads');
      rmSync(headsDir, { recursive: true, force: true });
      const { mkdirSync } = await import('node:fs');
      mkdirSync(headsDir);
      writeFileSync(join(headsDir, '10.json'), JSON.stringify(head));
      expect(
        (await ferry(['audit', 'verify', '--against', headsDir, '--config', configFile], dir)).stdout,
      ).toMatch(/\(1 published\)/);

      const proved = await ferry(['audit', 'prove', events[7]!.id, '--config', configFile], dir);
      expect(proved.code).toBe(0);
      writeFileSync(join(dir, 'proof.json'), proved.stdout);
      const pub = await ferry(['audit', 'public-key', '--config', configFile], dir);
      writeFileSync(join(dir, 'audit.pub'), pub.stdout);
      // No config, no database: the proof and the key are enough.
      const checked = await ferry(
        ['audit', 'check-proof', join(dir, 'proof.json'), '--public-key', join(dir, 'audit.pub')],
        tmpdir(),
      );
      expect(checked).toMatchObject({ code: 0, stdout: 'proof holds\n' });
      const tampered = JSON.parse(proved.stdout);
      tampered.event.subject = 'nobody';
      writeFileSync(join(dir, 'tampered.json'), JSON.stringify(tampered));
      const refused = await ferry(
        ['audit', 'check-proof', join(dir, 'tampered.json'), '--public-key', join(dir, 'audit.pub')],
        tmpdir(),
      );
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(/does NOT hold: event .* is not at leaf 7/);

      await store.db
        .updateTable('audit_events')
        .set({ data: '{"i":99}' })
        .where('id', '=', events[2]!.id)
        .execute();
      const broken = await ferry(['audit', 'verify', '--config', configFile], dir);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain(`at leaf 2 (${events[2]!.id})`);
      const json = await ferry(['audit', 'verify', '--json', '--config', configFile], dir);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({
        ok: false,
        firstBad: { leafIndex: 2, id: events[2]!.id },
      });
      const missing = await ferry(['audit', 'prove', 'no-such-event', '--config', configFile], dir);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no audit event no-such-event/);
    });
  });
});

describe('audit appends on PostgreSQL hold no shared row', () => {
  let tdb: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    tdb = await createMigratedTestDatabase('postgres');
    store = openStore(tdb.url, { poolSize: 6 });
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  it('an append commits while another append’s transaction is still open', async () => {
    const clock = new ManualClock();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let firstAppended!: () => void;
    const appended = new Promise<void>((r) => {
      firstAppended = r;
    });
    const slow = store.db.transaction().execute(async (trx) => {
      await appendAudit(trx, store.engine, clock, input(1));
      firstAppended();
      await held; // a long transaction: on the old chain, every other append waited for it
    });
    await appended;
    const fast = await Promise.race([
      store.db.transaction().execute((trx) => appendAudit(trx, store.engine, clock, input(2))),
      new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 3_000)),
    ]);
    expect(fast).not.toBe('blocked');
    release();
    await slow;
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `ferry` command the way an operator does, without any FERRY_* settings of ours. */
function ferry(args: string[], cwd: string): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FERRY_BIN, ...args], { cwd, env, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('an appended event’s leaf', () => {
  const clock = new ManualClock('2026-01-01T00:00:00.000Z');
  const inputs: AuditInput[] = [
    { type: 'oidc.token.issued', outcome: 'success', actor: { type: 'system', name: 'oidc-client:wl-1' } },
    {
      type: 'user.created',
      outcome: 'failure',
      actor: { type: 'user', id: 'u-1', name: 'Zoë "quoted" \\ back\u2028line' },
      subject: 'ünïcödé ✓ \u0000',
      ip: '::1',
      requestId: 'req-1',
      data: { z: 1, a: [3, { y: null, b: 'x' }], m: { skip: undefined, n: -0, e: 1e21 }, t: true },
    },
    { type: 'x', outcome: 'success', actor: { type: 'anonymous' }, subject: null, ip: null, data: {} },
  ];

  it.each(inputs.map((input) => [input.type, input] as const))(
    'is the same bytes as the canonical JSON of its fields (%s)',
    (_type, input) => {
      const { row, event } = auditRow(clock, input);
      const canonical = leafData(leafEventOf({ ...event, seq: 1 }));
      expect(leafJson(event, row.actor as string, row.data as string)).toBe(canonical);
      expect(row.actor).toBe(canonicalJson(input.actor));
      expect(row.data).toBe(canonicalJson(input.data ?? {}));
      expect(leafHashOf({ ...event, seq: 1 })).toBe(row.hash);
    },
  );
});
