import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_BIN, freePort, runFerry, waitFor } from '../support/process.js';

/** A self-signed certificate for localhost, made by openssl as an operator would. */
function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=localhost`,
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** What certificate a real TLS client is shown, verifying it against `ca`. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca) }, () => {
      const fingerprint = socket.getPeerX509Certificate()!.fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

function httpsStatus(port: number, ca: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername: 'localhost', ca: readFileSync(ca) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once('error', reject);
    req.end();
  });
}

describe('ferry serve with tls.certFile and tls.keyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  let first: { cert: string; key: string };
  let second: { cert: string; key: string };
  let server: ChildProcess;
  let output = '';
  let port: number;

  beforeAll(async () => {
    first = makeCertificate(dir, 'first');
    second = makeCertificate(dir, 'second');
    execFileSync('cp', [first.cert, live.cert]);
    execFileSync('cp', [first.key, live.key]);
    expect((await runFerry(['init'], { cwd: dir })).code).toBe(0);
    appendFileSync(join(dir, 'ferry.yaml'), '\ntls:\n  certFile: live.crt\n  keyFile: live.key\n');
    port = await freePort();
    server = spawn(process.execPath, [FERRY_BIN, 'serve'], {
      cwd: dir,
      env: {
        ...process.env,
        FERRY_LISTEN: `127.0.0.1:${port}`,
        FERRY_PUBLIC_URL: `https://localhost:${port}`,
        FERRY_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (c) => (output += c));
    server.stderr!.on('data', (c) => (output += c));
    await waitFor(
      'ferry serve to listen with TLS',
      () =>
        output.includes('"ferry listening"') ||
        (server.exitCode !== null && Promise.reject(new Error(output))),
      { timeoutMs: 60_000 },
    );
  }, 120_000);

  afterAll(async () => {
    if (server?.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers HTTPS with the configured certificate', async () => {
    expect(output).toContain(`https://127.0.0.1:${port}`);
    expect(await httpsStatus(port, first.cert, '/healthz')).toBe(200);
    expect(await servedFingerprint(port, first.cert)).toBe(
      new X509Certificate(readFileSync(first.cert)).fingerprint256,
    );
  });

  it('serves a renewed certificate to new connections after SIGHUP, without a restart', async () => {
    execFileSync('cp', [second.cert, live.cert]);
    execFileSync('cp', [second.key, live.key]);
    server.kill('SIGHUP');
    const want = new X509Certificate(readFileSync(second.cert)).fingerprint256;
    await waitFor('the new certificate', async () => (await servedFingerprint(port, second.cert)) === want);
    expect(await httpsStatus(port, second.cert, '/healthz')).toBe(200);
    expect(server.exitCode).toBeNull();
    expect(output).toContain('TLS certificate reloaded');
  });

  it('keeps the current certificate when the new files do not load', async () => {
    execFileSync('sh', ['-c', `echo broken > ${live.key}`]);
    server.kill('SIGHUP');
    await waitFor('the failed reload to be logged', () => output.includes('TLS certificate reload failed'));
    expect(await httpsStatus(port, second.cert, '/healthz')).toBe(200);
    expect(server.exitCode).toBeNull();
  });
});
