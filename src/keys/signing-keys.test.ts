import { spawn } from 'node:child_process';
import { randomBytes, sign, verify, X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import type { AuditContext } from '../audit/actor.js';
import { listAudit } from '../audit/ledger.js';
import { iso, ManualClock } from '../clock.js';
import { Conflict } from '../errors.js';
import { openStore, type Store } from '../store/open.js';
import { MasterKey, SealedDataTampered } from './master-key.js';
import { type GeneratedSigningKey, generateSelfSignedRsa } from './self-signed-certificate.js';
import { NoCurrentSigningKey, SigningKeys, type SigningKeysOptions, sealContext } from './signing-keys.js';

const VITE_NODE = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
const RACER = fileURLToPath(new URL('../../test/support/signing-key-racer.ts', import.meta.url));

interface Racer {
  ready: Promise<void>;
  go(): void;
  /** the id of the current key the racer ended with */
  result: Promise<string>;
}

/** A separate process starting like a Ferry instance (see test/support/signing-key-racer.ts). */
function startRacer(env: Record<string, string>): Racer {
  const child = spawn(process.execPath, [VITE_NODE, RACER], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => {}); // a racer that died already fails through `result`
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const result = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      child.stdin.destroy();
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve((JSON.parse(last) as { id: string }).id);
      else reject(new Error(`racer exited with ${code}: ${stderr.slice(0, 2000)}`));
    });
  });
  // A racer that dies before it is ready must fail the test, not hang it.
  result.catch(() => onReady());
  // stdin stays open: vite-node's Vite server exits the process when its standard input ends.
  return { ready, go: () => child.stdin.write('go\n'), result };
}

const admin: AuditContext = {
  actor: { type: 'user', id: 'u-1', name: 'admin@contoso.example' },
  ip: '192.0.2.7',
};
const HOUR = 3_600_000;

// Pre-generated 2048-bit material keeps most tests fast; one test per engine uses the real generator.
let pool: GeneratedSigningKey[] = [];
beforeAll(async () => {
  pool = await Promise.all(
    Array.from({ length: 6 }, () =>
      generateSelfSignedRsa({
        commonName: 'Ferry SAML signing',
        modulusLength: 2048,
        notBefore: new Date('2026-01-01T00:00:00Z'),
        validityYears: 10,
      }),
    ),
  );
});

/** Hands out the pool's keys in turn, so each new row gets its own material. */
function fromPool(): SigningKeysOptions {
  let calls = 0;
  return { generateKey: async () => pool[calls++ % pool.length]! };
}

describe.each(ENGINES)('signing keys on %s', (engine) => {
  let tdb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let masterKey: MasterKey;
  let rootKey: Buffer;
  const extraStores: Store[] = [];

  beforeEach(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url);
    clock = new ManualClock('2026-01-01T00:00:00.000Z');
    rootKey = randomBytes(32);
    masterKey = new MasterKey(rootKey);
  });
  afterEach(async () => {
    for (const s of extraStores.splice(0)) await s.close();
    await store.close();
    await tdb.drop();
  });

  const anotherStore = () => {
    const s = openStore(tdb.url);
    extraStores.push(s);
    return s;
  };
  /**
   * A second Store for instances that overlap in time. Two SQLite connections in one process can't
   * overlap (better-sqlite3 waits for the write lock synchronously, so the holder never gets to
   * commit): on SQLite, overlapping instances share one Store, and separate processes race below.
   */
  const concurrentStore = () => (engine === 'postgres' ? anotherStore() : store);
  const rows = () => store.db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();

  it('creates an RSA-3072 key with a self-signed certificate once, and returns it on every later call', async () => {
    const keys = new SigningKeys(store, clock, masterKey);
    const first = await keys.ensureCurrent('saml');
    expect(first.state).toBe('current');
    expect(first.algorithm).toBe('rsa-sha256');
    expect(first.privateKey.asymmetricKeyType).toBe('rsa');
    expect(first.privateKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    const cert = new X509Certificate(first.certificatePem);
    expect(cert.subject).toBe('CN=Ferry SAML signing');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBeGreaterThanOrEqual(2048);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(3650 * 24 * HOUR);
    expect(first.certificateBase64).toBe(cert.raw.toString('base64'));

    clock.advance(HOUR);
    const again = await keys.ensureCurrent('saml');
    const elsewhere = await new SigningKeys(anotherStore(), clock, masterKey).ensureCurrent('saml');
    expect(again.id).toBe(first.id);
    expect(elsewhere.id).toBe(first.id);
    expect(elsewhere.certificatePem).toBe(first.certificatePem);
    expect(await rows()).toHaveLength(1);
    const created = await listAudit(store.db, { type: 'signing-key.created' });
    expect(created).toHaveLength(1);
    expect(created[0]!.subject).toBe(first.id);
    expect(created[0]!.data).toMatchObject({
      purpose: 'saml',
      state: 'current',
      certificateSha256: cert.fingerprint256,
    });
  });

  it('ends with exactly one current key when instances start at once', async () => {
    const env = {
      RACER_DATABASE_URL: tdb.url,
      RACER_MASTER_KEY: rootKey.toString('base64'),
      RACER_NOW: iso(clock.now()),
    };
    const racers = [startRacer(env), startRacer(env)];
    // Both processes have checked for a current key and made their own before either may go on.
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.go();
    const ids = await Promise.all(racers.map((r) => r.result));
    expect(ids[0]).toBe(ids[1]);
    const stored = await rows();
    expect(stored.map((r) => [r.id, r.state])).toEqual([[ids[0], 'current']]);
    expect(await listAudit(store.db, { type: 'signing-key.created' })).toHaveLength(1);
    expect((await new SigningKeys(store, clock, masterKey).current('saml')).id).toBe(ids[0]);
  });

  it('ends with exactly one current key when instances in one process start at once (two Stores on PostgreSQL)', async () => {
    const racers = 4;
    // Every racer has passed the "is there a current key?" check and made its key before any of them
    // reaches the transaction: only the lock (and the re-check under it) keeps the keys from doubling.
    let arrived = 0;
    let releaseAll: () => void = () => {};
    const everyoneArrived = new Promise<void>((r) => {
      releaseAll = r;
    });
    const instances = Array.from({ length: racers }, (_, i) => {
      return new SigningKeys(i % 2 === 0 ? store : concurrentStore(), clock, masterKey, {
        generateKey: async () => {
          arrived++;
          if (arrived === racers) releaseAll();
          await everyoneArrived;
          return pool[i]!;
        },
      });
    });
    const results = await Promise.all(instances.map((k) => k.ensureCurrent('saml')));
    expect(arrived).toBe(racers);
    expect(new Set(results.map((k) => k.id)).size).toBe(1);
    const stored = await rows();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.state).toBe('current');
    expect(results[0]!.certificatePem).toBe(stored[0]!.certificate_pem);
    expect(await listAudit(store.db, { type: 'signing-key.created' })).toHaveLength(1);
  });

  it('keeps the private key sealed, and it round-trips: signs what the certificate verifies', async () => {
    const keys = new SigningKeys(store, clock, masterKey, fromPool());
    const key = await keys.ensureCurrent('saml');
    const [row] = await rows();
    expect(row!.private_key_sealed).not.toMatch(/PRIVATE KEY|MII/);
    // Read back through another instance (nothing cached): unsealed from the database.
    const reread = await new SigningKeys(anotherStore(), clock, masterKey).current('saml');
    const data = Buffer.from('SignedInfo bytes');
    const signature = sign('sha256', data, reread.privateKey);
    expect(verify('sha256', data, new X509Certificate(key.certificatePem).publicKey, signature)).toBe(true);
    expect(
      verify(
        'sha256',
        Buffer.from('other bytes'),
        new X509Certificate(key.certificatePem).publicKey,
        signature,
      ),
    ).toBe(false);
    expect(reread.privateKey.asymmetricKeyDetails?.modulusLength).toBeGreaterThanOrEqual(2048);
    // Bound to its row and to the master key.
    expect(() => masterKey.unseal(row!.private_key_sealed, sealContext('another-id'))).toThrow(
      SealedDataTampered,
    );
    const stranger = new SigningKeys(store, clock, new MasterKey(randomBytes(32)));
    await expect(stranger.current('saml')).rejects.toThrow(SealedDataTampered);
  });

  it('has no current key before ensureCurrent, and refuses to rotate from nothing', async () => {
    const keys = new SigningKeys(store, clock, masterKey, fromPool());
    await expect(keys.current('saml')).rejects.toThrow(NoCurrentSigningKey);
    expect(await keys.published('saml')).toEqual([]);
    await expect(keys.rotate('saml', admin)).rejects.toThrow(Conflict);
    expect(await rows()).toHaveLength(0);
  });

  it('rotate publishes a next key without signing with it; activateNext switches and unpublishes the old one', async () => {
    const keys = new SigningKeys(store, clock, masterKey, fromPool());
    const first = await keys.ensureCurrent('saml');
    clock.advance(HOUR);
    const next = await keys.rotate('saml', admin);
    expect(next.state).toBe('next');
    expect(next.id).not.toBe(first.id);
    expect(next.certificatePem).not.toBe(first.certificatePem);
    expect((await keys.current('saml')).id).toBe(first.id);
    expect((await keys.published('saml')).map((k) => [k.id, k.state])).toEqual([
      [first.id, 'current'],
      [next.id, 'next'],
    ]);
    await expect(keys.rotate('saml', admin)).rejects.toThrow(/already staged/);

    clock.advance(HOUR);
    const activated = await keys.activateNext('saml', admin);
    expect(activated.id).toBe(next.id);
    expect(activated.state).toBe('current');
    expect((await keys.current('saml')).id).toBe(next.id);
    expect((await keys.published('saml')).map((k) => k.id)).toEqual([next.id]);
    const byId = new Map((await rows()).map((r) => [r.id, r]));
    expect(byId.get(first.id)).toMatchObject({ state: 'retired', retired_at: '2026-01-01T02:00:00.000Z' });
    expect(byId.get(next.id)).toMatchObject({ state: 'current', activated_at: '2026-01-01T02:00:00.000Z' });
    await expect(keys.activateNext('saml', admin)).rejects.toThrow(/no next saml signing key/);
    // ensureCurrent after a rotation keeps the activated key.
    expect((await keys.ensureCurrent('saml')).id).toBe(next.id);
  });

  it('audits staging and activation with who did it', async () => {
    const keys = new SigningKeys(store, clock, masterKey, fromPool());
    const first = await keys.ensureCurrent('saml');
    const next = await keys.rotate('saml', { ...admin, requestId: 'req-1' });
    await keys.activateNext('saml', admin);
    const events = await listAudit(store.db, {});
    expect(events.map((e) => [e.type, e.subject])).toEqual([
      ['signing-key.created', first.id],
      ['signing-key.staged', next.id],
      ['signing-key.activated', next.id],
    ]);
    const [created, staged, activated] = events;
    expect(created!.actor).toEqual({ type: 'system', name: 'signing-keys' });
    expect(staged!.actor).toEqual(admin.actor);
    expect(staged!.ip).toBe('192.0.2.7');
    expect(staged!.requestId).toBe('req-1');
    expect(staged!.data).toMatchObject({ purpose: 'saml', state: 'next' });
    expect(activated!.data).toMatchObject({ state: 'current', retired: [first.id] });
    for (const e of events) expect(JSON.stringify(e.data)).not.toMatch(/PRIVATE|sealed/i);
  });

  it('rotateDue activates the staged key only after the grace period, once across instances', async () => {
    const keys = new SigningKeys(store, clock, masterKey, fromPool());
    await keys.ensureCurrent('saml');
    expect(await keys.rotateDue('saml', 24 * HOUR)).toBeNull();
    const next = await keys.rotate('saml', admin);
    clock.advance(24 * HOUR - 1000);
    expect(await keys.rotateDue('saml', 24 * HOUR)).toBeNull();
    expect((await keys.current('saml')).state).toBe('current');
    expect((await keys.current('saml')).id).not.toBe(next.id);

    clock.advance(1000);
    const other = new SigningKeys(concurrentStore(), clock, masterKey);
    const results = await Promise.all([
      keys.rotateDue('saml', 24 * HOUR),
      other.rotateDue('saml', 24 * HOUR),
    ]);
    expect(results.filter((r) => r !== null).map((r) => r!.id)).toEqual([next.id]);
    expect((await keys.current('saml')).id).toBe(next.id);
    const activations = await listAudit(store.db, { type: 'signing-key.activated' });
    expect(activations).toHaveLength(1);
    expect(activations[0]!.actor).toEqual({ type: 'system', name: 'signing-key-rotation' });
    expect((await rows()).filter((r) => r.state === 'current')).toHaveLength(1);
  });

  it('two concurrent rotations stage one key; the other is refused', async () => {
    const a = new SigningKeys(store, clock, masterKey, fromPool());
    await a.ensureCurrent('saml');
    const b = new SigningKeys(concurrentStore(), clock, masterKey, fromPool());
    const outcomes = await Promise.allSettled([a.rotate('saml', admin), b.rotate('saml', admin)]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(Conflict);
    expect((await rows()).filter((r) => r.state === 'next')).toHaveLength(1);
  });
});
