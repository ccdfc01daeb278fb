import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/store/open.js';
import { copyMigratedSqlite, migratedPostgresTemplate } from './migrated-template.js';
import { createPostgresDatabase, POSTGRES_ADMIN_URL } from './postgres.js';

/** Every storage-touching suite runs once per engine. */
export const ENGINES: Engine[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  engine: Engine;
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given engine: a temp SQLite file or a new PostgreSQL database. */
export function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  return create(engine, false);
}

/**
 * A fresh database of the given engine with every migration applied, as Ferry's first start leaves
 * it (a copy of this run's migrated template: see migrated-template.ts).
 */
export function createMigratedTestDatabase(engine: Engine): Promise<TestDatabase> {
  return create(engine, true);
}

async function create(engine: Engine, migrated: boolean): Promise<TestDatabase> {
  if (engine === 'postgres') {
    const pgdb = await createPostgresDatabase(
      migrated ? await migratedPostgresTemplate(POSTGRES_ADMIN_URL) : undefined,
    );
    return { engine, url: pgdb.url, drop: pgdb.drop };
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-test-'));
  if (migrated) await copyMigratedSqlite(join(dir, 'ferry.db'));
  return {
    engine,
    url: `sqlite:${join(dir, 'ferry.db')}`,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
