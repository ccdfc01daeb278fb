import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { runFerry } from '../support/process.js';
import { newKeyPair } from '../support/sshd.js';

/**
 * The SSH administration commands with the real `ferry` binary. (`ferry ssh` and `ferry ssh-cert`
 * need a person's token from `ferry login`; here they must fail cleanly without one.)
 */
describe('ferry ssh commands', () => {
  let ferry: TestFerry;
  let cwd: string;
  const ferryCli = (args: string[], env: Record<string, string> = {}) =>
    runFerry(args, {
      cwd,
      env: { FERRY_SERVER: ferry.url, FERRY_TOKEN: ferry.adminToken, TMPDIR: cwd, ...env },
    });

  beforeAll(async () => {
    ferry = await startTestFerry('sqlite');
    await ferry.services.groups.create(
      { actor: { type: 'operator', name: 'test' } },
      { displayName: 'AWS-Account1-Developers' },
    );
    cwd = mkdtempSync(join(tmpdir(), 'ferry-ssh-cli-'));
  });
  afterAll(async () => {
    await ferry?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('manages login mappings', async () => {
    const add = await ferryCli([
      'ssh',
      'logins',
      'add',
      '--group',
      'AWS-Account1-Developers',
      '--hosts',
      '*.dev.internal',
      '--login',
      'ec2-user',
      '--login',
      'deploy',
      '--max-duration',
      '5m',
    ]);
    expect(add.stderr).toBe('');
    expect(add.stdout).toMatch(
      /^AWS-Account1-Developers may log in as ec2-user, deploy on \*\.dev\.internal \(/,
    );
    const list = await ferryCli(['ssh', 'logins', 'list', '--json']);
    const items = JSON.parse(list.stdout) as Array<{ id: string; logins: string[]; maxDuration: number }>;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ logins: ['ec2-user', 'deploy'], maxDuration: 300 });
    const badGroup = await ferryCli(['ssh', 'logins', 'add', '--group', 'Nobody', '--login', 'x']);
    expect(badGroup.code).toBe(1);
    expect(badGroup.stderr).toContain('group Nobody not found');
    const badLogin = await ferryCli([
      'ssh',
      'logins',
      'add',
      '--group',
      'AWS-Account1-Developers',
      '--login',
      'Bad Login',
    ]);
    expect(badLogin.code).toBe(1);
    expect(badLogin.stderr).toContain('is not a Linux user name');
    const remove = await ferryCli(['ssh', 'logins', 'remove', items[0]!.id]);
    expect(remove.code).toBe(0);
    expect(JSON.parse((await ferryCli(['ssh', 'logins', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('signs a host key and prints the CA lines servers and clients install', async () => {
    const host = newKeyPair(cwd, 'ssh_host_ed25519_key');
    const res = await ferryCli([
      'ssh',
      'host-cert',
      '--key',
      `${host.key}.pub`,
      '--hostname',
      'web-1.dev.internal',
      '--hostname',
      '10.0.0.5',
      '--duration',
      '2d',
    ]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toContain(`host certificate: ${host.key}-cert.pub`);
    const listing = execFileSync('ssh-keygen', ['-L', '-f', `${host.key}-cert.pub`], { encoding: 'utf8' });
    expect(listing).toContain('host certificate');
    expect(listing).toMatch(/Principals:\s*\n\s+web-1\.dev\.internal\n\s+10\.0\.0\.5\n/);
    const [from, to] = /Valid: from (\S+) to (\S+)/
      .exec(listing)!
      .slice(1)
      .map((t) => Date.parse(`${t}Z`));
    expect(to! - from!).toBe(2 * 86_400_000 + 60_000);

    const ca = await ferryCli(['ssh', 'ca']);
    expect(ca.stdout).toMatch(/^ssh-ed25519 \S+ ferry-user-ca-current\nssh-rsa \S+ ferry-user-ca-current\n$/);
    const known = await ferryCli(['ssh', 'known-hosts', '--hosts', '*.dev.internal']);
    expect(known.stdout).toMatch(
      /^@cert-authority \*\.dev\.internal ssh-ed25519 \S+ ferry-host-ca-current\n$/,
    );
    // The host certificate was signed by the key in that line.
    const caFingerprint = execFileSync('ssh-keygen', ['-l', '-f', '-'], {
      input: known.stdout.split(' ').slice(2, 4).join(' '),
      encoding: 'utf8',
    }).split(' ')[1];
    expect(listing).toContain(`Signing CA: ED25519 ${caFingerprint}`);
  });

  it('rotates a CA key: staged keys are published at once and take over when activated', async () => {
    const before = (await ferryCli(['ssh', 'ca'])).stdout;
    const staged = await ferryCli(['ssh', 'rotate-ca', '--use', 'user', '--algorithm', 'ed25519']);
    expect(staged.stdout).toMatch(/^user CA key \S+ is next: ssh-ed25519 /);
    const during = (await ferryCli(['ssh', 'ca'])).stdout.split('\n').filter(Boolean);
    expect(during).toHaveLength(3);
    expect(during[1]).toMatch(/ ferry-user-ca-next$/);
    const again = await ferryCli(['ssh', 'rotate-ca']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already staged');
    const activated = await ferryCli(['ssh', 'rotate-ca', '--activate']);
    expect(activated.stdout).toMatch(/is current: ssh-ed25519 /);
    const after = (await ferryCli(['ssh', 'ca'])).stdout;
    expect(after.split('\n')[0]).toBe(`${during[1]!.replace(/next$/, 'current')}`);
    expect(after).not.toContain(before.split('\n')[0]!.split(' ')[1]!);
    const keys = JSON.parse((await ferryCli(['ssh', 'ca-keys', '--json'])).stdout) as Array<{
      state: string;
    }>;
    expect(keys.filter((k) => k.state === 'retired')).toHaveLength(1);
  });

  it('refuses to revoke what was never issued', async () => {
    const res = await ferryCli(['ssh', 'revoke', '12345']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('ssh certificate 12345 not found');
  });

  it('ferry ssh and ssh-cert ask for a sign-in without a person token, and leave no key behind', async () => {
    const ssh = await ferryCli(['ssh', 'ec2-user@web-1.dev.internal', '--', 'true']);
    expect(ssh.code).toBe(1);
    expect(ssh.stderr).toContain('ferry login');
    expect(readdirSync(cwd).filter((f) => f.startsWith('ferry-ssh-'))).toEqual([]);
    const cert = await ferryCli(['ssh-cert', '--out', join(cwd, 'mine-cert.pub')]);
    expect(cert.code).toBe(1);
    expect(existsSync(join(cwd, 'mine'))).toBe(false);
    expect(existsSync(join(cwd, 'mine-cert.pub'))).toBe(false);
    expect(readFileSync(join(cwd, 'ssh_host_ed25519_key.pub'), 'utf8')).toContain('ssh-ed25519');
  });
});
