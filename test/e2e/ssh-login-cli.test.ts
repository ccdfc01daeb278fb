import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { runFerry } from '../support/process.js';
import { localLogin, startSshd, type TestSshd } from '../support/sshd.js';

const operator = { actor: { type: 'operator' as const, name: 'test' } };
const PASSWORD = 'correct horse battery staple 42';

/**
 * `ferry login` then `ferry ssh` to a real sshd: the person's access token buys a certificate, the
 * system ssh uses it, and nothing is left on disk. Also `ferry ssh-cert` for other tools.
 */
describe('ferry ssh after ferry login, against a real sshd', () => {
  const login = localLogin();
  let ferry: TestFerry;
  let sshd: TestSshd;
  let home: string;
  let env: Record<string, string>;
  let sshWrapper: string;
  const ferryCli = (args: string[], input?: string) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env, input, timeoutMs: 60_000 });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-ssh-login-'));
    ferry = await startTestFerry('sqlite');
    const s = ferry.services;
    const devs = await s.groups.create(operator, { displayName: 'AWS-Account1-Developers' });
    const dev = await s.users.create(operator, { userName: 'dev@contoso.example', password: PASSWORD });
    await s.groups.setMembership(operator, devs.id, dev.id, true);
    await s.users.create(operator, { userName: 'outsider@contoso.example', password: PASSWORD });
    const mapping = await ferry.api('/api/v1/ssh/logins', {
      method: 'POST',
      body: JSON.stringify({ group: 'AWS-Account1-Developers', hosts: '*', logins: [login] }),
    });
    expect(mapping.status).toBe(201);
    sshd = await startSshd({
      trustedUserCaKeys: await (await ferry.api('/api/v1/ssh/ca.pub', { auth: false })).text(),
      revokedKeys: Buffer.from(await (await ferry.api('/api/v1/ssh/krl', { auth: false })).arrayBuffer()),
      principals: { [login]: [login] },
    });
    // What a person's ~/.ssh/config would say for this host: the port, and no host-key prompt.
    sshWrapper = join(home, 'ssh');
    writeFileSync(
      sshWrapper,
      `#!/bin/sh\nexec ssh -F /dev/null -o BatchMode=yes -o IdentityAgent=none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${sshd.port} "$@"\n`,
    );
    chmodSync(sshWrapper, 0o755);
    env = { HOME: home, FERRY_CONFIG_DIR: join(home, 'ferry'), TMPDIR: home };
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await ferry?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('refuses ferry ssh before ferry login, saying what to run', async () => {
    const res = await ferryCli([
      'ssh',
      '--ssh-command',
      sshWrapper,
      `${login}@127.0.0.1`,
      '--',
      'echo',
      'ok',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('ferry login');
  });

  it('logs in with a certificate bought by the login token, and leaves no key behind', async () => {
    const signedIn = await ferryCli(['login', '--user', 'dev@contoso.example'], `${PASSWORD}\n`);
    expect(signedIn.code, signedIn.stderr).toBe(0);
    const res = await ferryCli([
      'ssh',
      '--ssh-command',
      sshWrapper,
      `${login}@127.0.0.1`,
      '--',
      'echo',
      'ok',
    ]);
    expect(res.stderr).toMatch(/^ferry: certificate dev@contoso\.example serial \d+, valid until \S+\n$/);
    expect(res.stdout.trim()).toBe('ok');
    expect(res.code).toBe(0);
    expect(sshd.log()).toMatch(/ID dev@contoso\.example serial \d+/);
    const leftovers = execFileSync('find', [home, '-name', '*-cert.pub'], { encoding: 'utf8' });
    expect(leftovers).toBe('');
  });

  it('ferry ssh-cert writes a key pair and a certificate for other tools', async () => {
    const out = join(home, 'id_tool');
    const res = await ferryCli([
      'ssh-cert',
      '--out',
      `${out}-cert.pub`,
      '--host',
      '127.0.0.1',
      '--principal',
      login,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const described = execFileSync('ssh-keygen', ['-L', '-f', `${out}-cert.pub`], { encoding: 'utf8' });
    expect(described).toMatch(/Key ID: "dev@contoso\.example serial \d+"/);
    expect(described).toContain(login);
    expect(readFileSync(`${out}.pub`, 'utf8')).toMatch(/^ssh-ed25519 /);
  });

  it('a person without a mapping gets no certificate', async () => {
    const other = { ...env, FERRY_CONFIG_DIR: join(home, 'ferry-outsider') };
    const signedIn = await runFerry(['--server', ferry.url, 'login', '--user', 'outsider@contoso.example'], {
      cwd: home,
      env: other,
      input: `${PASSWORD}\n`,
    });
    expect(signedIn.code).toBe(0);
    const res = await runFerry(
      ['--server', ferry.url, 'ssh', '--ssh-command', sshWrapper, `${login}@127.0.0.1`, '--', 'echo', 'ok'],
      { cwd: home, env: other },
    );
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/no SSH login mapping/);
  });
});
