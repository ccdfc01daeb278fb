import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';

/** An administrator connecting Entra ID: `ferry scim token create` prints a token that opens /scim/v2. */
describe('SCIM provisioning connections with the ferry command', () => {
  let dir: string;
  let server: FerryProcess;
  let env: Record<string, string>;
  const ferry = (args: string[]) => runFerry(args, { cwd: dir, env, timeoutMs: 60_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-scim-'));
    const base = {
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const token = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env: base });
    expect(token.code, token.stderr).toBe(0);
    server = await startFerryProcess({ cwd: dir, env: base });
    env = { ...base, FERRY_SERVER: server.url, FERRY_TOKEN: token.stdout.trim() };
  }, 90_000);

  afterAll(async () => {
    await stopAllFerryProcesses();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a token once, lists connections without it, and revokes it', async () => {
    const created = await ferry(['scim', 'token', 'create', '--name', 'entra']);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.split('\n')[0]!;
    expect(token).toMatch(/^ferry_scim_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(created.stdout).toContain(`tenant URL: ${server.url}/scim/v2`);

    const scim = (path: string, t = token) =>
      fetch(new URL(`/scim/v2${path}`, server.url), { headers: { authorization: `Bearer ${t}` } });
    const probe = await scim(`/Users?filter=${encodeURIComponent('userName eq "nobody"')}`);
    expect(probe.status).toBe(200);
    expect(((await probe.json()) as { totalResults: number }).totalResults).toBe(0);
    // the admin token is not a SCIM token
    expect((await scim('/Users', env.FERRY_TOKEN)).status).toBe(401);

    const listed = await ferry(['scim', 'token', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(token.slice(-43));
    const [conn] = JSON.parse(listed.stdout) as Array<{
      id: string;
      name: string;
      revokedAt: string | null;
      lastUsedAt: string | null;
    }>;
    expect(conn).toMatchObject({ name: 'entra', revokedAt: null });
    expect(conn!.lastUsedAt).not.toBeNull();

    const table = await ferry(['scim', 'token', 'list']);
    expect(table.stdout).toMatch(/entra\s+active/);

    const revoked = await ferry(['scim', 'token', 'revoke', conn!.id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await scim('/Users')).status).toBe(401);
    expect((await ferry(['scim', 'token', 'list'])).stdout).toMatch(/entra\s+revoked/);

    const bad = await ferry(['scim', 'token', 'create', '--name', 'no/slashes']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('name must be');
  });
});
