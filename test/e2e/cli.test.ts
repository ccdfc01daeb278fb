import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERIC_SIGNIN_ERROR } from '../../src/identity/pages/routes.js';
import { totpCode } from '../../src/identity/totp.js';
import {
  type FerryProcess,
  freePort,
  portClosed,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
} from '../support/process.js';
import {
  CookieJar,
  getPage,
  inputValue,
  postForm,
  signInWithPassword,
  totpSecretOf,
} from '../support/web-form.js';

/**
 * A new operator's first hour, with the real `ferry` command: init, bootstrap a token, serve,
 * manage the directory from the CLI, read the audit trail.
 */
describe('ferry CLI, end to end', () => {
  let dir: string;
  let elsewhere: string;
  let token = '';
  let server: FerryProcess;
  const jane = 'jane@contoso.example';
  const janePassword = 'correct horse battery staple';
  const client = (args: string[], opts: { input?: string; token?: string } = {}) =>
    runFerry(args, {
      cwd: elsewhere,
      env: { FERRY_SERVER: server.url, FERRY_TOKEN: opts.token ?? token },
      input: opts.input,
    });
  const ok = async (args: string[], opts: { input?: string } = {}) => {
    const res = await client(args, opts);
    expect(res.stderr, `ferry ${args.join(' ')}`).toBe('');
    expect(res.code, `ferry ${args.join(' ')}`).toBe(0);
    return res.stdout;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-cli-'));
    elsewhere = mkdtempSync(join(tmpdir(), 'ferry-e2e-cli-cwd-'));
  });

  afterAll(async () => {
    await stopAllFerryProcesses();
    rmSync(dir, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it('init, admin token create and db migrate set up a working server beside the config', async () => {
    const init = await runFerry(['init'], { cwd: dir });
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(`wrote ${join(dir, 'ferry.yaml')}`);
    expect(statSync(join(dir, 'data', 'master.key')).mode & 0o777).toBe(0o600);

    const [again, created] = await Promise.all([
      runFerry(['init'], { cwd: dir }),
      runFerry(['admin', 'token', 'create', '--name', 'admin'], { cwd: dir }),
    ]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists; use --force');

    expect(created.code).toBe(0);
    // The token, and only the token, goes to stdout (so `export FERRY_TOKEN=$(…)` works).
    expect(created.stdout).toMatch(/^ferry_at_\S+\n$/);
    expect(created.stderr).toContain('shown once');
    token = created.stdout.trim();

    // The SQLite database is created under the config's folder, whatever the working directory.
    expect(existsSync(join(dir, 'data', 'ferry.db'))).toBe(true);
    const migrate = await runFerry(['db', 'migrate', '--config', join(dir, 'ferry.yaml')], {
      cwd: elsewhere,
    });
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toBe(`sqlite:${join(dir, 'data', 'ferry.db')}: already up to date\n`);
    expect(existsSync(join(elsewhere, 'data'))).toBe(false);

    server = await startFerryProcess({ cwd: dir });
    const tokens = await fetch(`${server.url}/api/v1/tokens`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(tokens.status).toBe(200);
    const listed = await tokens.text();
    expect(JSON.parse(listed).items).toEqual([expect.objectContaining({ name: 'admin' })]);
    expect(listed).not.toContain(token.slice('ferry_at_'.length + 8)); // never shown again
  });

  it('adds, lists and shows users and groups', async () => {
    // Independent commands run side by side: each `ferry` invocation costs a Node start-up.
    const [added, group] = await Promise.all([
      ok(
        ['users', 'add', jane, '--display-name', 'Jane', '--attribute', 'department=Eng', '--password-stdin'],
        { input: `${janePassword}\n` },
      ),
      ok(['groups', 'add', 'Developers']),
    ]);
    expect(added).toMatch(new RegExp(`^created ${jane} \\([0-9a-f-]{36}\\)\\n$`));
    expect(group).toMatch(/^created Developers \([0-9a-f-]{36}\)\n$/);

    const [table, json, member] = await Promise.all([
      ok(['users', 'list']),
      ok(['users', 'list', '--json']),
      ok(['groups', 'add-member', 'Developers', jane]),
    ]);
    expect(member).toBe(`${jane} added to Developers\n`);
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^USERNAME\s+DISPLAYNAME\s+ACTIVE\s+DEPARTMENT\s+ID$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^${jane}\\s+Jane\\s+yes\\s+Eng\\s+[0-9a-f-]{36}$`));
    const users = JSON.parse(json) as Array<Record<string, unknown>>;
    expect(users).toEqual([
      expect.objectContaining({
        userName: jane,
        displayName: 'Jane',
        active: true,
        hasPassword: true,
        attributes: { department: 'Eng' },
      }),
    ]);
    expect(json).not.toContain(janePassword);

    const [shown, showUser] = await Promise.all([
      ok(['groups', 'show', 'Developers']),
      ok(['users', 'show', jane]),
    ]);
    expect(shown).toBe(`Developers\nmembers: ${jane}\n`);
    expect(showUser).toContain('\ngroups: Developers\n');

    expect(await ok(['groups', 'remove-member', 'Developers', jane])).toBe(
      `${jane} removed from Developers\n`,
    );
    const [after, user] = await Promise.all([
      ok(['groups', 'show', 'Developers']),
      ok(['users', 'show', jane]),
    ]);
    expect(after).toBe('Developers\nmembers: none\n');
    expect(user).toContain('\ngroups: none\n');
  });

  it('disabling a user ends her sessions and refuses her sign-in', async () => {
    // She signs in (the default config requires MFA, so she enrolls an authenticator first).
    const jar = new CookieJar();
    const password = await signInWithPassword(jar, server.url, jane, janePassword);
    expect(password.status).toBe(303);
    expect(password.location).toMatch(/^\/signin\/enroll\?/);
    const enroll = await getPage(server.url, password.location!, jar);
    const code = await postForm(server.url, '/signin/enroll', jar, {
      csrf: inputValue(enroll.body, 'csrf'),
      return_to: '/account',
      code: totpCode(totpSecretOf(enroll.body), new Date()),
    });
    expect(code.status).toBe(303);
    expect(code.location).toBe('/account');
    expect((await getPage(server.url, '/account', jar)).body).toContain(jane);

    const before = (await ok(['sessions', 'list', jane])).trimEnd().split('\n');
    expect(before[0]).toMatch(/^ID\s+CREATEDAT\s+LASTSEENAT\s+IP\s+AMR$/);
    expect(before).toHaveLength(2);
    expect(before[1]).toMatch(/^[0-9a-f-]{36}\s.*127\.0\.0\.1\s+pwd,otp,mfa$/);

    expect(await ok(['users', 'disable', jane])).toBe(`${jane} disabled\n`);

    const [account, sessionsAfter, refused] = await Promise.all([
      getPage(server.url, '/account', jar),
      ok(['sessions', 'list', jane]),
      signInWithPassword(new CookieJar(), server.url, jane, janePassword),
    ]);
    expect(account.status).toBe(303);
    expect(account.location).toMatch(/^\/signin/);
    expect(sessionsAfter.trimEnd().split('\n')).toHaveLength(1);
    expect(refused.status).toBe(401);
    expect(refused.body).toContain(GENERIC_SIGNIN_ERROR);
  });

  it('audit tail and export show what happened', async () => {
    const [tailOut, exported] = await Promise.all([
      ok(['audit', 'tail', '-n', '5']),
      ok(['audit', 'export', '--since', '1h', '--format', 'jsonl']),
    ]);
    const tail = tailOut.trimEnd().split('\n');
    expect(tail).toHaveLength(5);
    for (const line of tail)
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}#\d+ {2}\S+ {2}(success|failure) /);
    // The newest event is her refused sign-in, with the reason the page did not tell her.
    expect(tail.at(-1)).toMatch(
      new RegExp(`  signin  failure  -  ${jane}  127\\.0\\.0\\.1  reason=disabled$`),
    );
    expect(tail.some((l) => / user\.disabled {2}success {2}api-token:admin {2}jane@/.test(l))).toBe(true);

    const events = exported
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; type: string; subject: string | null; hash: string });
    expect(events.length).toBeGreaterThan(8);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => events[0]!.seq + i));
    expect(events).toContainEqual(expect.objectContaining({ type: 'user.created', subject: jane }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'api-token.created' }));
    expect(events.at(-1)).toEqual(expect.objectContaining({ type: 'signin', subject: jane }));

    // The same window as OCSF records for a SIEM: her refused sign-in is a failed Authentication logon.
    const ocsf = (await ok(['audit', 'export', '--since', '1h', '--format', 'ocsf']))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(ocsf).toHaveLength(events.length);
    expect(ocsf.at(-1)).toMatchObject({
      class_uid: 3002,
      category_uid: 3,
      activity_id: 1,
      type_uid: 300201,
      status_id: 2,
      status_detail: 'disabled',
      user: { name: jane },
      src_endpoint: { ip: '127.0.0.1' },
      metadata: { product: { name: 'Ferry' } },
    });
    expect(ocsf).toContainEqual(
      expect.objectContaining({
        class_uid: 3001,
        activity_id: 1,
        user: expect.objectContaining({ name: jane }),
      }),
    );
  });

  it('a bad token is refused with exit status 1 and a message naming Unauthorized', async () => {
    const res = await client(['users', 'list'], { token: 'ferry_at_00000000000000000000000000000000_nope' });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('ferry: Unauthorized');
    expect(res.stderr).toContain('FERRY_TOKEN');
  });

  it('with no server running, client commands exit 1 saying the server cannot be reached', async () => {
    const port = await freePort();
    const never = await runFerry(['users', 'list', '--server', `http://127.0.0.1:${port}`], {
      cwd: elsewhere,
      env: { FERRY_TOKEN: token },
    });
    expect(never.code).toBe(1);
    expect(never.stderr).toBe(
      `ferry: cannot reach Ferry at http://127.0.0.1:${port}: connection refused (ECONNREFUSED): nothing listens on that port\n` +
        'hint: start the server (ferry serve) or check --server, $FERRY_SERVER or the server of your last `ferry login`\n',
    );

    // The server we used all along, stopped the way a service manager stops it.
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await portClosed(server.port)).toBe(true);
    const gone = await client(['users', 'list']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`cannot reach Ferry at ${server.url}`);
  });
});
