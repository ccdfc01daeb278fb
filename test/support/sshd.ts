import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Debian's OpenSSH server; the helper needs an absolute path (sshd re-executes itself). */
export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  port: number;
  dir: string;
  /** the server's host public key line (ssh_host_ed25519_key.pub) */
  hostPublicKey: string;
  /** replaces the RevokedKeys file: sshd reads it on every authentication */
  setRevokedKeys(krl: Buffer): void;
  /** everything sshd logged so far (LogLevel VERBOSE) */
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** the TrustedUserCAKeys file's content (Ferry's /api/v1/ssh/ca.pub) */
  trustedUserCaKeys: string;
  /** RevokedKeys: a KRL (Ferry's /api/v1/ssh/krl) */
  revokedKeys: Buffer;
  /** AuthorizedPrincipalsFile per local user: the principals a certificate must name to log in as them */
  principals: Record<string, string[]>;
  /** signs the generated host key and returns the certificate line (HostCertificate) */
  hostCertificate?: (hostPublicKey: string) => Promise<string>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = () => process.getuid?.() === 0;

/**
 * The local account tests log in as. As root (CI, sandboxes) it is `ec2-user`, created when absent
 * with no usable password ('*', not a locked '!': sshd without PAM refuses locked accounts even for
 * certificates); as anyone else sshd can only log in as that same user.
 */
export function localLogin(): string {
  if (!isRoot()) return userInfo().username;
  if (spawnSync('id', ['-u', 'ec2-user']).status !== 0) {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', '--password', '*', 'ec2-user']);
  }
  return 'ec2-user';
}

/**
 * Starts a real OpenSSH sshd on a free loopback port with its own configuration in a temp dir:
 * certificate authentication only (TrustedUserCAKeys, AuthorizedPrincipalsFile, RevokedKeys), no
 * passwords, no authorized_keys.
 */
export async function startSshd(options: SshdOptions): Promise<TestSshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install openssh-server`);
  // Privilege separation directory, which Debian's service unit normally creates.
  if (isRoot()) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-host', '-f', hostKey]);
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim();
  const principalsDir = join(dir, 'principals');
  mkdirSync(principalsDir);
  for (const [user, names] of Object.entries(options.principals)) {
    writeFileSync(join(principalsDir, user), `${names.join('\n')}\n`, { mode: 0o644 });
  }
  writeFileSync(join(dir, 'ca.pub'), options.trustedUserCaKeys, { mode: 0o644 });
  const krlPath = join(dir, 'revoked.krl');
  writeFileSync(krlPath, options.revokedKeys, { mode: 0o644 });
  const lines = [
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `TrustedUserCAKeys ${join(dir, 'ca.pub')}`,
    `AuthorizedPrincipalsFile ${principalsDir}/%u`,
    'AuthorizedKeysFile none',
    `RevokedKeys ${krlPath}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin no',
    'PrintMotd no',
    'LogLevel VERBOSE',
  ];
  if (options.hostCertificate) {
    const certPath = `${hostKey}-cert.pub`;
    writeFileSync(certPath, `${await options.hostCertificate(hostPublicKey)}\n`);
    lines.push(`HostCertificate ${certPath}`);
  }
  const port = await freePort();
  lines.unshift(`Port ${port}`);
  const config = join(dir, 'sshd_config');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const check = spawnSync(SSHD, ['-t', '-f', config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`sshd -t refused the config: ${check.stderr}`);

  let log = '';
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    log += d;
  });
  const deadline = Date.now() + 10_000;
  while (!/Server listening on 127\.0\.0\.1 port/.test(log)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`sshd did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    hostPublicKey,
    setRevokedKeys: (krl) => writeFileSync(krlPath, krl),
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SshResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the system ssh client with one key and certificate, trusting only what `knownHosts` says
 * (Ferry's @cert-authority line): no agent, no user config, no prompts.
 */
export function sshWithCertificate(opts: {
  port: number;
  login: string;
  key: string;
  certificate: string;
  knownHosts: string;
  command: string[];
}): Promise<SshResult> {
  const args = [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    `UserKnownHostsFile=${opts.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    `CertificateFile=${opts.certificate}`,
    '-i',
    opts.key,
    '-p',
    String(opts.port),
    `${opts.login}@127.0.0.1`,
    ...opts.command,
  ];
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A fresh Ed25519 key pair made by ssh-keygen; returns the private key path (public key beside it). */
export function newKeyPair(dir: string, name: string): { key: string; publicKey: string } {
  const key = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
  return { key, publicKey: readFileSync(`${key}.pub`, 'utf8').trim() };
}
