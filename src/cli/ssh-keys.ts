import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { SshWriter } from '../ssh/wire.js';

export interface EphemeralKeyPair {
  /** the private key in OpenSSH's own format ("openssh-key-v1", unencrypted), as ssh -i reads it */
  privateKeyFile: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicKeyLine: string;
}

/**
 * A new Ed25519 key pair written the way ssh-keygen writes it (PROTOCOL.key), without needing
 * ssh-keygen. Unencrypted: it lives in a private temporary directory for one connection, or is
 * protected by the file mode the caller writes it with.
 */
export function generateEd25519KeyPair(comment: string): EphemeralKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const publicBlob = new SshWriter().string('ssh-ed25519').string(pub).toBuffer();
  const check = randomBytes(4);
  const secret = new SshWriter()
    .raw(check)
    .raw(check)
    .string('ssh-ed25519')
    .string(pub)
    .string(Buffer.concat([seed, pub]))
    .string(comment);
  // Padding 1, 2, 3, … to the cipher block size (8 for "none").
  const unpadded = secret.toBuffer().length;
  for (let i = 1; (unpadded + i - 1) % 8 !== 0; i += 1) secret.uint8(i);
  const body = new SshWriter()
    .raw(Buffer.from('openssh-key-v1\0', 'latin1'))
    .string('none')
    .string('none')
    .string('')
    .uint32(1)
    .string(publicBlob)
    .string(secret.toBuffer())
    .toBuffer();
  const base64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    privateKeyFile: `-----BEGIN OPENSSH PRIVATE KEY-----\n${base64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKeyLine: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}
