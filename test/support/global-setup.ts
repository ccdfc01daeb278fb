import { existsSync } from 'node:fs';
import pg from 'pg';

// vitest loads this file outside Vite's .js→.ts resolution, so it imports packages only.
const POSTGRES_ADMIN_URL =
  process.env.FERRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Both engines run in every test run: a missing PostgreSQL is a failure, not a reason to skip
 * (.ci/run installs and starts one where none runs).
 */
export default async function setup(): Promise<void> {
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
}
