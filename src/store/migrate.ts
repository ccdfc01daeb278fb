import { type MigrationResultSet, Migrator } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Store } from './open.js';

export class MigrationFailed extends Error {
  constructor(name: string | undefined, cause: unknown) {
    super(`migration ${name ?? '(unknown)'} failed`, { cause });
    this.name = 'MigrationFailed';
  }
}

/** Brings the schema to the latest version; safe to run from several instances (Kysely locks). */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const migrator = migratorFor(store);
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationFailed(failed?.migrationName, result.error);
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Ferry's migrations on this store, under Ferry's own migration table names. */
export function migratorFor(store: Store): Migrator {
  return new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'ferry_migrations',
    migrationLockTableName: 'ferry_migrations_lock',
  });
}
