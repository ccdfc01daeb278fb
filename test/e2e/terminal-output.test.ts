import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';
import { controlsIn } from '../support/terminal.js';
import { CookieJar, signInWithPassword } from '../support/web-form.js';

/** Clear the screen, home the cursor, then print a line that looks like one of Ferry's own. */
const FORGED = '\u001b[2J\u001b[H\n2026-01-01T00:00:00.000Z  #1  admin.granted  success  user:root';
const HOSTILE_NAME = `Mallory${FORGED}\u202etxt.exe\u009b31m\r`;

/**
 * A person who may write a display name, a SCIM attribute or a user name at the sign-in form tries to
 * take over the terminal of the administrator who reads the directory and the audit trail with the
 * real `ferry` command. What reaches the terminal is what was stored, shown inertly, one line each.
 */
describe('untrusted text reaches the terminal inert', () => {
  let dir: string;
  let server: FerryProcess;
  let env: Record<string, string>;
  const ferry = (args: string[]) => runFerry(args, { cwd: dir, env, timeoutMs: 60_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-terminal-'));
    const base = {
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const token = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env: base });
    expect(token.code, token.stderr).toBe(0);
    server = await startFerryProcess({ cwd: dir, env: base, readyTimeoutMs: 90_000 });
    env = { ...base, FERRY_SERVER: server.url, FERRY_TOKEN: token.stdout.trim() };

    // Over the admin API: a hostile display name and department.
    const api = await fetch(new URL('/api/v1/users', server.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${env.FERRY_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        userName: 'mallory@contoso.example',
        displayName: HOSTILE_NAME,
        attributes: { department: `Sales${FORGED}` },
      }),
    });
    expect(api.status, await api.clone().text()).toBe(201);

    // Over SCIM, as a compromised or careless provisioning source would.
    const created = await ferry(['scim', 'token', 'create', '--name', 'entra']);
    expect(created.code, created.stderr).toBe(0);
    const scimToken = created.stdout.split('\n')[0]!;
    const scim = (path: string, body: unknown) =>
      fetch(new URL(`/scim/v2${path}`, server.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
        body: JSON.stringify(body),
      });
    const user = await scim('/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'trudy@contoso.example',
      displayName: HOSTILE_NAME,
      active: true,
    });
    expect(user.status, await user.clone().text()).toBe(201);
    const group = await scim('/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: `Ops${FORGED}`,
    });
    expect(group.status, await group.clone().text()).toBe(201);

    // At the sign-in form: anyone on the network may type a user name; the refusal is audited.
    const refused = await signInWithPassword(
      new CookieJar(),
      server.url,
      `nobody${FORGED}`,
      'wrong password',
    );
    expect(refused.status).toBeLessThan(500);
  }, 240_000);

  afterAll(async () => {
    await stopAllFerryProcesses();
    rmSync(dir, { recursive: true, force: true });
  });

  const expectInert = (stdout: string) => {
    expect(controlsIn(stdout)).toEqual([]);
    // The forged line is shown inside its field, never at the start of a line of its own.
    expect(stdout).not.toMatch(/^2026-01-01T00:00:00.000Z {2}#1/m);
  };

  it('prints users, one row each, with the hostile display name escaped', async () => {
    const listed = await ferry(['users', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expectInert(listed.stdout);
    expect(listed.stdout.trimEnd().split('\n')).toHaveLength(3); // header, mallory, trudy
    expect(listed.stdout).toContain('Mallory\\e[2J\\e[H\\n2026-01-01T00:00:00.000Z');
    expect(listed.stdout).toContain('\\u202etxt.exe\\x9b31m\\r');

    const shown = await ferry(['users', 'show', 'trudy@contoso.example']);
    expect(shown.code, shown.stderr).toBe(0);
    expectInert(shown.stdout);
    expect(shown.stdout.split('\n')[0]).toBe(
      'trudy@contoso.example  Mallory\\e[2J\\e[H\\n2026-01-01T00:00:00.000Z  #1  admin.granted  success  user:root\\u202etxt.exe\\x9b31m\\r',
    );

    const groups = await ferry(['groups', 'list']);
    expectInert(groups.stdout);
    expect(groups.stdout).toContain('Ops\\e[2J');
  });

  it('keeps --json parseable to the very same strings, with no raw control character', async () => {
    const listed = await ferry(['users', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(controlsIn(listed.stdout)).toEqual([]);
    const users = JSON.parse(listed.stdout) as Array<{ displayName: string }>;
    expect(users.map((u) => u.displayName)).toEqual([HOSTILE_NAME, HOSTILE_NAME]);
  });

  it('lets no audit event clear the screen or forge a line in `ferry audit tail`', async () => {
    const tail = await ferry(['audit', 'tail', '-n', '100']);
    expect(tail.code, tail.stderr).toBe(0);
    expectInert(tail.stdout);
    const lines = tail.stdout.trimEnd().split('\n');
    // every line is one event: it starts with its time and its sequence number
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}#\d+ {2}/);
    expect(tail.stdout).toContain('nobody\\e[2J\\e[H\\n2026-01-01T00:00:00.000Z');

    const json = await ferry(['audit', 'tail', '-n', '100', '--json']);
    expect(controlsIn(json.stdout)).toEqual([]);
    const events = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { subject: string | null });
    expect(events.length).toBe(lines.length);
    expect(events.some((e) => e.subject?.includes(FORGED))).toBe(true);
  });

  it('escapes what the server quotes back in an error', async () => {
    const missing = await ferry(['users', 'show', `ghost${FORGED}`]);
    expect(missing.code).toBe(1);
    expect(controlsIn(missing.stderr)).toEqual([]);
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
