import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { createTestDatabase, ENGINES, type TestDatabase } from '../support/db.js';
import {
  type RunOptions,
  runFerry as run,
  startFerryProcess,
  stopAllFerryProcesses,
} from '../support/process.js';

/** `ferry …` with room for a loaded CI machine (each run loads Node and the server's modules). */
const runFerry = (args: string[], options: RunOptions) => run(args, { timeoutMs: 120_000, ...options });

const mode = (path: string) => statSync(path).mode & 0o777;

async function tokenNames(url: string): Promise<string[]> {
  const store = openStore(url, { poolSize: 1 });
  try {
    const rows = await store.db.selectFrom('api_tokens').select('name').orderBy('name').execute();
    return rows.map((r) => r.name);
  } finally {
    await store.close();
  }
}

afterAll(stopAllFerryProcesses);

describe('operator commands outside a Ferry installation', () => {
  it('refuse instead of creating an empty database under ./data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-nowhere-'));
    try {
      for (const args of [
        ['db', 'migrate'],
        ['admin', 'token', 'create', '--name', 'x'],
        ['audit', 'verify'],
      ]) {
        const res = await runFerry(args, { cwd: dir });
        expect(res.code, args.join(' ')).toBe(2);
        expect(res.stderr).toContain('no ferry.yaml in');
        expect(res.stderr).toContain('ferry init');
      }
      expect(existsSync(join(dir, 'data'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('files on disk (SQLite installation from ferry init)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-modes-'));
  const data = join(dir, 'data');
  const db = join(data, 'ferry.db');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the data directory 0700 and the database, its -wal and -shm and the master key 0600', async () => {
    expect((await runFerry(['init'], { cwd: dir })).code).toBe(0);
    expect((await runFerry(['admin', 'token', 'create', '--name', 'ops'], { cwd: dir })).code).toBe(0);
    const server = await startFerryProcess({
      cwd: dir,
      env: { FERRY_REQUIRE_MFA: 'false' },
      readyTimeoutMs: 120_000,
    });
    try {
      expect(mode(data)).toBe(0o700);
      for (const f of [db, `${db}-wal`, `${db}-shm`, join(data, 'master.key')])
        expect(mode(f), f).toBe(0o600);
      expect(server.output()).not.toContain('readable beyond its owner');
    } finally {
      await server.stop();
    }
  }, 240_000);

  it('warns at start, and ferry doctor fails, when the files are wider', async () => {
    chmodSync(db, 0o644);
    chmodSync(join(data, 'master.key'), 0o640);
    const server = await startFerryProcess({
      cwd: dir,
      env: { FERRY_REQUIRE_MFA: 'false', FERRY_LOG_LEVEL: 'warn' },
      readyTimeoutMs: 120_000,
    });
    await server.stop();
    expect(server.output()).toContain(
      `database ${db} is mode 0644, readable beyond its owner; fix: chmod 600 ${db}`,
    );
    expect(server.output()).toContain('master key');
    const doctor = await runFerry(['doctor'], {
      cwd: dir,
      env: { FERRY_AWS_ENDPOINT: 'http://127.0.0.1:9' },
    });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL {2}file modes: database .* is mode 0644/);
    chmodSync(db, 0o600);
    chmodSync(join(data, 'master.key'), 0o600);
  }, 240_000);

  it('ferry doctor passes the installation once fixed, and names each check', async () => {
    // Stands in for the AWS endpoint: the check only needs an HTTP answer.
    const aws = createServer((_req, res) => res.writeHead(403).end());
    await new Promise<void>((resolve) => aws.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(aws.address() as AddressInfo).port}`;
    try {
      const doctor = await runFerry(['doctor', '--json'], {
        cwd: dir,
        env: { FERRY_AWS_ENDPOINT: endpoint },
      });
      const checks = JSON.parse(doctor.stdout) as Array<{ name: string; status: string; detail: string }>;
      expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
      expect(doctor.code).toBe(0);
      expect(checks.map((c) => c.name)).toEqual(
        expect.arrayContaining([
          'config',
          'public URL',
          'file modes',
          'master key',
          'database',
          'migrations',
          'clock',
          'signing key saml',
          'AWS',
        ]),
      );
    } finally {
      aws.close();
    }
  }, 240_000);

  it('ferry doctor fails on a wrong master key, an unreachable AWS and a plain-http public URL', async () => {
    const otherKey = join(dir, 'other.key');
    writeFileSync(otherKey, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    const doctor = await runFerry(['doctor', '--json'], {
      cwd: dir,
      env: {
        FERRY_MASTER_KEY_FILE: otherKey,
        FERRY_AWS_ENDPOINT: 'http://127.0.0.1:9',
        FERRY_PUBLIC_URL: 'http://ferry.example.com',
      },
    });
    expect(doctor.code).toBe(1);
    const failed = (JSON.parse(doctor.stdout) as Array<{ name: string; status: string }>)
      .filter((c) => c.status === 'fail')
      .map((c) => c.name);
    expect(failed).toEqual(expect.arrayContaining(['signing key saml', 'AWS', 'public URL']));
  }, 240_000);
});

describe.each(ENGINES)('ferry backup and ferry restore on %s', (engine) => {
  const dir = mkdtempSync(join(tmpdir(), `ferry-backup-${engine}-`));
  let database: TestDatabase;
  afterAll(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores the database as it was at the backup, with an intact audit trail', async () => {
    database = await createTestDatabase(engine);
    const env = { FERRY_DATABASE_URL: database.url };
    expect((await runFerry(['init'], { cwd: dir, env })).code).toBe(0);
    for (const name of ['before-1', 'before-2']) {
      expect((await runFerry(['admin', 'token', 'create', '--name', name], { cwd: dir, env })).code).toBe(0);
    }
    const backup = join(dir, 'backups', 'ferry.backup');
    const made = await runFerry(['backup', '--out', backup], { cwd: dir, env });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toContain('The master key is not in the backup');
    expect(mode(backup)).toBe(0o600);
    expect((await runFerry(['backup', '--out', backup], { cwd: dir, env })).code).toBe(2);

    expect((await runFerry(['admin', 'token', 'create', '--name', 'after'], { cwd: dir, env })).code).toBe(0);
    expect(await tokenNames(database.url)).toEqual(['after', 'before-1', 'before-2']);

    const refused = await runFerry(['restore', backup], { cwd: dir, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--force');
    const restored = await runFerry(['restore', backup, '--force'], { cwd: dir, env });
    expect(restored.code, restored.stderr).toBe(0);
    // Events written by operator commands alone are not sealed yet (no server ran): both count.
    const intact = /audit ledger intact: (\d+) sealed events(?:, (\d+) not sealed yet)?/.exec(
      restored.stdout,
    );
    expect(intact, restored.stdout).not.toBeNull();
    expect(Number(intact![1]) + Number(intact![2] ?? 0)).toBeGreaterThan(0);
    expect(await tokenNames(database.url)).toEqual(['before-1', 'before-2']);
    const verify = await runFerry(['audit', 'verify'], { cwd: dir, env });
    expect(verify.code, verify.stdout).toBe(0);
    if (engine === 'sqlite') expect(mode(database.url.slice('sqlite:'.length))).toBe(0o600);
  }, 240_000);

  it('refuses a file that is not a backup of this engine', async () => {
    const bogus = join(dir, 'bogus.backup');
    writeFileSync(bogus, 'not a backup');
    const res = await runFerry(['restore', bogus, '--force'], {
      cwd: dir,
      env: { FERRY_DATABASE_URL: database.url },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('is not a');
  }, 240_000);
});
