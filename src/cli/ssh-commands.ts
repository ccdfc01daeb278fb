import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { FerryClient } from './client.js';
import { callerClientOf, clientOf, collect, enc, UsageError } from './context.js';
import { lines, note, out, printJson, t, table } from './output.js';
import { generateEd25519KeyPair } from './ssh-keys.js';

/** What POST /api/v1/ssh/certificates (and host-certificates) answers. */
interface CertificateView {
  certificate: string;
  serial: string;
  keyId: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  extensions: string[];
  criticalOptions: Record<string, string>;
}

/** 90s, 15m, 12h, 30d or plain seconds → seconds. */
export function durationSeconds(text: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`expected seconds or a duration like 15m (got ${text})`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

/** `user@host` or `host` → its parts (the login is optional: Ferry picks the only one mapped). */
export function parseDestination(destination: string): { login?: string; host: string } {
  const at = destination.lastIndexOf('@');
  if (at === -1) return { host: destination };
  return { login: destination.slice(0, at), host: destination.slice(at + 1) };
}

function requestCertificate(
  client: FerryClient,
  body: { publicKey: string; host: string; login?: string; duration?: number; caAlgorithm?: string },
): Promise<CertificateView> {
  return client.request<CertificateView>('POST', '/api/v1/ssh/certificates', body);
}

const caAlgorithm = (ca?: string) =>
  ca === undefined ? undefined : ca === 'rsa' ? 'rsa-sha2-512' : ca === 'ed25519' ? 'ssh-ed25519' : bad(ca);
function bad(ca: string): never {
  throw new UsageError(`--ca is ed25519 or rsa (got ${ca})`);
}

/** `ferry ssh`, `ferry ssh-cert` and the SSH administration commands. */
export function registerSshCommands(program: Command): void {
  const ssh = program
    .command('ssh')
    .description(
      'log in with a short-lived certificate: ferry ssh [user@]host [-- ssh options and command]\n' +
        '(subcommands below administer the SSH certificate authority)',
    )
    .argument('[destination]', '[user@]host, as for ssh')
    .argument('[args...]', 'after --: passed to ssh after the destination (options, then a command)')
    .option('--duration <duration>', 'certificate lifetime, e.g. 5m (capped by Ferry)')
    .option('--ca <algorithm>', 'ed25519 (default) or rsa, for servers without Ed25519')
    .option('--ssh-command <path>', 'the ssh client to run', 'ssh')
    .action(async function (
      this: Command,
      destination: string | undefined,
      args: string[],
      opts: { duration?: string; ca?: string; sshCommand: string },
    ) {
      if (!destination) {
        this.help({ error: true });
        return;
      }
      const duration = opts.duration ? durationSeconds(opts.duration) : undefined;
      const ca = caAlgorithm(opts.ca);
      const { login, host } = parseDestination(destination);
      // The key pair lives for this one connection, in a directory only this user can read.
      const dir = mkdtempSync(join(tmpdir(), 'ferry-ssh-'));
      try {
        const pair = generateEd25519KeyPair('ferry-ephemeral');
        const keyFile = join(dir, 'id_ed25519');
        writeFileSync(keyFile, pair.privateKeyFile, { mode: 0o600 });
        const cert = await requestCertificate(callerClientOf(this), {
          publicKey: pair.publicKeyLine,
          host,
          login,
          duration,
          caAlgorithm: ca,
        });
        const certFile = join(dir, 'id_ed25519-cert.pub');
        writeFileSync(certFile, `${cert.certificate}\n`, { mode: 0o600 });
        note(t`ferry: certificate ${cert.keyId}, valid until ${cert.validBefore}\n`);
        process.exitCode = await runSsh(opts.sshCommand, [
          '-i',
          keyFile,
          '-o',
          `CertificateFile=${certFile}`,
          '-o',
          'IdentitiesOnly=yes',
          `${cert.principals[0]}@${host}`,
          ...args,
        ]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

  program
    .command('ssh-cert')
    .description('write a certificate for your key (for scp, rsync, git, IDEs); prints the paths')
    .option('--key <file>', 'the public key to certify (default: generate an Ed25519 key pair beside --out)')
    .option(
      '--out <file>',
      'where to write the certificate (default: <key>-cert.pub, or ./ferry_ed25519-cert.pub)',
    )
    .option('--principal <name>', 'the Linux login (default: the only one Ferry maps for --host)')
    .option('--host <host>', 'the host it is for; * (default) needs a mapping for every host', '*')
    .option('--duration <duration>', 'certificate lifetime, e.g. 15m (capped by Ferry)')
    .option('--ca <algorithm>', 'ed25519 (default) or rsa')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        key?: string;
        out?: string;
        principal?: string;
        host: string;
        duration?: string;
        ca?: string;
        json?: boolean;
      },
    ) {
      const duration = opts.duration ? durationSeconds(opts.duration) : undefined;
      const ca = caAlgorithm(opts.ca);
      let publicKey: string;
      let privateKeyPath: string | null = null;
      let certFile: string;
      if (opts.key) {
        publicKey = readFileSync(opts.key, 'utf8').trim();
        certFile = resolve(opts.out ?? `${opts.key.replace(/\.pub$/, '')}-cert.pub`);
      } else {
        certFile = resolve(opts.out ?? 'ferry_ed25519-cert.pub');
        privateKeyPath = certFile.endsWith('-cert.pub')
          ? certFile.slice(0, -'-cert.pub'.length)
          : `${certFile}.key`;
        if (existsSync(privateKeyPath))
          throw new Error(
            `${privateKeyPath} exists: certify it with --key ${privateKeyPath}.pub, or remove it`,
          );
      }
      const pair = privateKeyPath ? generateEd25519KeyPair('ferry') : null;
      if (pair) publicKey = pair.publicKeyLine;
      const cert = await requestCertificate(callerClientOf(this), {
        publicKey: publicKey!,
        host: opts.host,
        login: opts.principal,
        duration,
        caAlgorithm: ca,
      });
      if (pair && privateKeyPath) {
        writeFileSync(privateKeyPath, pair.privateKeyFile, { mode: 0o600 });
        writeFileSync(`${privateKeyPath}.pub`, `${pair.publicKeyLine}\n`, { mode: 0o644 });
      }
      writeFileSync(certFile, `${cert.certificate}\n`, { mode: 0o644 });
      const paths = {
        certificate: certFile,
        privateKey: privateKeyPath,
        publicKey: privateKeyPath ? `${privateKeyPath}.pub` : opts.key,
      };
      if (opts.json) return printJson({ ...paths, ...cert });
      out(
        t`certificate: ${certFile}\n${privateKeyPath ? t`private key: ${privateKeyPath}\n` : ''}principals:  ${cert.principals.join(', ')}\nkey id:      ${cert.keyId}\nvalid until: ${cert.validBefore}\n`,
      );
    });

  ssh
    .command('host-cert')
    .description("sign a server's host key (admin): users then trust it through the @cert-authority line")
    .requiredOption('--key <file>', 'the host public key, e.g. /etc/ssh/ssh_host_ed25519_key.pub')
    .requiredOption('--hostname <name>', 'a name clients use for the host (repeatable)', collect)
    .option('--out <file>', 'where to write it (default: <key>-cert.pub)')
    .option('--duration <duration>', 'lifetime, e.g. 30d (default: the server setting)')
    .action(async function (this: Command, opts: { key: string; hostname: string[]; out?: string }) {
      // `ferry ssh` has a --duration of its own, which takes the value before this command sees it.
      const { duration } = this.optsWithGlobals<{ duration?: string }>();
      const seconds = duration ? durationSeconds(duration) : undefined;
      const cert = await clientOf(this).request<CertificateView>('POST', '/api/v1/ssh/host-certificates', {
        publicKey: readFileSync(opts.key, 'utf8').trim(),
        hostnames: opts.hostname,
        duration: seconds,
      });
      const certFile = resolve(opts.out ?? `${opts.key.replace(/\.pub$/, '')}-cert.pub`);
      writeFileSync(certFile, `${cert.certificate}\n`, { mode: 0o644 });
      out(
        t`host certificate: ${certFile}\nhost names:       ${cert.principals.join(', ')}\nvalid until:      ${cert.validBefore}\nadd to sshd_config: HostCertificate ${certFile}\n`,
      );
    });

  ssh
    .command('ca')
    .description("print the user CA keys (sshd's TrustedUserCAKeys)")
    .action(async function (this: Command) {
      out(lines(await clientOf(this).text('/api/v1/ssh/ca.pub')));
    });

  ssh
    .command('ca-keys')
    .description('the CA keys and their states (admin)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>('/api/v1/ssh/ca-keys');
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['id', 'use', 'algorithm', 'state', 'createdAt', 'activatedAt']));
    });

  ssh
    .command('rotate-ca')
    .description('stage a new CA key (published at once); --activate makes the staged key current (admin)')
    .option('--use <use>', 'user or host', 'user')
    .option('--algorithm <algorithm>', 'ed25519 or rsa', 'ed25519')
    .option('--activate', 'activate the staged key instead of staging one')
    .action(async function (this: Command, opts: { use: string; algorithm: string; activate?: boolean }) {
      if (opts.use !== 'user' && opts.use !== 'host')
        throw new UsageError(`--use is user or host (got ${opts.use})`);
      const body = { use: opts.use, algorithm: caAlgorithm(opts.algorithm) };
      const path = opts.activate ? '/api/v1/ssh/ca-keys/activate' : '/api/v1/ssh/ca-keys/rotate';
      const k = await clientOf(this).request<{ id: string; state: string; publicKey: string }>(
        'POST',
        path,
        body,
      );
      out(t`${opts.use} CA key ${k.id} is ${k.state}: ${k.publicKey}\n`);
    });

  ssh
    .command('known-hosts')
    .description('print the @cert-authority line for ~/.ssh/known_hosts')
    .option('--hosts <pattern>', 'the hosts it vouches for, e.g. *.dev.internal', '*')
    .action(async function (this: Command, opts: { hosts: string }) {
      out(lines(await clientOf(this).text(`/api/v1/ssh/known_hosts?hosts=${enc(opts.hosts)}`)));
    });

  ssh
    .command('certificates')
    .description('user certificates issued, newest first (admin)')
    .option('--user <id>', 'only this user id')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { user?: string; json?: boolean }) {
      const q = opts.user ? `?user=${enc(opts.user)}` : '';
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/ssh/certificates${q}`,
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['serial', 'subject', 'target', 'expiresAt', 'revokedAt']));
    });

  ssh
    .command('revoke <serial>')
    .description('revoke one user certificate: servers refuse it once they fetch the KRL (admin)')
    .option('--reason <text>', 'why, for the audit trail')
    .action(async function (this: Command, serial: string, opts: { reason?: string }) {
      const r = await clientOf(this).request<{ serial: string; subject: string; revokedAt: string }>(
        'POST',
        `/api/v1/ssh/certificates/${enc(serial)}/revoke`,
        opts.reason ? { reason: opts.reason } : {},
      );
      out(t`revoked serial ${r.serial} (${r.subject}) at ${r.revokedAt}\n`);
    });

  const logins = ssh
    .command('logins')
    .description('which groups may log in as which Linux logins on which hosts (admin)');
  logins
    .command('list')
    .option('--group <group>', 'only this group')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { group?: string; json?: boolean }) {
      const q = opts.group ? `?group=${enc(opts.group)}` : '';
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/ssh/logins${q}`,
      );
      if (opts.json) return printJson(res.items);
      out(
        table(res.items, [
          'id',
          'groupName',
          'hosts',
          'logins',
          'portForwarding',
          'agentForwarding',
          'maxDuration',
        ]),
      );
    });
  logins
    .command('add')
    .description('let a group use these logins on matching hosts (replaces the same group and hosts)')
    .requiredOption('--group <group>', 'group name or id')
    .requiredOption('--login <name>', 'a Linux login (repeatable)', collect)
    .option('--hosts <pattern>', 'host glob, e.g. *.dev.internal', '*')
    .option('--port-forwarding', 'allow port forwarding')
    .option('--agent-forwarding', 'allow agent forwarding')
    .option('--max-duration <duration>', 'shorter certificates for this mapping, e.g. 5m')
    .action(async function (
      this: Command,
      opts: {
        group: string;
        login: string[];
        hosts: string;
        portForwarding?: boolean;
        agentForwarding?: boolean;
        maxDuration?: string;
      },
    ) {
      const maxDuration = opts.maxDuration ? durationSeconds(opts.maxDuration) : null;
      const m = await clientOf(this).request<{
        id: string;
        groupName: string;
        hosts: string;
        logins: string[];
      }>('POST', '/api/v1/ssh/logins', {
        group: opts.group,
        hosts: opts.hosts,
        logins: opts.login,
        portForwarding: opts.portForwarding ?? false,
        agentForwarding: opts.agentForwarding ?? false,
        maxDuration,
      });
      out(t`${m.groupName} may log in as ${m.logins.join(', ')} on ${m.hosts} (${m.id})\n`);
    });
  logins.command('remove <id>').action(async function (this: Command, id: string) {
    await clientOf(this).request('DELETE', `/api/v1/ssh/logins/${enc(id)}`);
    out(t`removed ${id}\n`);
  });
}

/** Runs ssh on this terminal; Ctrl-C goes to ssh, and we wait for it so the key is always removed. */
function runSsh(command: string, args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const ignore = () => {};
    process.on('SIGINT', ignore);
    const child = spawn(command, args, { stdio: 'inherit' });
    child.once('error', (err) => {
      process.off('SIGINT', ignore);
      reject(new Error(`cannot run ${command}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      // A shell reports death by signal N as 128 + N; do the same.
      resolvePromise(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}
