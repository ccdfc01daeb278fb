import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

// vitest loads this file outside Vite's .js→.ts resolution, so it imports packages only.
const POSTGRES_ADMIN_URL =
  process.env.FERRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** this run's migrated templates (test/support/migrated-template.ts), dropped when the run ends */
    ferryTestTemplates: { postgres: string; sqliteFile: string };
  }
}

/**
 * Both engines run in every test run: a missing PostgreSQL is a failure, not a reason to skip
 * (.ci/run installs and starts one where none runs).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} (${(err as Error).message}); set FERRY_TEST_POSTGRES_URL`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  if (!existsSync(new URL('../../dist/app/main.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
  // Names of this run's own: other runs may share the server and the temp directory.
  const run = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const templates = {
    postgres: `ferry_template_${run}`,
    sqliteFile: join(tmpdir(), `ferry-test-template-${run}.db`),
  };
  project.provide('ferryTestTemplates', templates);
  return async () => {
    rmSync(templates.sqliteFile, { force: true });
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    try {
      for (const name of [templates.postgres, `${templates.postgres}_building`])
        await admin.query(`drop database if exists ${name} with (force)`);
    } finally {
      await admin.end();
    }
  };
}
