import type { Insertable, Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../../test/support/db.js';
import { migratedStore } from '../../../test/support/migrated-store.js';
import { type AuditInput, leafHashOf, listAudit } from '../../audit/ledger.js';
import { ManualClock } from '../../clock.js';
import { openStore, type Store } from '../../store/open.js';
import type { Database, OidcArtifactsTable } from '../../store/schema.js';
import { IssuedWriter } from './issued-writer.js';

const artifact = (id: string, model = 'ClientCredentials'): Insertable<OidcArtifactsTable> => ({
  model,
  id,
  payload: `sealed-${id}`,
  grant_id: null,
  user_code: null,
  uid: null,
  account_id: 'workload:wl-1',
  expires_at: '2026-01-01T00:10:00.000Z',
  consumed_at: null,
});

const issued = (handle: string): AuditInput => ({
  type: 'oidc.token.issued',
  outcome: 'success',
  actor: { type: 'system', name: 'oidc-client:wl-1' },
  subject: 'workload:wl-1',
  ip: '127.0.0.1',
  data: { clientId: 'wl-1', grantType: 'client_credentials', tokenHandle: handle },
});

/** The store, counting what reaches the database as its own commit (a statement or a transaction). */
function counting(store: Store): { store: Store; commits: () => number } {
  let commits = 0;
  const db = new Proxy(store.db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if ((prop === 'executeQuery' || prop === 'transaction') && typeof value === 'function') {
        return (...args: unknown[]) => {
          commits++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Kysely<Database>;
  const sqliteTransaction = store.sqliteTransaction;
  const counted: Store = {
    ...store,
    db,
    ...(sqliteTransaction
      ? {
          sqliteTransaction: (work) => {
            commits++;
            return sqliteTransaction(work);
          },
        }
      : {}),
  };
  return { store: counted, commits: () => commits };
}

/** The ids of the stored artifacts that start with `prefix`, in order. */
async function artifactIdsIn(store: Store, prefix: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom('oidc_artifacts')
    .select('id')
    .where('id', 'like', `${prefix}%`)
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/** The token handles of the `oidc.token.issued` events that start with `prefix`, sorted. */
async function handlesIn(store: Store, prefix: string): Promise<string[]> {
  return (await listAudit(store.db, { type: 'oidc.token.issued', limit: 1000 }))
    .map((e) => String(e.data.tokenHandle))
    .filter((h) => h.startsWith(prefix))
    .sort();
}

describe.each(ENGINES)('the token endpoint’s group commit on %s', (engine) => {
  let database: TestDatabase;
  let store: Store;
  const clock = new ManualClock('2026-01-01T00:00:00.000Z');

  beforeAll(async () => {
    database = await createMigratedTestDatabase(engine);
    store = openStore(database.url);
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  const artifactIds = (prefix: string) => artifactIdsIn(store, prefix);
  const handles = (prefix: string) => handlesIn(store, prefix);

  it('writes requests of the same turn as one commit, and those that come during a commit as the next, each with its own row and event, before they resolve', async () => {
    const c = counting(store);
    const writer = new IssuedWriter(c.store, clock);
    const ids = Array.from({ length: 20 }, (_, i) => `batch-${String(i).padStart(2, '0')}`);
    const resolved: string[] = [];
    const write = (id: string) => writer.write([artifact(id)], issued(id)).then(() => resolved.push(id));
    await Promise.all(ids.slice(0, 17).map(write));
    expect(c.commits()).toBe(1);
    const first = write(ids[17]!);
    await new Promise((r) => setImmediate(r)); // its commit has started
    await Promise.all([first, ...ids.slice(18).map(write)]);
    expect(c.commits()).toBe(3);
    expect(resolved.sort()).toEqual(ids);
    expect(await artifactIds('batch-')).toEqual(ids);
    expect(await handles('batch-')).toEqual(ids);
    for (const e of await listAudit(store.db, { type: 'oidc.token.issued', limit: 1000 }))
      expect(leafHashOf(e)).toBe(e.hash);
  });

  it('a request’s several tokens, tokens without an event and an event without tokens', async () => {
    const writer = new IssuedWriter(store, clock);
    await Promise.all([
      writer.write(
        [artifact('multi-a', 'AccessToken'), artifact('multi-a', 'RefreshToken')],
        issued('multi-a'),
      ),
      writer.write([artifact('multi-b')], null),
      writer.write([], issued('multi-c')),
      writer.write([], null),
    ]);
    const rows = await store.db
      .selectFrom('oidc_artifacts')
      .select(['model', 'id'])
      .where('id', 'like', 'multi-%')
      .orderBy('id')
      .orderBy('model')
      .execute();
    expect(rows).toEqual([
      { model: 'AccessToken', id: 'multi-a' },
      { model: 'RefreshToken', id: 'multi-a' },
      { model: 'ClientCredentials', id: 'multi-b' },
    ]);
    expect(await handles('multi-')).toEqual(['multi-a', 'multi-c']);
  });

  it('one request’s bad row fails that request only: neither its token nor its event is written', async () => {
    const writer = new IssuedWriter(store, clock);
    const bad = { ...artifact('mixed-bad'), payload: null as unknown as string }; // payload is NOT NULL
    const results = await Promise.allSettled([
      writer.write([artifact('mixed-0')], issued('mixed-0')),
      writer.write([artifact('mixed-1')], issued('mixed-1')),
      writer.write([bad], issued('mixed-bad')),
      writer.write([artifact('mixed-2')], issued('mixed-2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(await artifactIds('mixed-')).toEqual(['mixed-0', 'mixed-1', 'mixed-2']);
    expect(await handles('mixed-')).toEqual(['mixed-0', 'mixed-1', 'mixed-2']);
  });
});

// Two commits in flight is PostgreSQL's (SQLite has one connection): the SQLite run has no such case.
describe('the token endpoint’s group commit on postgres, two commits at once', () => {
  const s = migratedStore('postgres');
  const clock = new ManualClock('2026-01-01T00:00:00.000Z');
  const artifactIds = (prefix: string) => artifactIdsIn(s.store, prefix);
  const handles = (prefix: string) => handlesIn(s.store, prefix);

  it('on PostgreSQL a batch commits while another waits for its commit, on a connection of its own; a third waits for one of the two', async () => {
    const writer = new IssuedWriter(s.store, clock);
    // Another transaction holds the keys the first two batches upsert: they wait for it.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let held!: () => void;
    const holding = new Promise<void>((r) => {
      held = r;
    });
    const blocker = s.store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('oidc_artifacts')
        .values([artifact('slots-a'), artifact('slots-b')])
        .execute();
      held();
      await released;
      throw new Error('rolled back');
    });
    await holding;
    const done: string[] = [];
    const write = (id: string) => writer.write([artifact(id)], issued(id)).then(() => done.push(id));
    const pause = () => new Promise((r) => setTimeout(r, 100));
    const a = write('slots-a');
    await pause(); // a's commit waits for the lock
    await write('slots-free'); // commits beside it
    expect(done).toEqual(['slots-free']);
    const b = write('slots-b');
    await pause(); // both slots wait for the lock now
    const c = write('slots-c');
    await pause();
    expect(done).toEqual(['slots-free']);
    release();
    await expect(blocker).rejects.toThrow('rolled back');
    await Promise.all([a, b, c]);
    expect(await artifactIds('slots-')).toEqual(['slots-a', 'slots-b', 'slots-c', 'slots-free']);
    expect(await handles('slots-')).toEqual(['slots-a', 'slots-b', 'slots-c', 'slots-free']);
  });
});
