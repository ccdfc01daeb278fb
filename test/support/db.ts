import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/store/open.js';
import { createPostgresDatabase } from './postgres.js';

/** Every storage-touching suite runs once per engine. */
export const ENGINES: Engine[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  engine: Engine;
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given engine: a temp SQLite file or a new PostgreSQL database. */
export async function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'postgres') {
    const pgdb = await createPostgresDatabase();
    return { engine, url: pgdb.url, drop: pgdb.drop };
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-test-'));
  return {
    engine,
    url: `sqlite:${join(dir, 'ferry.db')}`,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
