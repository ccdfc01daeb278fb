import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInput } from '../errors.js';
import {
  type CertificateAuthorityKey,
  type CertificateInput,
  caKeyOf,
  signCertificate,
} from './certificate.js';
import { encodeKrl, runsOf } from './krl.js';
import { fingerprint, parsePublicKey, publicBlobOf, publicKeyLine } from './public-key.js';
import { SshReader, SshWriter } from './wire.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-ssh-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A key pair made by ssh-keygen itself, so the parser meets OpenSSH's own output. */
function keygen(type: 'ed25519' | 'rsa' | 'ecdsa', name: string, bits?: number): string {
  const path = join(dir, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    type,
    ...(bits ? ['-b', String(bits)] : []),
    '-N',
    '',
    '-C',
    name,
    '-f',
    path,
  ]);
  return path;
}

const edCa = caKeyOf(generateKeyPairSync('ed25519').privateKey);
const rsaCa = caKeyOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);

function inspect(certLine: string, name: string): string {
  const path = join(dir, `${name}-cert.pub`);
  writeFileSync(path, `${certLine}\n`);
  return execFileSync('ssh-keygen', ['-L', '-f', path], { encoding: 'utf8' });
}

describe('OpenSSH certificates', () => {
  const now = Math.floor(Date.parse('2026-03-01T12:00:00Z') / 1000);

  it('ssh-keygen reads an Ed25519 user certificate with its key id, serial, principals, validity and options', () => {
    const key = parsePublicKey(readFileSync(`${keygen('ed25519', 'user1')}.pub`, 'utf8'));
    const cert = signCertificate(
      {
        publicKey: key,
        type: 'user',
        serial: 42n,
        keyId: 'test-awsdeveloper@contoso.example serial 42',
        principals: ['ec2-user', 'deploy'],
        validAfter: now - 60,
        validBefore: now + 900,
        criticalOptions: { 'source-address': '10.1.2.3/32' },
        extensions: ['permit-pty', 'permit-agent-forwarding'],
      },
      edCa,
    );
    const out = inspect(cert.line, 'user1');
    expect(out).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(out).toContain(`Public key: ED25519-CERT ${fingerprint(key.blob)}`);
    expect(out).toContain(`Signing CA: ED25519 ${fingerprint(edCa.publicBlob)} (using ssh-ed25519)`);
    expect(out).toContain('Key ID: "test-awsdeveloper@contoso.example serial 42"');
    expect(out).toContain('Serial: 42');
    expect(out).toContain('Valid: from 2026-03-01T11:59:00 to 2026-03-01T12:15:00');
    expect(out).toMatch(/Principals:\s*\n\s+ec2-user\n\s+deploy\n/);
    expect(out).toMatch(/Critical Options:\s*\n\s+source-address 10\.1\.2\.3\/32\n/);
    expect(out).toMatch(/Extensions:\s*\n\s+permit-agent-forwarding\n\s+permit-pty\n/);
  });

  it('writes each field as PROTOCOL.certkeys lays it out (one written field by field), signed by the CA, nonces never repeated', () => {
    const key = parsePublicKey(readFileSync(`${keygen('ed25519', 'layout')}.pub`, 'utf8'));
    const nonces = new Set<string>();
    const cases: Array<[CertificateAuthorityKey, CertificateInput]> = [
      [
        edCa,
        {
          publicKey: key,
          type: 'user',
          serial: 2n ** 63n + 5n,
          keyId: 'zoë@contoso.example serial 1',
          principals: ['ec2-user', 'deploy'],
          validAfter: now - 60,
          validBefore: now + 900,
          criticalOptions: { 'source-address': '10.1.2.3/32', 'force-command': 'true' },
          extensions: ['permit-pty', 'permit-agent-forwarding', 'permit-pty'],
        },
      ],
      [
        edCa,
        {
          publicKey: key,
          type: 'host',
          serial: 0n,
          keyId: '',
          principals: [],
          validAfter: 0,
          validBefore: 1,
        },
      ],
      [
        rsaCa,
        {
          publicKey: key,
          type: 'user',
          serial: 9n,
          keyId: 'k',
          principals: ['p'],
          validAfter: 1,
          validBefore: 2,
        },
      ],
    ];
    for (const [ca, input] of cases) {
      for (let i = 0; i < 200; i++) {
        const { blob, line } = signCertificate(input, ca);
        const certType = `${key.type}-cert-v01@openssh.com`;
        const nonce = blob.subarray(4 + certType.length + 4, 4 + certType.length + 4 + 32);
        nonces.add(nonce.toString('hex'));
        const strings = (values: string[]) => {
          const w = new SshWriter();
          for (const v of values) w.string(v);
          return w.toBuffer();
        };
        const options = (o: Record<string, string | null>) => {
          const w = new SshWriter();
          for (const name of Object.keys(o).sort())
            w.string(name).string(o[name] === null ? '' : new SshWriter().string(o[name]!).toBuffer());
          return w.toBuffer();
        };
        const body = new SshWriter()
          .string(certType)
          .string(nonce)
          .raw(key.fields)
          .uint64(input.serial)
          .uint32(input.type === 'user' ? 1 : 2)
          .string(input.keyId)
          .string(strings(input.principals))
          .uint64(input.validAfter)
          .uint64(input.validBefore)
          .string(options(input.criticalOptions ?? {}))
          .string(options(Object.fromEntries((input.extensions ?? []).map((e) => [e, null]))))
          .string('')
          .string(ca.publicBlob)
          .toBuffer();
        expect(blob.subarray(0, body.length).equals(body)).toBe(true);
        const signature = new SshReader(blob.subarray(body.length));
        const inner = new SshReader(signature.string());
        signature.end();
        const algorithm = inner.text();
        const bytes = inner.string();
        inner.end();
        expect(algorithm).toBe(ca === edCa ? 'ssh-ed25519' : 'rsa-sha2-512');
        expect(verify(ca === edCa ? null : 'sha512', body, ca.privateKey, bytes)).toBe(true);
        expect(line).toBe(`${certType} ${blob.toString('base64')}`);
      }
    }
    expect(nonces.size).toBe(600);
  });

  it('signs RSA and ECDSA keys, and with an RSA CA uses rsa-sha2-512', () => {
    for (const [type, name, bits] of [
      ['rsa', 'user-rsa', 3072],
      ['ecdsa', 'user-ecdsa', 384],
    ] as const) {
      const key = parsePublicKey(readFileSync(`${keygen(type, name, bits)}.pub`, 'utf8'));
      const cert = signCertificate(
        {
          publicKey: key,
          type: 'user',
          serial: 7n,
          keyId: 'k',
          principals: ['ec2-user'],
          validAfter: now,
          validBefore: now + 60,
          extensions: ['permit-pty'],
        },
        rsaCa,
      );
      const out = inspect(cert.line, name);
      expect(out).toContain(`Type: ${key.type}-cert-v01@openssh.com user certificate`);
      expect(out).toContain(`Signing CA: RSA ${fingerprint(rsaCa.publicBlob)} (using rsa-sha2-512)`);
    }
  });

  it('writes host certificates', () => {
    const key = parsePublicKey(readFileSync(`${keygen('ed25519', 'host1')}.pub`, 'utf8'));
    const out = inspect(
      signCertificate(
        {
          publicKey: key,
          type: 'host',
          serial: 3n,
          keyId: 'host web-1',
          principals: ['web-1.dev.internal', '10.0.0.5'],
          validAfter: now,
          validBefore: now + 86400,
        },
        edCa,
      ).line,
      'host1',
    );
    expect(out).toContain('host certificate');
    expect(out).toMatch(/Principals:\s*\n\s+web-1\.dev\.internal\n\s+10\.0\.0\.5\n/);
  });

  it('CA public key lines are what ssh-keygen computes for the same key', () => {
    const path = keygen('ed25519', 'ca-check');
    const ours = publicKeyLine(parsePublicKey(readFileSync(`${path}.pub`, 'utf8')).blob, 'x');
    expect(ours.split(' ').slice(0, 2)).toEqual(readFileSync(`${path}.pub`, 'utf8').split(' ').slice(0, 2));
    const caFile = join(dir, 'ca.pub');
    writeFileSync(caFile, `${publicKeyLine(rsaCa.publicBlob, 'ferry')}\n`);
    const fp = execFileSync('ssh-keygen', ['-l', '-f', caFile], { encoding: 'utf8' });
    expect(fp).toContain(fingerprint(publicBlobOf(rsaCa.privateKey)));
  });

  it('refuses certificates, unknown types, weak RSA keys and damaged blobs as public keys', () => {
    const ed = readFileSync(`${keygen('ed25519', 'neg')}.pub`, 'utf8');
    const [type, b64] = ed.split(' ');
    const bad = [
      '',
      'ssh-ed25519',
      `ssh-ed25519-cert-v01@openssh.com ${b64}`,
      `ssh-dss ${b64}`,
      `ssh-rsa ${b64}`, // blob says ssh-ed25519
      `${type} ${Buffer.from(b64!, 'base64').subarray(0, 40).toString('base64')}`,
      `${type} ${Buffer.concat([Buffer.from(b64!, 'base64'), Buffer.from([0])]).toString('base64')}`,
      `${type} not*base64`,
      readFileSync(`${keygen('rsa', 'weak', 1024)}.pub`, 'utf8'),
    ];
    for (const line of bad) expect(() => parsePublicKey(line), line).toThrow(InvalidInput);
  });
});

describe('key revocation lists', () => {
  it('groups serials into singles and ranges', () => {
    expect(runsOf([9n, 1n, 2n, 3n, 5n, 6n, 0n, 3n])).toEqual({ singles: [5n, 6n, 9n], ranges: [[1n, 3n]] });
  });

  it('ssh-keygen lists the KRL and finds exactly the revoked certificates in it', () => {
    const key = parsePublicKey(readFileSync(`${keygen('ed25519', 'krl-user')}.pub`, 'utf8'));
    const certOf = (serial: bigint, ca = edCa) => {
      const path = join(dir, `krl-${serial}-${ca === edCa ? 'ed' : 'rsa'}-cert.pub`);
      const c = signCertificate(
        {
          publicKey: key,
          type: 'user',
          serial,
          keyId: `k ${serial}`,
          principals: ['p'],
          validAfter: 0,
          validBefore: 2 ** 32,
        },
        ca,
      );
      writeFileSync(path, `${c.line}\n`);
      return path;
    };
    const krl = encodeKrl({
      version: 5n,
      generatedAt: Math.floor(Date.now() / 1000),
      comment: 'ferry test',
      revoked: [
        { caPublicBlob: edCa.publicBlob, serials: [10n, 11n, 12n, 13n, 20n, 22n] },
        { caPublicBlob: rsaCa.publicBlob, serials: [31n] },
      ],
    });
    const krlPath = join(dir, 'revoked.krl');
    writeFileSync(krlPath, krl);
    const listing = execFileSync('ssh-keygen', ['-Q', '-l', '-f', krlPath], { encoding: 'utf8' });
    expect(listing).toContain('# KRL version 5');
    expect(listing).toContain('# Comment: ferry test');
    expect(listing).toContain('serial: 10-13');
    expect(listing).toContain('serial: 20');
    expect(listing).toContain('serial: 22');
    expect(listing).toContain('serial: 31');

    const query = (path: string) =>
      spawnSync('ssh-keygen', ['-Q', '-f', krlPath, path], { encoding: 'utf8' });
    for (const s of [10n, 12n, 13n, 20n, 22n]) {
      const r = query(certOf(s));
      expect(r.stdout, `serial ${s}`).toContain('REVOKED');
      expect(r.status).not.toBe(0);
    }
    for (const s of [9n, 14n, 21n, 31n]) {
      const r = query(certOf(s));
      expect(r.stdout, `serial ${s}`).toContain(': ok');
      expect(r.status).toBe(0);
    }
    // Serial 31 is revoked for the RSA CA only.
    expect(query(certOf(31n, rsaCa)).stdout).toContain('REVOKED');
  });
});

describe('source-address', () => {
  it('is the address sshd sees, and never anything that is not an address', async () => {
    const { sourceAddress } = await import('./authority.js');
    expect(sourceAddress('10.1.2.3')).toBe('10.1.2.3');
    expect(sourceAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceAddress('2001:db8::1')).toBe('2001:db8::1');
    for (const bad of ['', 'evil', '10.1.2.3,0.0.0.0/0', '10.1.2.3/8', '::ffff:evil'])
      expect(() => sourceAddress(bad), bad).toThrow(InvalidInput);
  });
});
