import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../support/db.js';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';
import { CookieJar, csrfTokenOf, signInWithPassword } from '../support/web-form.js';

const PASSWORD = 'correct-horse-battery-42';

/**
 * Two `ferry serve` processes on one database (SQLite file or PostgreSQL), two approvers answering the
 * same request at the same moment, one on each instance: exactly one transition, the other is told 409.
 */
describe.each(ENGINES)('PIM approvals racing across two instances on %s', (engine) => {
  let db: TestDatabase;
  let dir: string;
  let a: FerryProcess;
  let b: FerryProcess;
  let token: string;
  const jars: Record<string, CookieJar> = {};

  const admin = (path: string, method = 'GET', body?: unknown) =>
    fetch(new URL(path, a.url), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const as = async (who: string, on: FerryProcess, path: string, body: unknown) =>
    fetch(new URL(path, on.url), {
      method: 'POST',
      headers: {
        cookie: jars[who]!.header(),
        'content-type': 'application/json',
        'x-csrf-token': await csrfTokenOf(on.url, jars[who]!),
      },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    db = await createMigratedTestDatabase(engine);
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-pim2-'));
    const env = {
      FERRY_DATABASE_URL: db.url,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_REQUIRE_MFA: 'false',
    };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    [a, b] = await Promise.all([startFerryProcess({ cwd: dir, env }), startFerryProcess({ cwd: dir, env })]);
    expect((await admin('/api/v1/aws/accounts/123456789012', 'PUT', { alias: 'Account1' })).status).toBe(201);
    expect(
      (await admin('/api/v1/aws/accounts/123456789012/roles/Administrator', 'PUT', {})).status,
    ).toBeLessThan(300);
    for (const g of ['Devs', 'Admins'])
      expect((await admin('/api/v1/groups', 'POST', { displayName: g })).status).toBe(201);
    for (const [user, group] of [
      ['dev', 'Devs'],
      ['admin1', 'Admins'],
      ['admin2', 'Admins'],
    ] as const) {
      const userName = `${user}@contoso.example`;
      expect((await admin('/api/v1/users', 'POST', { userName, password: PASSWORD })).status).toBe(201);
      expect((await admin(`/api/v1/groups/${group}/members/${userName}`, 'PUT')).status).toBeLessThan(300);
      jars[user] = new CookieJar();
      expect((await signInWithPassword(jars[user]!, a.url, userName, PASSWORD)).status).toBe(303);
    }
    const elig = await admin('/api/v1/pim/eligibilities', 'POST', {
      group: 'Devs',
      account: 'Account1',
      role: 'Administrator',
      maxDuration: 3600,
      approverGroups: ['Admins'],
    });
    expect(elig.status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await stopAllFerryProcesses();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each of 5 requests is approved exactly once though both approvers answer at once on different instances', async () => {
    const ids: string[] = [];
    for (let round = 0; round < 5; round++) {
      const req = await as('dev', a, '/api/v1/pim/activations', {
        account: 'Account1',
        role: 'Administrator',
        durationSeconds: 900,
      });
      expect(req.status).toBe(201);
      const { id } = (await req.json()) as { id: string };
      ids.push(id);
      const answers = await Promise.all([
        as('admin1', a, `/api/v1/pim/activations/${id}/approve`, { reason: 'a' }),
        as('admin2', b, `/api/v1/pim/activations/${id}/approve`, { reason: 'b' }),
      ]);
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409]);
      const loser = answers.find((r) => r.status === 409)!;
      expect(await loser.json()).toMatchObject({
        type: expect.stringMatching(/illegal-transition$/),
        state: 'active',
      });
      const revoke = await as('dev', b, `/api/v1/pim/activations/${id}/revoke`, {});
      expect(revoke.status).toBe(200);
    }
    const events = async (type: string) =>
      (
        (await (await admin(`/api/v1/audit/events?type=${type}&limit=1000`)).json()) as {
          items: Array<{ data: { activationId: string } }>;
        }
      ).items.map((e) => e.data.activationId);
    expect((await events('pim.activation.approved')).sort()).toEqual([...ids].sort());
    expect((await events('pim.activation.active')).sort()).toEqual([...ids].sort());
    const verify = (await (await admin('/api/v1/audit/verify')).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  }, 60_000);
});
