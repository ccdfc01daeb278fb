import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidInput } from '../errors.js';
import { SshReader, SshWireError, SshWriter } from './wire.js';

/** Key types Ferry certifies; each has a certificate type `<type>-cert-v01@openssh.com`. */
export const CERTIFIABLE_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
] as const;
export type SshKeyType = (typeof CERTIFIABLE_KEY_TYPES)[number];

/** RSA keys shorter than this are refused: OpenSSH itself refuses below 1024 and NIST below 2048. */
export const MIN_RSA_BITS = 2048;

/** An OpenSSH public key: its type, the public blob (RFC 4253 §6.6) and the fields after the type name. */
export interface SshPublicKey {
  type: SshKeyType;
  /** the whole public key blob, as in authorized_keys (base64) */
  blob: Buffer;
  /** the key-specific fields that follow the type name in the blob */
  fields: Buffer;
  comment: string;
}

const ECDSA_CURVES: Record<string, { name: string; pointLength: number }> = {
  'ecdsa-sha2-nistp256': { name: 'nistp256', pointLength: 65 },
  'ecdsa-sha2-nistp384': { name: 'nistp384', pointLength: 97 },
  'ecdsa-sha2-nistp521': { name: 'nistp521', pointLength: 133 },
};

/**
 * Parses one `authorized_keys`-style line (`ssh-ed25519 AAAA… comment`). Refuses anything that is
 * not a plain public key of a type Ferry certifies, including certificates and weak RSA keys.
 */
export function parsePublicKey(line: string): SshPublicKey {
  const parts = line.trim().split(/\s+/);
  const [type, base64, ...rest] = parts;
  if (!type || !base64) throw invalid('expected an OpenSSH public key line: "<type> <base64> [comment]"');
  if (type.endsWith('-cert-v01@openssh.com'))
    throw invalid('that is a certificate; give the public key it certifies');
  if (!(CERTIFIABLE_KEY_TYPES as readonly string[]).includes(type))
    throw invalid(`key type ${type} is not supported (use one of ${CERTIFIABLE_KEY_TYPES.join(', ')})`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw invalid('the key is not valid base64');
  const blob = Buffer.from(base64, 'base64');
  try {
    const r = new SshReader(blob);
    if (r.text() !== type) throw invalid(`the key blob does not say ${type}`);
    const start = blob.length - r.remaining;
    checkFields(type as SshKeyType, r);
    r.end();
    return { type: type as SshKeyType, blob, fields: blob.subarray(start), comment: rest.join(' ') };
  } catch (err) {
    if (err instanceof SshWireError) throw invalid(`the key blob is malformed (${err.message})`);
    throw err;
  }
}

function checkFields(type: SshKeyType, r: SshReader): void {
  if (type === 'ssh-ed25519') {
    if (r.string().length !== 32) throw invalid('an Ed25519 public key is 32 bytes');
    return;
  }
  if (type === 'ssh-rsa') {
    const e = r.string();
    const n = r.string();
    if (e.length === 0 || e.length > 8) throw invalid('the RSA public exponent is malformed');
    const bits = bitLength(n);
    if (bits < MIN_RSA_BITS)
      throw invalid(`RSA keys need at least ${MIN_RSA_BITS} bits (this one has ${bits})`);
    return;
  }
  const curve = ECDSA_CURVES[type]!;
  if (r.text() !== curve.name) throw invalid(`the curve does not match ${type}`);
  const point = r.string();
  if (point.length !== curve.pointLength || point[0] !== 0x04)
    throw invalid('the ECDSA public point is malformed');
}

function bitLength(mpint: Buffer): number {
  let i = 0;
  while (i < mpint.length && mpint[i] === 0) i += 1;
  if (i === mpint.length) return 0;
  return (mpint.length - i - 1) * 8 + (32 - Math.clz32(mpint[i]!));
}

function invalid(message: string): InvalidInput {
  return new InvalidInput(message, 'publicKey');
}

/** OpenSSH's fingerprint: `SHA256:` and unpadded base64 of the blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The public blob of a Node key (Ed25519 or RSA), as OpenSSH writes it. */
export function publicBlobOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (pub.asymmetricKeyType === 'ed25519') {
    return new SshWriter().string('ssh-ed25519').string(Buffer.from(jwk.x!, 'base64url')).toBuffer();
  }
  if (pub.asymmetricKeyType === 'rsa') {
    return new SshWriter()
      .string('ssh-rsa')
      .mpint(Buffer.from(jwk.e!, 'base64url'))
      .mpint(Buffer.from(jwk.n!, 'base64url'))
      .toBuffer();
  }
  throw new Error(`unsupported CA key type ${pub.asymmetricKeyType}`);
}

/** `<type> <base64> <comment>`: one line of authorized_keys, TrustedUserCAKeys or known_hosts. */
export function publicKeyLine(blob: Buffer, comment: string): string {
  const type = new SshReader(blob).text();
  return `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}
