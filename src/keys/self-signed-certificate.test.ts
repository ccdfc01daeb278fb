import 'reflect-metadata';
import { createPrivateKey, sign, verify, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { generateSelfSignedRsa } from './self-signed-certificate.js';

describe('self-signed RSA signing certificate', () => {
  it('is an X.509 v3 certificate, SHA-256 with RSA, for a signing-only end entity', async () => {
    const notBefore = new Date('2026-01-01T00:00:00.500Z');
    const { certificatePem, privateKeyPem } = await generateSelfSignedRsa({
      commonName: 'Ferry SAML signing',
      modulusLength: 2048,
      notBefore,
      validityYears: 10,
    });
    expect(privateKeyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
    const node = new X509Certificate(certificatePem);
    expect(node.subject).toBe('CN=Ferry SAML signing');
    expect(node.issuer).toBe('CN=Ferry SAML signing');
    expect(node.ca).toBe(false);
    expect(node.verify(node.publicKey)).toBe(true);
    expect(new Date(node.validFrom).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(new Date(node.validTo).toISOString()).toBe('2036-01-01T00:00:00.000Z');
    expect(node.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);

    const cert = new x509.X509Certificate(certificatePem);
    expect(cert.signatureAlgorithm).toMatchObject({ name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } });
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(usage?.critical).toBe(true);
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).not.toBeNull();

    const data = Buffer.from('payload');
    const signature = sign('sha256', data, createPrivateKey(privateKeyPem));
    expect(verify('sha256', data, node.publicKey, signature)).toBe(true);
  });
});
