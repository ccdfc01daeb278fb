import { afterAll, beforeAll } from 'vitest';
import { type Engine, openStore, type Store } from '../../src/store/open.js';
import { createMigratedTestDatabase, type TestDatabase } from './db.js';

/**
 * In a describe block: a fresh database of `engine`, migrated and opened before its tests, closed and
 * dropped after them. `url` opens more stores on the same database (other instances).
 */
export function migratedStore(engine: Engine, poolSize = 4): { readonly store: Store; readonly url: string } {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    tdb = await createMigratedTestDatabase(engine);
    store = openStore(tdb.url, { poolSize });
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
