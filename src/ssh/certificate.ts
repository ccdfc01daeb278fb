import { type KeyObject, randomFillSync, sign } from 'node:crypto';
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

/** Nonces for certificates (PROTOCOL.certkeys: 32 random bytes in each), taken from a pool the CSPRNG refills. */
const NONCE_BYTES = 32;
const noncePool = Buffer.alloc(NONCE_BYTES * 128);
let noncesUsed = noncePool.length;

function writeNonce(into: Buffer, at: number): void {
  if (noncesUsed + NONCE_BYTES > noncePool.length) {
    randomFillSync(noncePool);
    noncesUsed = 0;
  }
  noncePool.copy(into, at, noncesUsed, noncesUsed + NONCE_BYTES);
  noncesUsed += NONCE_BYTES;
}

/** An Ed25519 signature field: string("ssh-ed25519") and string(64 bytes), itself a string. */
const ED25519_SIGNATURE_FIELD = 4 + (4 + 'ssh-ed25519'.length) + (4 + 64);

/**
 * Writes and signs an OpenSSH certificate (PROTOCOL.certkeys, the `-cert-v01@openssh.com` types).
 * Critical options and extensions are written sorted by name, as sshd requires. The certificate is
 * measured first and written into one buffer (with room for an Ed25519 signature after it): issuing
 * one per SSH login, the many small buffers of a general writer cost as much as a third of the signature.
 */
export function signCertificate(input: CertificateInput, ca: CertificateAuthorityKey): SignedCertificate {
  const certType = `${input.publicKey.type}-cert-v01@openssh.com`;
  const critical = optionList(input.criticalOptions ?? {});
  const extensions = optionList(Object.fromEntries((input.extensions ?? []).map((e) => [e, null])));
  const keyIdBytes = Buffer.byteLength(input.keyId);
  let principalsBytes = 0;
  for (const p of input.principals) principalsBytes += 4 + Buffer.byteLength(p);
  const bodyLength =
    4 +
    certType.length +
    4 +
    NONCE_BYTES +
    input.publicKey.fields.length +
    8 +
    4 +
    4 +
    keyIdBytes +
    4 +
    principalsBytes +
    8 +
    8 +
    4 +
    critical.bytes +
    4 +
    extensions.bytes +
    4 +
    4 +
    ca.publicBlob.length;
  const ed25519 = ca.privateKey.asymmetricKeyType === 'ed25519';
  const out = Buffer.allocUnsafe(bodyLength + (ed25519 ? ED25519_SIGNATURE_FIELD : 0)); // every byte written below
  let at = writeString(out, 0, certType);
  at = out.writeUInt32BE(NONCE_BYTES, at);
  writeNonce(out, at);
  at += NONCE_BYTES;
  at += input.publicKey.fields.copy(out, at);
  at = out.writeBigUInt64BE(input.serial, at);
  at = out.writeUInt32BE(input.type === 'user' ? 1 : 2, at);
  at = writeString(out, at, input.keyId, keyIdBytes);
  at = out.writeUInt32BE(principalsBytes, at);
  for (const p of input.principals) at = writeString(out, at, p);
  at = out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(input.validAfter))), at);
  at = out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(input.validBefore))), at);
  at = writeOptions(out, at, critical);
  at = writeOptions(out, at, extensions);
  at = out.writeUInt32BE(0, at); // reserved
  at = out.writeUInt32BE(ca.publicBlob.length, at);
  at += ca.publicBlob.copy(out, at);
  const body = out.subarray(0, bodyLength);
  let blob: Buffer;
  if (ed25519) {
    at = out.writeUInt32BE(ED25519_SIGNATURE_FIELD - 4, at);
    at = writeString(out, at, 'ssh-ed25519');
    at = out.writeUInt32BE(64, at);
    sign(null, body, ca.privateKey).copy(out, at);
    blob = out;
  } else {
    blob = Buffer.concat([body, new SshWriter().string(signatureOf(body, ca.privateKey)).toBuffer()]);
  }
  return { blob, line: `${certType} ${blob.toString('base64')}` };
}

/** A length-prefixed string at `at`; returns where the next field starts. */
function writeString(out: Buffer, at: number, value: string, bytes = Buffer.byteLength(value)): number {
  const start = out.writeUInt32BE(bytes, at);
  return start + out.write(value, start, bytes, 'utf8');
}

/** Options sorted by name, and the bytes they take inside their string (without its length). */
interface OptionList {
  entries: Array<[name: string, value: string | null]>;
  bytes: number;
}

/** name → value (a string, wrapped once more as the spec says) or null for a flag without data. */
function optionList(options: Record<string, string | null>): OptionList {
  const entries: OptionList['entries'] = [];
  let bytes = 0;
  for (const name of Object.keys(options).sort()) {
    const value = options[name] ?? null;
    entries.push([name, value]);
    bytes += 4 + Buffer.byteLength(name) + 4 + (value === null ? 0 : 4 + Buffer.byteLength(value));
  }
  return { entries, bytes };
}

function writeOptions(out: Buffer, at: number, options: OptionList): number {
  let next = out.writeUInt32BE(options.bytes, at);
  for (const [name, value] of options.entries) {
    next = writeString(out, next, name);
    if (value === null) next = out.writeUInt32BE(0, next);
    else {
      const valueBytes = Buffer.byteLength(value);
      next = out.writeUInt32BE(4 + valueBytes, next);
      next = writeString(out, next, value, valueBytes);
    }
  }
  return next;
}

function signatureOf(data: Buffer, key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') {
    return new SshWriter()
      .string('rsa-sha2-512')
      .string(sign('sha512', data, key))
      .toBuffer();
  }
  throw new Error(`unsupported CA key type ${key.asymmetricKeyType}`);
}
