import { afterAll, beforeAll } from 'vitest';
import { migratorFor } from '../../src/store/migrate.js';
import { type Engine, openStore, type Store } from '../../src/store/open.js';
import { createMigratedTestDatabase, createTestDatabase, type TestDatabase } from './db.js';

export interface OpenedStore {
  readonly store: Store;
  /** opens more stores on the same database (other instances) */
  readonly url: string;
}

/** A fresh database of `engine` for a describe block: made and opened before its tests, dropped after. */
function openedStore(
  poolSize: number,
  create: () => Promise<TestDatabase>,
  prepare: (store: Store) => Promise<unknown>,
): OpenedStore {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    tdb = await create();
    store = openStore(tdb.url, { poolSize });
    await prepare(store);
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  return {
    get store() {
      if (!store) throw new Error('the store opens in beforeAll');
      return store;
    },
    get url() {
      if (!tdb) throw new Error('the database is made in beforeAll');
      return tdb.url;
    },
  };
}

/** In a describe block: a fresh database of `engine` at the latest schema (a copy of the run's migrated template). */
export function migratedStore(engine: Engine, poolSize = 4): OpenedStore {
  return openedStore(
    poolSize,
    () => createMigratedTestDatabase(engine),
    async () => {},
  );
}

/**
 * In a describe block: a fresh database of `engine` migrated only up to `migration`, for an upgrade
 * test that writes rows as they were then and migrates on (migrateToLatest) itself.
 */
export function storeMigratedTo(engine: Engine, migration: string): OpenedStore {
  return openedStore(
    4,
    () => createTestDatabase(engine),
    async (store) => {
      const result = await migratorFor(store).migrateTo(migration);
      if (result.error) throw result.error;
    },
  );
}
