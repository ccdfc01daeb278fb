import { X509Certificate } from 'node:crypto';
import type { SigningKey } from '../../keys/signing-keys.js';
import { NAMEID_FORMAT } from './response.js';
import { escapeAttr, escapeText, NS } from './xml.js';

export const BINDING = {
  redirect: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  post: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
} as const;

/** AWS refuses SAML provider metadata whose signing key is shorter than this. */
export const MIN_RSA_BITS = 2048;

export interface IdpMetadataInput {
  entityId: string;
  ssoRedirectUrl: string;
  ssoPostUrl: string;
  sloUrl?: string;
  /** Current key first, then the staged next key during a rotation (SigningKeys.published). */
  keys: SigningKey[];
}

/** Raised when metadata can't be published as asked (no key, a key AWS would refuse). */
export class InvalidIdpMetadata extends Error {
  constructor(message: string) {
    super(`IdP metadata: ${message}`);
    this.name = 'InvalidIdpMetadata';
  }
}

/**
 * The IdP's SAML 2.0 metadata (an EntityDescriptor with one IDPSSODescriptor): what an admin uploads
 * to AWS IAM as the SAML provider. UTF-8 without a byte order mark, as AWS requires; the caller sends
 * the string as is (`application/samlmetadata+xml; charset=utf-8`). Elements follow the schema order:
 * KeyDescriptor*, SingleLogoutService*, NameIDFormat*, SingleSignOnService+.
 */
export function buildIdpMetadata(input: IdpMetadataInput): string {
  for (const [field, value] of [
    ['entityId', input.entityId],
    ['ssoRedirectUrl', input.ssoRedirectUrl],
    ['ssoPostUrl', input.ssoPostUrl],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '')
      throw new InvalidIdpMetadata(`${field} is required`);
  }
  if (input.keys.length === 0) throw new InvalidIdpMetadata('at least one signing key is required');
  const seen = new Set<string>();
  let keyDescriptors = '';
  for (const key of input.keys) {
    if (seen.has(key.certificateBase64)) continue;
    seen.add(key.certificateBase64);
    assertPublishable(key);
    keyDescriptors +=
      '<md:KeyDescriptor use="signing">' +
      `<ds:KeyInfo xmlns:ds="${NS.dsig}"><ds:X509Data><ds:X509Certificate>${key.certificateBase64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>` +
      '</md:KeyDescriptor>';
  }
  const slo =
    input.sloUrl === undefined
      ? ''
      : `<md:SingleLogoutService Binding="${BINDING.redirect}" Location="${escapeAttr(input.sloUrl)}"/>` +
        `<md:SingleLogoutService Binding="${BINDING.post}" Location="${escapeAttr(input.sloUrl)}"/>`;
  const nameIdFormats = [NAMEID_FORMAT.persistent, NAMEID_FORMAT.emailAddress, NAMEID_FORMAT.unspecified]
    .map((f) => `<md:NameIDFormat>${escapeText(f)}</md:NameIDFormat>`)
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<md:EntityDescriptor xmlns:md="${NS.metadata}" entityID="${escapeAttr(input.entityId)}">` +
    `<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="${NS.protocol}">` +
    keyDescriptors +
    slo +
    nameIdFormats +
    `<md:SingleSignOnService Binding="${BINDING.redirect}" Location="${escapeAttr(input.ssoRedirectUrl)}"/>` +
    `<md:SingleSignOnService Binding="${BINDING.post}" Location="${escapeAttr(input.ssoPostUrl)}"/>` +
    '</md:IDPSSODescriptor>' +
    '</md:EntityDescriptor>\n'
  );
}

function assertPublishable(key: SigningKey): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(key.certificatePem);
  } catch {
    throw new InvalidIdpMetadata(`signing key ${key.id} has no readable certificate`);
  }
  if (cert.raw.toString('base64') !== key.certificateBase64) {
    throw new InvalidIdpMetadata(`signing key ${key.id}: certificateBase64 is not its certificate`);
  }
  const details = cert.publicKey.asymmetricKeyDetails;
  if (cert.publicKey.asymmetricKeyType !== 'rsa' || !details?.modulusLength) {
    throw new InvalidIdpMetadata(`signing key ${key.id} is not an RSA key`);
  }
  if (details.modulusLength < MIN_RSA_BITS) {
    throw new InvalidIdpMetadata(
      `signing key ${key.id} has ${details.modulusLength} bits; AWS requires at least ${MIN_RSA_BITS}`,
    );
  }
}
