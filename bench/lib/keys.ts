import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { type GeneratedSigningKey, generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import type { SigningKey } from '../../src/keys/signing-keys.js';
import type { BenchEnv } from './env.js';

/**
 * A SAML signing key made by the production generator (self-signed RSA, as SigningKeys creates at
 * first start), without a database. Shared per run: RSA-3072 generation takes about a second.
 */
export function benchSigningKey(
  env: BenchEnv,
  modulusLength: 2048 | 3072 = 3072,
): Promise<SigningKey & { material: GeneratedSigningKey }> {
  return env.memo(`signing-key-${modulusLength}`, async () => {
    const now = new Date();
    const material = await generateSelfSignedRsa({
      commonName: 'Ferry SAML signing',
      modulusLength,
      notBefore: now,
      validityYears: 10,
    });
    return {
      id: randomUUID(),
      purpose: 'saml' as const,
      algorithm: 'rsa-sha256' as const,
      certificatePem: material.certificatePem,
      certificateBase64: new X509Certificate(material.certificatePem).raw.toString('base64'),
      privateKey: createPrivateKey(material.privateKeyPem),
      state: 'current' as const,
      createdAt: now.toISOString(),
      activatedAt: now.toISOString(),
      material,
    };
  });
}
