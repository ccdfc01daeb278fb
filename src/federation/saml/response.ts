import { createHash, sign } from 'node:crypto';
import type { SigningKey } from '../../keys/signing-keys.js';
import { escapeAttrCanonical, escapeText, NS, samlId, samlInstant, truncateToSecond } from './xml.js';

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
 *
 * Canonical by construction: the XML is written in its exclusive-c14n form (each namespace declared
 * on the first element that uses it, attributes in canonical order, no empty-element tags, text and
 * attribute values escaped as c14n escapes them, no whitespace between elements). Parsed and
 * canonicalized, each signed element (without its own Signature: the enveloped transform) is
 * therefore exactly the string written, so the digests are computed over the strings themselves and
 * no XML is parsed or canonicalized here. The Assertion declares `saml` itself and the Response
 * never declares it on the Response element, so the Assertion is the same string alone and inside
 * the Response. response-c14n.test.ts holds xml-crypto's canonicalization and xmlsec1 to that.
 * One exception, for xmldom's sake (see forXmldom): NEL, LS and PS are written as references.
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
  const expiry = samlInstant(notOnOrAfter);
  const inResponseTo =
    input.inResponseTo === undefined ? '' : ` InResponseTo="${escapeAttrCanonical(input.inResponseTo)}"`;
  const issuerText = escapeText(input.issuer);

  const sessionNotOnOrAfter =
    input.sessionNotOnOrAfter === undefined
      ? ''
      : ` SessionNotOnOrAfter="${samlInstant(input.sessionNotOnOrAfter)}"`;
  // Attributes in canonical order: by name (code points), as none of them has a namespace.
  const assertionHead =
    `<saml:Assertion xmlns:saml="${NS.assertion}" ID="${assertionId}" IssueInstant="${issueInstant}" Version="2.0">` +
    `<saml:Issuer>${issuerText}</saml:Issuer>`;
  const assertionTail =
    '<saml:Subject>' +
    `<saml:NameID Format="${escapeAttrCanonical(input.nameId.format)}">${escapeText(input.nameId.value)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${BEARER}">` +
    `<saml:SubjectConfirmationData${inResponseTo} NotOnOrAfter="${expiry}" Recipient="${escapeAttrCanonical(input.recipient)}"></saml:SubjectConfirmationData>` +
    '</saml:SubjectConfirmation>' +
    '</saml:Subject>' +
    `<saml:Conditions NotBefore="${samlInstant(notBefore)}" NotOnOrAfter="${expiry}">` +
    `<saml:AudienceRestriction><saml:Audience>${escapeText(input.audience)}</saml:Audience></saml:AudienceRestriction>` +
    '</saml:Conditions>' +
    `<saml:AuthnStatement AuthnInstant="${samlInstant(input.authnInstant)}" SessionIndex="${escapeAttrCanonical(input.sessionIndex)}"${sessionNotOnOrAfter}>` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>${escapeText(input.authnContextClassRef)}</saml:AuthnContextClassRef></saml:AuthnContext>` +
    '</saml:AuthnStatement>' +
    attributeStatement(input.attributes) +
    '</saml:Assertion>';
  const assertion =
    assertionHead + envelopedSignature(assertionId, assertionHead, assertionTail, key) + assertionTail;

  // The Response's Issuer is the first element that uses `saml`: it declares it (exclusive c14n).
  const responseHead =
    `<samlp:Response xmlns:samlp="${NS.protocol}" Destination="${escapeAttrCanonical(input.destination)}" ID="${responseId}"${inResponseTo} IssueInstant="${issueInstant}" Version="2.0">` +
    `<saml:Issuer xmlns:saml="${NS.assertion}">${issuerText}</saml:Issuer>`;
  const responseTail =
    `<samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"></samlp:StatusCode></samlp:Status>` +
    assertion +
    '</samlp:Response>';
  const xml = forXmldom(
    input.signResponse === false
      ? responseHead + responseTail
      : responseHead + envelopedSignature(responseId, responseHead, responseTail, key) + responseTail,
  );
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
    const format = a.nameFormat === undefined ? '' : ` NameFormat="${escapeAttrCanonical(a.nameFormat)}"`;
    out += `<saml:Attribute Name="${escapeAttrCanonical(a.name)}"${format}>`;
    for (const v of a.values) out += `<saml:AttributeValue>${escapeText(v)}</saml:AttributeValue>`;
    out += '</saml:Attribute>';
  }
  return `${out}</saml:AttributeStatement>`;
}

/**
 * xmldom, which node-saml and xml-crypto parse with, treats NEL (U+0085), LINE SEPARATOR (U+2028)
 * and (0.9) PARAGRAPH SEPARATOR (U+2029) as line ends the way XML 1.1 does and reads each as a line
 * feed, while an XML 1.0 parser (libxml2, so xmlsec1) keeps it: written raw, no digest could satisfy
 * both. Written as character references they parse back as
 * themselves everywhere, and canonicalization writes them raw again, as the digests were computed.
 * They only occur inside text and attribute values (Ferry's markup is ASCII), so the whole string
 * can be rewritten; for everything else the written string is exactly the canonical form.
 */
function forXmldom(canonical: string): string {
  if (!XML11_LINE_ENDS.test(canonical)) return canonical;
  return canonical.replace(XML11_LINE_ENDS_ALL, (c) => `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);
}
const XML11_LINE_ENDS = /[\u0085\u2028\u2029]/;
const XML11_LINE_ENDS_ALL = /[\u0085\u2028\u2029]/g;

// ds:SignedInfo in canonical form, around the two values that change (the reference's ID and digest).
const SIGNED_INFO_START =
  `<ds:CanonicalizationMethod Algorithm="${EXC_C14N}"></ds:CanonicalizationMethod>` +
  `<ds:SignatureMethod Algorithm="${RSA_SHA256}"></ds:SignatureMethod>` +
  '<ds:Reference URI="#';
const SIGNED_INFO_MIDDLE =
  '"><ds:Transforms>' +
  `<ds:Transform Algorithm="${ENVELOPED_SIGNATURE}"></ds:Transform>` +
  `<ds:Transform Algorithm="${EXC_C14N}"></ds:Transform>` +
  '</ds:Transforms>' +
  `<ds:DigestMethod Algorithm="${SHA256}"></ds:DigestMethod>` +
  '<ds:DigestValue>';
const SIGNED_INFO_END = '</ds:DigestValue></ds:Reference></ds:SignedInfo>';
const DS_XMLNS = ` xmlns:ds="${NS.dsig}"`;

/**
 * The enveloped ds:Signature of the element whose canonical form is `head + tail` (the Signature goes
 * between them, right after the Issuer). The digest is over that canonical form; the signature value
 * over SignedInfo canonicalized in place, where exclusive c14n renders `ds` on SignedInfo itself
 * (the Signature around it declares it in the document).
 */
export function envelopedSignature(id: string, head: string, tail: string, key: SigningKey): string {
  const digest = createHash('sha256').update(head, 'utf8').update(tail, 'utf8').digest('base64');
  const signedInfo = `${SIGNED_INFO_START}${id}${SIGNED_INFO_MIDDLE}${digest}${SIGNED_INFO_END}`;
  const value = sign(
    'sha256',
    Buffer.from(`<ds:SignedInfo${DS_XMLNS}>${signedInfo}`, 'utf8'),
    key.privateKey,
  );
  return (
    `<ds:Signature${DS_XMLNS}><ds:SignedInfo>${signedInfo}` +
    `<ds:SignatureValue>${value.toString('base64')}</ds:SignatureValue>` +
    `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>${key.certificateBase64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>` +
    '</ds:Signature>'
  );
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
