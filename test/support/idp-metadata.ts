import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestIdpMetadata {
  /** SAML 2.0 IdP metadata as AWS IAM accepts it for a SAML provider. */
  xml: string;
  /** The signing certificate in it, PEM. */
  certificatePem: string;
}

/**
 * IdP metadata for tests, written by hand (not by Ferry's own builder) around a real self-signed RSA-2048
 * certificate from openssl: an EntityDescriptor with an IDPSSODescriptor holding the signing KeyDescriptor
 * and SingleSignOnService endpoints for HTTP-Redirect and HTTP-POST. Each call makes a new key pair.
 */
export async function makeTestIdpMetadata(opts: {
  entityId: string;
  ssoUrl: string;
}): Promise<TestIdpMetadata> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-idp-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=test',
      '-days',
      '30',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
    const certificatePem = await readFile(certFile, 'utf8');
    const base64 = certificatePem
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, '')
      .trim();
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(opts.entityId)}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo>
        <ds:X509Data>
          <ds:X509Certificate>${base64}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${escapeXml(opts.ssoUrl)}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(opts.ssoUrl)}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`;
    return { xml, certificatePem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}
