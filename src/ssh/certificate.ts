import { type KeyObject, randomBytes, sign } from 'node:crypto';
import { publicBlobOf, type SshPublicKey } from './public-key.js';
import { SshWriter } from './wire.js';

/** PROTOCOL.certkeys: what a certificate certifies. */
export type CertificateType = 'user' | 'host';

/** Extensions OpenSSH understands for user certificates (PROTOCOL.certkeys §"Extensions"). */
export type UserExtension =
  | 'permit-pty'
  | 'permit-port-forwarding'
  | 'permit-agent-forwarding'
  | 'permit-X11-forwarding'
  | 'permit-user-rc';

export interface CertificateInput {
  /** the key being certified */
  publicKey: SshPublicKey;
  type: CertificateType;
  serial: bigint;
  /** logged by sshd on every authentication with the certificate */
  keyId: string;
  /** user names (user certificates) or host names (host certificates) */
  principals: string[];
  /** seconds since the epoch */
  validAfter: number;
  validBefore: number;
  /** e.g. { 'source-address': '10.0.0.0/8' } (user certificates only) */
  criticalOptions?: Record<string, string>;
  extensions?: string[];
}

/** A CA key that signs certificates: Ed25519 (signature ssh-ed25519) or RSA (rsa-sha2-512). */
export interface CertificateAuthorityKey {
  privateKey: KeyObject;
  /** the CA's public blob, cached: it goes into every certificate */
  publicBlob: Buffer;
}

export function caKeyOf(privateKey: KeyObject): CertificateAuthorityKey {
  return { privateKey, publicBlob: publicBlobOf(privateKey) };
}

/** A signed certificate: the blob, and the line ssh reads from `<key>-cert.pub`. */
export interface SignedCertificate {
  blob: Buffer;
  line: string;
}

/**
 * Writes and signs an OpenSSH certificate (PROTOCOL.certkeys, the `-cert-v01@openssh.com` types).
 * Critical options and extensions are written sorted by name, as sshd requires.
 */
export function signCertificate(input: CertificateInput, ca: CertificateAuthorityKey): SignedCertificate {
  const certType = `${input.publicKey.type}-cert-v01@openssh.com`;
  const body = new SshWriter()
    .string(certType)
    .string(randomBytes(32))
    .raw(input.publicKey.fields)
    .uint64(input.serial)
    .uint32(input.type === 'user' ? 1 : 2)
    .string(input.keyId)
    .string(packStrings(input.principals))
    .uint64(BigInt(Math.max(0, Math.floor(input.validAfter))))
    .uint64(BigInt(Math.max(0, Math.floor(input.validBefore))))
    .string(packOptions(input.criticalOptions ?? {}))
    .string(packOptions(Object.fromEntries((input.extensions ?? []).map((e) => [e, null]))))
    .string('') // reserved
    .string(ca.publicBlob)
    .toBuffer();
  const blob = Buffer.concat([body, new SshWriter().string(signatureOf(body, ca.privateKey)).toBuffer()]);
  return { blob, line: `${certType} ${blob.toString('base64')}` };
}

function signatureOf(data: Buffer, key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ed25519') {
    return new SshWriter()
      .string('ssh-ed25519')
      .string(sign(null, data, key))
      .toBuffer();
  }
  if (key.asymmetricKeyType === 'rsa') {
    return new SshWriter()
      .string('rsa-sha2-512')
      .string(sign('sha512', data, key))
      .toBuffer();
  }
  throw new Error(`unsupported CA key type ${key.asymmetricKeyType}`);
}

function packStrings(values: string[]): Buffer {
  const w = new SshWriter();
  for (const v of values) w.string(v);
  return w.toBuffer();
}

/** name → value (a string, wrapped once more as the spec says) or null for a flag without data. */
function packOptions(options: Record<string, string | null>): Buffer {
  const w = new SshWriter();
  for (const name of Object.keys(options).sort()) {
    const value = options[name];
    w.string(name);
    w.string(
      value === null || value === undefined ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer(),
    );
  }
  return w.toBuffer();
}
