/** SAML documents shaped like the ones real service providers publish, for tests. */

export const IDC = {
  entityId: 'https://us-east-1.signin.aws/platform/saml/d-1234567890',
  /** IPv4-only endpoint: the one the AWS CLI's SSO login needs */
  acsUrl: 'https://us-east-1.signin.aws/platform/saml/acs/3f1c9a52-7d4e-4b8a-9e21-5c6d7e8f9a0b',
  /** dual-stack endpoint the access portal uses */
  dualStackAcsUrl: 'https://us-east-1.sso.signin.aws/platform/saml/acs/3f1c9a52-7d4e-4b8a-9e21-5c6d7e8f9a0b',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
} as const;

/** The base64 body of a PEM certificate, wrapped at 76 columns the way metadata tools print it. */
export function certBody(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return (b64.match(/.{1,76}/g) ?? []).join('\n          ');
}

/**
 * Service-provider metadata modelled on what IAM Identity Center offers for download under
 * Settings → Identity source → External identity provider → "Download metadata file": md: prefix,
 * validUntil, a signing certificate, emailAddress NameID, HTTP-POST ACS endpoints (IPv4-only and
 * dual-stack) and WantAssertionsSigned.
 */
export function identityCenterMetadata(signingCertPem: string, entityId: string = IDC.entityId): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entityId}" validUntil="2126-01-01T00:00:00Z">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>
          ${certBody(signingCertPem)}
          </ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>${IDC.emailAddress}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${IDC.acsUrl}" index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${IDC.dualStackAcsUrl}" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`;
}
