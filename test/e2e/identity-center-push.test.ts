import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityCenterScimServer, startIdentityCenterScim } from '../support/identity-center-scim.js';
import {
  FERRY_BIN,
  type FerryProcess,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
  waitFor,
} from '../support/process.js';

/**
 * An administrator connecting IAM Identity Center's automatic provisioning: `ferry scim target set`
 * with the SCIM endpoint and access token, `ferry scim push --dry-run`, `ferry scim push`, and then
 * offboarding reaching Identity Center through the running server's outbox.
 */
describe('ferry scim push to IAM Identity Center', () => {
  let dir: string;
  let server: FerryProcess;
  let remote: IdentityCenterScimServer;
  let env: Record<string, string>;
  /** Until the server's worker has handled every queued event (it runs on its own 1 s tick). */
  const outboxDrained = () =>
    waitFor('the outbox to drain', () => {
      const db = new Database(join(dir, 'ferry.db'), { readonly: true });
      try {
        const { n } = db.prepare('select count(*) as n from outbox where processed_at is null').get() as {
          n: number;
        };
        return n === 0 ? true : undefined;
      } finally {
        db.close();
      }
    });
  const ferry = (args: string[], input?: string) =>
    runFerry(args, { cwd: dir, env, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-icpush-'));
    remote = await startIdentityCenterScim();
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
    await remote?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('configures the endpoint, shows a dry run, pushes, and carries a deactivation over', async () => {
    for (const args of [
      ['users', 'add', 'Test-AWSAdmin@contoso.example', '--display-name', 'Test AWSAdmin'],
      ['users', 'add', 'Test-AWSDeveloper@contoso.example', '--display-name', 'Test AWSDeveloper'],
      ['groups', 'add', 'AWS-Account1-Developers'],
      ['groups', 'add-member', 'AWS-Account1-Developers', 'Test-AWSDeveloper@contoso.example'],
    ]) {
      const r = await ferry(args);
      expect(r.code, r.stderr).toBe(0);
    }
    // The server's outbox handled those changes with no target configured: wait until it has, so the
    // changes below are the dry run's and the push's to make, not a worker tick's.
    await outboxDrained();
    expect(remote.requests).toEqual([]); // nothing configured yet: the outbox pushed nothing

    const noTarget = await ferry(['scim', 'push']);
    expect(noTarget.code).not.toBe(0);
    expect(noTarget.stderr).toMatch(/not found/i);

    const set = await ferry(['scim', 'target', 'set', '--endpoint', remote.endpoint], `${remote.token}\n`);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`pushing to ${remote.endpoint}`);
    const shown = await ferry(['scim', 'target', 'show', '--json']);
    expect(shown.stdout).not.toContain(remote.token);

    const dry = await ferry(['scim', 'push', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('+ create user Test-AWSAdmin@contoso.example');
    expect(dry.stdout).toContain(
      '+ add group AWS-Account1-Developers members (Test-AWSDeveloper@contoso.example)',
    );
    expect(dry.stdout).toContain('users: 2 to create, 0 to update, 0 to delete');
    expect(dry.stdout).toContain('dry run: nothing was changed.');
    expect(remote.users.size).toBe(0);

    const pushed = await ferry(['scim', 'push']);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/users 2 created/);
    expect(pushed.stderr).toBe(''); // no progress bar when stderr is not a terminal
    expect(remote.memberNames('AWS-Account1-Developers')).toEqual(['Test-AWSDeveloper@contoso.example']);

    const again = await ferry(['scim', 'push', '--dry-run']);
    expect(again.stdout).toContain('IAM Identity Center is up to date.');

    // Offboarding: the running server's outbox worker sets active=false in Identity Center.
    const disabled = await ferry(['users', 'disable', 'Test-AWSDeveloper@contoso.example']);
    expect(disabled.code, disabled.stderr).toBe(0);
    await waitFor('the deactivation to reach Identity Center', () =>
      remote.userByName('Test-AWSDeveloper@contoso.example')?.active === false ? true : undefined,
    );
    expect(remote.requests.filter((r) => r.status >= 400)).toEqual([]);
  }, 120_000);

  it('draws a progress bar on stderr when it is a terminal', async () => {
    await ferry(['scim', 'target', 'remove']); // so the outbox does not push these first
    for (const n of [1, 2, 3]) {
      const r = await ferry(['users', 'add', `tty-${n}@contoso.example`]);
      expect(r.code, r.stderr).toBe(0);
    }
    await outboxDrained();
    const set = await ferry(['scim', 'target', 'set', '--endpoint', remote.endpoint], `${remote.token}\n`);
    expect(set.code, set.stderr).toBe(0);
    // `script` runs the command on a pseudo-terminal, as a person at a shell would.
    // (asynchronously: the Identity Center test server runs in this process)
    const run = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn('script', ['-qec', `${process.execPath} ${FERRY_BIN} scim push`, '/dev/null'], {
        cwd: dir,
        env: { PATH: process.env.PATH, ...env },
      });
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout });
      });
    });
    expect(run.status, run.stdout).toBe(0);
    // The outbox may have pushed some tty users already; the two earlier users, their group and its
    // membership were forgotten with the target, so at least four steps remain (taken over after a 409).
    const total = Number(/\r\[[# ]{24}\] 1\/(\d+) /.exec(run.stdout)?.[1]);
    expect(total).toBeGreaterThanOrEqual(4);
    expect(run.stdout).toContain(`] ${total}/${total} add-members group AWS-Account1-Developers`);
    expect(run.stdout).toMatch(new RegExp(`\\r\\[#{24}\\] ${total}/${total} `));
    expect(run.stdout).toMatch(new RegExp(`pushed ${total} change\\(s\\): users \\d+ created, 2 updated`));
    expect(remote.users.size).toBe(5);
  }, 60_000);
});
