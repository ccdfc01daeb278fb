import { chmodSync, copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';

/**
 * Running every migration on a new database costs seconds on PostgreSQL and most of a second on
 * SQLite, and the suite makes hundreds of migrated databases. The first one a test run needs migrates
 * a template of that run (from the sources under test, so never stale); every other one is a copy of
 * it: CREATE DATABASE … TEMPLATE on PostgreSQL, a file copy on SQLite. The global setup names the run
 * and drops its templates at the end. Tests of migrating itself start from empty databases instead.
 */

const names = () => inject('ferryTestTemplates');

let postgresTemplate: Promise<string> | undefined;

/** The name of this run's migrated PostgreSQL template database (migrated on first use, by one file). */
export function migratedPostgresTemplate(adminUrl: string): Promise<string> {
  postgresTemplate ??= buildPostgresTemplate(adminUrl).catch((err) => {
    postgresTemplate = undefined;
    throw err;
  });
  return postgresTemplate;
}

async function buildPostgresTemplate(adminUrl: string): Promise<string> {
  const { postgres: name } = names();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // Test files run in parallel processes: one migrates, the others wait for it (the lock ends with
    // the session, also when a process dies while migrating).
    await admin.query('select pg_advisory_lock(hashtext($1))', [name]);
    const found = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      // Migrated under another name and renamed when done: a template that exists is complete.
      const building = `${name}_building`;
      await admin.query(`drop database if exists ${building} with (force)`);
      await admin.query(`create database ${building}`);
      const url = new URL(adminUrl);
      url.pathname = `/${building}`;
      const store = openStore(url.toString(), { poolSize: 1 });
      try {
        await migrateToLatest(store);
      } finally {
        await store.close();
      }
      await admin.query(`alter database ${building} rename to ${name}`);
    }
  } finally {
    await admin.end();
  }
  return name;
}

let sqliteTemplate: Promise<string> | undefined;

/** This run's migrated SQLite template file (migrated on first use). */
function migratedSqliteTemplate(): Promise<string> {
  sqliteTemplate ??= buildSqliteTemplate().catch((err) => {
    sqliteTemplate = undefined;
    throw err;
  });
  return sqliteTemplate;
}

async function buildSqliteTemplate(): Promise<string> {
  const file = names().sqliteFile;
  if (existsSync(file)) return file;
  // Two processes may both build one: each renames a complete file into place, and either is right.
  const dir = mkdtempSync(join(tmpdir(), 'ferry-test-template-'));
  try {
    const building = join(dir, 'ferry.db');
    const store = openStore(`sqlite:${building}`, { poolSize: 1 });
    try {
      await migrateToLatest(store);
    } finally {
      // The last connection's close checkpoints the WAL into the file and removes it.
      await store.close();
    }
    renameSync(building, file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return file;
}

/** Copies this run's migrated SQLite template to `file` (created 0600, as Ferry creates its own). */
export async function copyMigratedSqlite(file: string): Promise<void> {
  copyFileSync(await migratedSqliteTemplate(), file);
  chmodSync(file, 0o600);
}
