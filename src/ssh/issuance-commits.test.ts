import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { listIssued } from '../audit/issued.js';
import { listAudit } from '../audit/ledger.js';
import { ManualClock } from '../clock.js';
import { openStore, type Store } from '../store/open.js';
import { IssuanceCommits, type IssuanceRecord } from './issuance-commits.js';
import { SerialBlocks } from './serials.js';

const record = (serial: string, subject = `dev-${serial}@contoso.example`): IssuanceRecord => ({
  issued: {
    kind: 'ssh-certificate',
    userId: null,
    subject,
    target: 'ssh:ec2-user@web.dev.internal',
    audience: null,
    externalId: serial,
    details: { keyId: `${subject} serial ${serial}` },
    expiresAt: new Date('2026-01-01T00:15:00.000Z'),
  },
  audit: {
    type: 'ssh-certificate.issued',
    outcome: 'success',
    actor: { type: 'operator', name: 'test' },
    subject,
    data: { serial },
  },
});

describe.each(ENGINES)('SSH serials and issuance records on %s', (engine) => {
  let db: TestDatabase;
  let store: Store;
  const clock = new ManualClock('2026-01-01T00:00:00.000Z');
  beforeAll(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('gives two instances on one database disjoint serials, a block per round trip', async () => {
    const a = new SerialBlocks(store.db, 10);
    const b = new SerialBlocks(store.db, 10);
    const serials: bigint[] = [];
    // interleaved and concurrent: each instance reserves several blocks while the other does too
    for (let round = 0; round < 3; round++)
      serials.push(
        ...(await Promise.all([
          ...Array.from({ length: 13 }, () => a.next()),
          ...Array.from({ length: 7 }, () => b.next()),
        ])),
      );
    expect(new Set(serials).size).toBe(60);
    expect(serials.every((s) => s > 0n)).toBe(true);
    // 39 from a (4 blocks of 10) and 21 from b (3 blocks): 70 reserved in all, in 7 updates
    const row = await store.db.selectFrom('ssh_serials').select('last_serial').executeTakeFirstOrThrow();
    const reservedBefore = BigInt(row.last_serial) - 70n;
    expect(serials.every((s) => s > reservedBefore && s <= reservedBefore + 70n)).toBe(true);
    // a new instance (a restart) starts after every serial reserved before it, used or not
    expect(await new SerialBlocks(store.db, 10).next()).toBe(BigInt(row.last_serial) + 1n);
  });

  it('commits the ledger row and audit event of every issuance before it answers, many at once in one go', async () => {
    const commits = new IssuanceCommits(store, clock);
    const serials = Array.from({ length: 40 }, (_, i) => String(900_000 + i));
    let answered = 0;
    await Promise.all(
      serials.map(async (serial) => {
        await commits.write(record(serial));
        answered++;
        // once write() resolved, the rows are committed and visible to any other reader
        const [issued] = await listIssued(store.db, { externalId: serial, kind: 'ssh-certificate' });
        expect(issued?.subject).toBe(`dev-${serial}@contoso.example`);
      }),
    );
    expect(answered).toBe(40);
    const events = await listAudit(store.db, { type: 'ssh-certificate.issued', limit: 1000 });
    expect(
      events
        .map((e) => e.data.serial)
        .filter((s) => serials.includes(s as string))
        .sort(),
    ).toEqual(serials);
  });

  it('fails only the issuance whose record cannot be written, not those committed with it', async () => {
    const commits = new IssuanceCommits(store, clock);
    const bad = record('910001', null as unknown as string); // subject is NOT NULL in both tables
    const results = await Promise.allSettled([
      commits.write(record('910000')),
      commits.write(record('910002')),
      commits.write(bad),
      commits.write(record('910003')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    for (const serial of ['910000', '910002', '910003'])
      expect(await listIssued(store.db, { externalId: serial })).toHaveLength(1);
    expect(await listIssued(store.db, { externalId: '910001' })).toHaveLength(0);
    const events = await listAudit(store.db, { type: 'ssh-certificate.issued', limit: 1000 });
    expect(events.some((e) => e.data.serial === '910001')).toBe(false);
  });
});
