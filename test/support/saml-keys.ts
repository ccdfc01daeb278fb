import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import type { SigningKey } from '../../src/keys/signing-keys.js';

/**
 * A SAML signing key for tests that need one without a database: the same generator and the same
 * shape SigningKeys returns. 2048 bits unless asked (3072 keys take longer to generate).
 */
export async function testSigningKey(
  options: { modulusLength?: 2048 | 3072 | 4096; now?: Date; state?: SigningKey['state'] } = {},
): Promise<SigningKey> {
  const now = options.now ?? new Date('2026-01-01T00:00:00Z');
  const material = await generateSelfSignedRsa({
    commonName: 'Ferry SAML signing',
    modulusLength: options.modulusLength ?? 2048,
    notBefore: now,
    validityYears: 10,
  });
  return {
    id: randomUUID(),
    purpose: 'saml',
    algorithm: 'rsa-sha256',
    certificatePem: material.certificatePem,
    certificateBase64: new X509Certificate(material.certificatePem).raw.toString('base64'),
    privateKey: createPrivateKey(material.privateKeyPem),
    state: options.state ?? 'current',
    createdAt: now.toISOString(),
    activatedAt: now.toISOString(),
  };
}
