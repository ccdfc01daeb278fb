import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../support/postgres.js';
import {
  type RunOptions,
  runFerry as run,
  startFerryProcess,
  stopAllFerryProcesses,
} from '../support/process.js';

const runFerry = (args: string[], options: RunOptions) => run(args, { timeoutMs: 120_000, ...options });
const USER = 'jane@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

/** The sign-in form as a browser posts it (no MFA in this installation): returns the session cookie. */
async function signIn(base: string): Promise<string> {
  const form = await fetch(`${base}/signin`);
  const csrfCookie = /ferry_csrf=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${base}/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `ferry_csrf=${csrfCookie}` },
    body: new URLSearchParams({ csrf, return_to: '/account', username: USER, password: PASSWORD }),
  });
  expect(res.status).toBe(303);
  return /ferry_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
}

afterAll(stopAllFerryProcesses);

describe('ferry db copy --to postgres://…', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-db-copy-'));
  let dropPg: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await dropPg?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves a SQLite installation to PostgreSQL: the session, the admin token and the audit ledger carry over', async () => {
    const env = { FERRY_REQUIRE_MFA: 'false' };
    expect((await runFerry(['init'], { cwd: dir, env })).code).toBe(0);
    const token = (
      await runFerry(['admin', 'token', 'create', '--name', 'admin'], { cwd: dir, env })
    ).stdout.trim();
    const sqliteServer = await startFerryProcess({ cwd: dir, env, readyTimeoutMs: 120_000 });
    const created = await fetch(`${sqliteServer.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userName: USER, password: PASSWORD }),
    });
    expect(created.status).toBe(201);
    const session = await signIn(sqliteServer.url);
    await sqliteServer.stop();
    const before = await runFerry(['audit', 'verify', '--json'], { cwd: dir, env });
    // Sealed or still waiting for the sequencer (the server may stop before its next batch): all count.
    const recorded = (r: { stdout: string }) => {
      const v = JSON.parse(r.stdout) as { events: number; unsealed: number };
      return v.events + v.unsealed;
    };
    const eventsBefore = recorded(before);
    expect(eventsBefore).toBeGreaterThan(0);

    const pg = await createPostgresDatabase();
    dropPg = pg.drop;
    const copied = await runFerry(['db', 'copy', '--to', pg.url], { cwd: dir, env });
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout).toMatch(/copied \d+ rows/);
    // A second copy into the same database is refused: it would mix two installations.
    expect((await runFerry(['db', 'copy', '--to', pg.url], { cwd: dir, env })).code).toBe(2);

    const onPg = { ...env, FERRY_DATABASE_URL: pg.url };
    const after = await runFerry(['audit', 'verify', '--json'], { cwd: dir, env: onPg });
    expect(after.code, after.stdout).toBe(0);
    expect(recorded(after)).toBe(eventsBefore);

    const pgServer = await startFerryProcess({ cwd: dir, env: onPg, readyTimeoutMs: 120_000 });
    try {
      const account = await fetch(`${pgServer.url}/account`, {
        headers: { cookie: `ferry_session=${session}` },
      });
      expect(account.status).toBe(200);
      expect(await account.text()).toContain(USER);
      const users = await fetch(`${pgServer.url}/api/v1/users`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(users.status).toBe(200);
      // The signing keys were sealed under the same master key and still open: a fresh sign-in works too.
      expect(await signIn(pgServer.url)).toMatch(/.+/);
    } finally {
      await pgServer.stop();
    }
  }, 600_000);
});
