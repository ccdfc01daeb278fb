import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';

const SCRIPT = fileURLToPath(new URL('./pysaml2-sp.py', import.meta.url));

export interface Pysaml2Sp {
  /** http://127.0.0.1:<port> */
  url: string;
  /** the SP's entity id, which is also where its metadata is served */
  entityId: string;
  acsUrl: string;
  /** stdout and stderr of the SP so far */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a pysaml2 service provider (test/support/pysaml2-sp.py, Debian's python3-pysaml2 with
 * xmlsec1) on a free loopback port, trusting the IdP described by `idpMetadataXml`. It signs its
 * AuthnRequests with a fresh RSA key and wants signed responses and assertions.
 */
export async function startPysaml2Sp(idpMetadataXml: string): Promise<Pysaml2Sp> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pysaml2-'));
  const key = await generateSelfSignedRsa({
    commonName: 'pysaml2 sp',
    modulusLength: 2048,
    notBefore: new Date(Date.now() - 60_000),
    validityDays: 2,
  });
  writeFileSync(join(dir, 'idp.xml'), idpMetadataXml);
  writeFileSync(join(dir, 'sp.key'), key.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'sp.crt'), key.certificatePem);
  // Debian's interpreter: python3-pysaml2 lives in its dist-packages, not in a pyenv shim's.
  const child: ChildProcess = spawn(
    '/usr/bin/python3',
    [SCRIPT, join(dir, 'idp.xml'), join(dir, 'sp.key'), join(dir, 'sp.crt')],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
  );
  const chunks: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`pysaml2 SP did not start:\n${chunks.join('')}`)),
      20_000,
    );
    child.stderr!.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    child.stdout!.on('data', (c: Buffer) => {
      chunks.push(c.toString('utf8'));
      const m = /LISTENING (\d+)/.exec(chunks.join(''));
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pysaml2 SP exited (${code}):\n${chunks.join('')}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    entityId: `${url}/metadata`,
    acsUrl: `${url}/acs`,
    output: () => chunks.join(''),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
