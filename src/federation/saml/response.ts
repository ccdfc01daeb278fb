import { SignedXml } from 'xml-crypto';
import type { SigningKey } from '../../keys/signing-keys.js';
import { escapeAttr, escapeText, NS, samlId, samlInstant, truncateToSecond } from './xml.js';

export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

export const NAMEID_FORMAT = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;

export const AUTHN_CONTEXT = {
  passwordProtectedTransport: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
  password: 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password',
  unspecified: 'urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified',
} as const;

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** Allowance for relying parties whose clocks run behind: NotBefore is this far before issuance. */
export const NOT_BEFORE_SKEW_SECONDS = 60;
export const DEFAULT_ASSERTION_LIFETIME_SECONDS = 300;
/** An assertion is a one-shot bearer token: minutes, never hours. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 3600;

export interface SamlAttribute {
  name: string;
  nameFormat?: string;
  values: string[];
}

export interface ResponseInput {
  /** Ferry's IdP entity id. */
  issuer: string;
  /** Response/@Destination: where the Response is POSTed (the SP's ACS URL, or AWS's sign-in URL). */
  destination: string;
  /** SubjectConfirmationData/@Recipient: the ACS URL the SP checks; for AWS the same sign-in URL. */
  recipient: string;
  /** Conditions/AudienceRestriction/Audience: the SP's entity id (`urn:amazon:webservices` for AWS). */
  audience: string;
  /** The AuthnRequest's ID for SP-initiated SSO; absent for IdP-initiated (AWS console). */
  inResponseTo?: string;
  nameId: { value: string; format: string };
  sessionIndex: string;
  authnInstant: Date;
  authnContextClassRef: string;
  attributes: SamlAttribute[];
  now: Date;
  /** Validity of the assertion and of its bearer confirmation; default 300, at most 3600. */
  assertionLifetimeSeconds?: number;
  sessionNotOnOrAfter?: Date;
  /** Also sign the Response (after the Assertion). Default true; each signature is one RSA operation. */
  signResponse?: boolean;
}

export interface SignedResponse {
  xml: string;
  /** What the HTTP-POST binding's SAMLResponse form field carries. */
  base64: string;
  responseId: string;
  assertionId: string;
  /** Conditions/@NotOnOrAfter and SubjectConfirmationData/@NotOnOrAfter, exactly as written. */
  notOnOrAfter: Date;
}

/**
 * A SAML 2.0 Response with one bearer Assertion, the Assertion signed (and by default the Response
 * too, over the signed Assertion): RSA-SHA256, SHA-256 digests, exclusive canonicalization with the
 * enveloped-signature transform, Reference URI `#ID`, each Signature right after its Issuer (the
 * schema order), KeyInfo carrying the signing certificate.
 */
export function buildSignedResponse(input: ResponseInput, key: SigningKey): SignedResponse {
  checkInput(input);
  const now = truncateToSecond(input.now);
  const lifetime = input.assertionLifetimeSeconds ?? DEFAULT_ASSERTION_LIFETIME_SECONDS;
  const notBefore = new Date(now.getTime() - NOT_BEFORE_SKEW_SECONDS * 1000);
  const notOnOrAfter = new Date(now.getTime() + lifetime * 1000);
  const responseId = samlId();
  const assertionId = samlId();
  const issueInstant = samlInstant(now);
  const inResponseTo =
    input.inResponseTo === undefined ? '' : ` InResponseTo="${escapeAttr(input.inResponseTo)}"`;
  const issuer = `<saml:Issuer>${escapeText(input.issuer)}</saml:Issuer>`;

  const sessionNotOnOrAfter =
    input.sessionNotOnOrAfter === undefined
      ? ''
      : ` SessionNotOnOrAfter="${samlInstant(input.sessionNotOnOrAfter)}"`;
  const assertion =
    `<saml:Assertion xmlns:saml="${NS.assertion}" ID="${assertionId}" Version="2.0" IssueInstant="${issueInstant}">` +
    issuer +
    '<saml:Subject>' +
    `<saml:NameID Format="${escapeAttr(input.nameId.format)}">${escapeText(input.nameId.value)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${BEARER}">` +
    `<saml:SubjectConfirmationData NotOnOrAfter="${samlInstant(notOnOrAfter)}" Recipient="${escapeAttr(input.recipient)}"${inResponseTo}/>` +
    '</saml:SubjectConfirmation>' +
    '</saml:Subject>' +
    `<saml:Conditions NotBefore="${samlInstant(notBefore)}" NotOnOrAfter="${samlInstant(notOnOrAfter)}">` +
    `<saml:AudienceRestriction><saml:Audience>${escapeText(input.audience)}</saml:Audience></saml:AudienceRestriction>` +
    '</saml:Conditions>' +
    `<saml:AuthnStatement AuthnInstant="${samlInstant(input.authnInstant)}" SessionIndex="${escapeAttr(input.sessionIndex)}"${sessionNotOnOrAfter}>` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>${escapeText(input.authnContextClassRef)}</saml:AuthnContextClassRef></saml:AuthnContext>` +
    '</saml:AuthnStatement>' +
    attributeStatement(input.attributes) +
    '</saml:Assertion>';
  const unsigned =
    `<samlp:Response xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="${responseId}" Version="2.0" IssueInstant="${issueInstant}" Destination="${escapeAttr(input.destination)}"${inResponseTo}>` +
    issuer +
    `<samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"/></samlp:Status>` +
    assertion +
    '</samlp:Response>';

  const response = "/*[local-name()='Response' and namespace-uri()='urn:oasis:names:tc:SAML:2.0:protocol']";
  const assertionPath = `${response}/*[local-name()='Assertion' and namespace-uri()='${NS.assertion}']`;
  const issuerOf = (path: string) => `${path}/*[local-name()='Issuer' and namespace-uri()='${NS.assertion}']`;
  let xml = sign(unsigned, key, assertionPath, issuerOf(assertionPath));
  if (input.signResponse !== false) xml = sign(xml, key, response, issuerOf(response));
  return {
    xml,
    base64: Buffer.from(xml, 'utf8').toString('base64'),
    responseId,
    assertionId,
    notOnOrAfter,
  };
}

function attributeStatement(attributes: SamlAttribute[]): string {
  if (attributes.length === 0) return '';
  let out = '<saml:AttributeStatement>';
  for (const a of attributes) {
    const format = a.nameFormat === undefined ? '' : ` NameFormat="${escapeAttr(a.nameFormat)}"`;
    out += `<saml:Attribute Name="${escapeAttr(a.name)}"${format}>`;
    for (const v of a.values) out += `<saml:AttributeValue>${escapeText(v)}</saml:AttributeValue>`;
    out += '</saml:Attribute>';
  }
  return `${out}</saml:AttributeStatement>`;
}

function sign(xml: string, key: SigningKey, target: string, after: string): string {
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificatePem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
    idAttribute: 'ID',
  });
  sig.addReference({ xpath: target, transforms: [ENVELOPED_SIGNATURE, EXC_C14N], digestAlgorithm: SHA256 });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: after, action: 'after' } });
  return sig.getSignedXml();
}

function checkInput(input: ResponseInput): void {
  const required: Array<[string, string | undefined]> = [
    ['issuer', input.issuer],
    ['destination', input.destination],
    ['recipient', input.recipient],
    ['audience', input.audience],
    ['nameId.value', input.nameId?.value],
    ['nameId.format', input.nameId?.format],
    ['sessionIndex', input.sessionIndex],
    ['authnContextClassRef', input.authnContextClassRef],
  ];
  for (const [field, value] of required) {
    if (typeof value !== 'string' || value.trim() === '')
      throw new TypeError(`SAML response: ${field} is required`);
  }
  if (input.inResponseTo !== undefined && input.inResponseTo.trim() === '') {
    throw new TypeError('SAML response: inResponseTo, when given, must not be empty');
  }
  for (const [field, d] of [
    ['now', input.now],
    ['authnInstant', input.authnInstant],
    ['sessionNotOnOrAfter', input.sessionNotOnOrAfter],
  ] as const) {
    if (d !== undefined && !(d instanceof Date && !Number.isNaN(d.getTime()))) {
      throw new TypeError(`SAML response: ${field} must be a valid Date`);
    }
  }
  const lifetime = input.assertionLifetimeSeconds;
  if (
    lifetime !== undefined &&
    (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_ASSERTION_LIFETIME_SECONDS)
  ) {
    throw new RangeError(
      `SAML response: assertionLifetimeSeconds must be a whole number from 1 to ${MAX_ASSERTION_LIFETIME_SECONDS}`,
    );
  }
  for (const a of input.attributes) {
    if (typeof a.name !== 'string' || a.name === '')
      throw new TypeError('SAML response: attribute without a name');
    if (a.values.length === 0) throw new TypeError(`SAML response: attribute ${a.name} has no values`);
  }
}
