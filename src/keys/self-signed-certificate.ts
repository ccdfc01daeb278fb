import 'reflect-metadata'; // @peculiar/x509 registers its algorithms with tsyringe, which needs it
import { randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

export interface GeneratedSigningKey {
  /** PKCS#8 PEM: seal it before it goes anywhere. */
  privateKeyPem: string;
  certificatePem: string;
}

export interface SelfSignedOptions {
  commonName: string;
  /** RSA key size; ignored for `curve` keys */
  modulusLength: 2048 | 3072 | 4096;
  /** An ECDSA P-256 key (ES256) instead of RSA. */
  curve?: 'P-256';
  notBefore: Date;
  /** Exactly one of validityYears (calendar years) and validityDays. */
  validityYears?: number;
  validityDays?: number;
}

const RSA_SHA256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/**
 * An RSA (or P-256) key pair and a self-signed X.509 v3 certificate for it (SHA-256). SAML relying
 * parties pin the certificate rather than validate a chain (AWS ignores its expiry but needs a valid
 * certificate), so a self-signed one with a long validity is what IdPs publish.
 */
export async function generateSelfSignedRsa(options: SelfSignedOptions): Promise<GeneratedSigningKey> {
  const algorithm = options.curve ? ECDSA_P256 : RSA_SHA256;
  const keys = options.curve
    ? await globalThis.crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])
    : await globalThis.crypto.subtle.generateKey(
        { ...RSA_SHA256, modulusLength: options.modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
        true,
        ['sign', 'verify'],
      );
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and exactly 16 bytes long in DER
  const notBefore = new Date(Math.floor(options.notBefore.getTime() / 1000) * 1000);
  const notAfter = new Date(notBefore);
  if (options.validityYears !== undefined && options.validityDays === undefined) {
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + options.validityYears);
  } else if (options.validityDays !== undefined && options.validityYears === undefined) {
    notAfter.setTime(notBefore.getTime() + options.validityDays * 86_400_000);
  } else {
    throw new TypeError('give exactly one of validityYears and validityDays');
  }
  const name = `CN=${options.commonName.replace(/[,+"\\<>;=]/g, '\\$&')}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name,
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'), certificatePem: cert.toString('pem') };
}

function toPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
