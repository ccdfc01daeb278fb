import { verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { Document, Element } from '@xmldom/xmldom';
import type { SignedXml } from 'xml-crypto';
import { onFirstUse } from '../../lazy-module.js';
import type { RequestedAuthnContext } from './authn-context.js';
import {
  AuthnRequestTooLarge,
  InvalidAuthnRequest,
  InvalidRequestSignature,
  RequestDenied,
  RequestUnsupported,
  VersionMismatch,
} from './request-errors.js';
import { BINDING_URNS } from './sp-metadata.js';
import {
  attr,
  childElements,
  descendantElements,
  firstChildElement,
  NS,
  parseUntrustedXml,
  UntrustedXmlError,
  xsBoolean,
} from './untrusted-xml.js';

export {
  AuthnRequestTooLarge,
  InvalidAuthnRequest,
  InvalidRequestSignature,
  RequestDenied,
  RequestUnsupported,
  VersionMismatch,
} from './request-errors.js';

export interface AuthnRequestSignature {
  /** a signature came with the request (query Signature for HTTP-Redirect, enveloped ds:Signature for HTTP-POST) */
  present: boolean;
  /** the SigAlg / SignatureMethod URI, when present */
  algorithm?: string;
  /**
   * True when the signature verifies with one of these PEM certificates (the SP's registered ones;
   * a certificate the request itself carries in KeyInfo is never used). False when absent or wrong.
   */
  verify(certsPem: string[]): boolean;
}

export interface ReceivedAuthnRequest {
  binding: 'HTTP-Redirect' | 'HTTP-POST';
  id: string;
  /** the SP's entity id, as its Issuer says (unauthenticated until the signature is verified) */
  issuer: string;
  acsUrl?: string;
  acsIndex?: number;
  protocolBinding?: string;
  nameIdPolicyFormat?: string;
  forceAuthn: boolean;
  isPassive: boolean;
  /** what the SP asked of the authentication (SAML Core §3.3.2.2.1); absent: nothing in particular */
  requestedAuthnContext?: RequestedAuthnContext;
  issueInstant: string;
  destination?: string;
  relayState?: string;
  signature: AuthnRequestSignature;
}

export interface AuthnRequestOptions {
  /** the injected "now" that IssueInstant is checked against */
  now: Date;
  /** oldest acceptable IssueInstant, default 10 minutes */
  maxAgeMs?: number;
  /** how far IssueInstant may be ahead of now (clock skew), default 5 minutes */
  maxFutureSkewMs?: number;
  /**
   * Ferry's SSO endpoint URLs. When given, a request's Destination (if it has one) must be one of
   * them (SAML Bindings §3.4.5.2, §3.5.5.2): a request meant for another IdP is refused.
   */
  ssoUrls?: string[];
}

export const AUTHN_REQUEST_LIMITS = {
  /** decoded / inflated XML */
  maxXmlBytes: 64 * 1024,
  /** SAML Bindings §3.4.3 asks for at most 80 bytes; real SPs send more (URLs), so up to 1 KiB */
  maxRelayStateBytes: 1024,
  maxAgeMs: 10 * 60_000,
  maxFutureSkewMs: 5 * 60_000,
} as const;

const DEFLATE_ENCODING = 'urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE';
const ENTITY_FORMAT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:entity';

// ---------------------------------------------------------------------------------------------------
// HTTP-Redirect (SAML Bindings §3.4)

const REDIRECT_SIG_ALGS: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': { hash: 'sha256', key: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': { hash: 'sha384', key: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': { hash: 'sha512', key: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': { hash: 'sha256', key: 'ec' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384': { hash: 'sha384', key: 'ec' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': { hash: 'sha512', key: 'ec' },
};

interface RawParam {
  /** `name=value` exactly as it appears in the query string */
  raw: string;
  /** the form-decoded value */
  value: string;
}

const REDIRECT_PARAMS = ['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature', 'SAMLEncoding'];

/**
 * Reads an AuthnRequest sent with the HTTP-Redirect binding. Every value is taken from
 * `rawQueryString` (the part after `?` of the request URL, as received), and the signature is checked
 * over the exact octets `SAMLRequest=…[&RelayState=…]&SigAlg=…` found there, never a re-encoding
 * (Bindings §3.4.4.1). `query` is the framework's parse of the same query string: it must agree with
 * the raw one, so that no parser difference can make Ferry verify one value and act on another.
 */
export function parseRedirectAuthnRequest(
  query: Readonly<Record<string, unknown>>,
  rawQueryString: string,
  options: AuthnRequestOptions,
): ReceivedAuthnRequest {
  const params = parseRawQuery(rawQueryString);
  for (const name of REDIRECT_PARAMS) {
    const fromQuery = query[name];
    const fromRaw = params.get(name)?.value;
    if (fromQuery === undefined && fromRaw === undefined) continue;
    if (fromQuery !== fromRaw) {
      throw new InvalidAuthnRequest(
        `The ${name} parameter reads differently in the parsed query and in the raw query string ` +
          '(pass the query and the raw query string of the same request).',
      );
    }
  }
  const samlRequest = params.get('SAMLRequest');
  if (!samlRequest) {
    throw new InvalidAuthnRequest(
      params.has('SAMLResponse')
        ? 'The request carries a SAMLResponse, not a SAMLRequest: this is the identity provider’s sign-in endpoint, not an assertion consumer service.'
        : 'The request has no SAMLRequest parameter.',
    );
  }
  const encoding = params.get('SAMLEncoding')?.value;
  if (encoding !== undefined && encoding !== DEFLATE_ENCODING) {
    throw new RequestUnsupported(`SAMLEncoding ${encoding} is not supported; only ${DEFLATE_ENCODING} is.`);
  }
  const relayState = checkRelayState(params.get('RelayState')?.value);

  const compressed = decodeBase64(
    samlRequest.value,
    'SAMLRequest',
    Math.ceil(AUTHN_REQUEST_LIMITS.maxXmlBytes / 3) * 4,
  );
  const xml = utf8(inflateLimited(compressed));
  const fields = readAuthnRequest(xml, options).fields;

  const sigAlg = params.get('SigAlg');
  const sig = params.get('Signature');
  let signature: AuthnRequestSignature;
  if (!sigAlg && !sig) {
    signature = { present: false, verify: () => false };
  } else if (!sigAlg || !sig) {
    throw new InvalidRequestSignature(
      `The request has ${sig ? 'a Signature but no SigAlg' : 'a SigAlg but no Signature'} parameter; a signed HTTP-Redirect request needs both.`,
    );
  } else {
    const alg = REDIRECT_SIG_ALGS[sigAlg.value];
    if (!alg) {
      throw new RequestUnsupported(
        `The request is signed with ${sigAlg.value}, which Ferry does not accept. ` +
          'Configure the service provider to sign requests with RSA-SHA256 (http://www.w3.org/2001/04/xmldsig-more#rsa-sha256).',
      );
    }
    const signatureBytes = decodeBase64(sig.value, 'Signature', 4096);
    const relay = params.get('RelayState');
    const octets = Buffer.from(`${samlRequest.raw}${relay ? `&${relay.raw}` : ''}&${sigAlg.raw}`, 'latin1');
    signature = {
      present: true,
      algorithm: sigAlg.value,
      verify: (certsPem) => certsPem.some((pem) => verifyDetached(octets, signatureBytes, alg, pem)),
    };
  }
  return {
    binding: 'HTTP-Redirect',
    ...fields,
    ...(relayState !== undefined ? { relayState } : {}),
    signature,
  };
}

function parseRawQuery(rawQueryString: string): Map<string, RawParam> {
  let raw = rawQueryString;
  if (raw.startsWith('?')) raw = raw.slice(1);
  else if (raw.startsWith('/') || /^https?:/i.test(raw))
    raw = raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : '';
  const hash = raw.indexOf('#');
  if (hash >= 0) raw = raw.slice(0, hash);
  if (/[^\x21-\x7e]/.test(raw)) {
    throw new InvalidAuthnRequest('The query string contains characters that must be percent-encoded.');
  }
  const params = new Map<string, RawParam>();
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = formDecode(eq < 0 ? part : part.slice(0, eq));
    if (!REDIRECT_PARAMS.includes(name)) continue;
    if (params.has(name)) throw new InvalidAuthnRequest(`The ${name} parameter appears more than once.`);
    params.set(name, { raw: part, value: formDecode(eq < 0 ? '' : part.slice(eq + 1)) });
  }
  return params;
}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    throw new InvalidAuthnRequest('The query string has a malformed percent-encoding.');
  }
}

function inflateLimited(compressed: Buffer): Buffer {
  try {
    return inflateRawSync(compressed, { maxOutputLength: AUTHN_REQUEST_LIMITS.maxXmlBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new AuthnRequestTooLarge(
        `The SAMLRequest inflates to more than ${AUTHN_REQUEST_LIMITS.maxXmlBytes} bytes; Ferry reads no further.`,
      );
    }
    throw new InvalidAuthnRequest(
      'The SAMLRequest is not DEFLATE-compressed as the HTTP-Redirect binding requires.',
    );
  }
}

function verifyDetached(
  data: Buffer,
  signature: Buffer,
  alg: { hash: string; key: 'rsa' | 'ec' },
  pem: string,
): boolean {
  try {
    const key = new X509Certificate(pem).publicKey;
    if (key.asymmetricKeyType !== alg.key) return false;
    return cryptoVerify(
      alg.hash,
      data,
      alg.key === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      signature,
    );
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// HTTP-POST (SAML Bindings §3.5)

const XMLDSIG = {
  envelopedSignature: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  excC14nWithComments: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
} as const;
const POST_SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
]);
const POST_DIGEST_METHODS = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);

/**
 * Reads an AuthnRequest sent with the HTTP-POST binding (`body` is the parsed form). An enveloped
 * XML signature, when present, must be a child of the AuthnRequest and reference exactly that
 * element by its ID, with exclusive canonicalization: anything else (a signature elsewhere in the
 * document, a second one, a reference to another element) is refused as signature wrapping.
 */
export function parsePostAuthnRequest(
  body: Readonly<Record<string, unknown>>,
  options: AuthnRequestOptions,
): ReceivedAuthnRequest {
  const samlRequest = body.SAMLRequest;
  if (samlRequest === undefined) {
    throw new InvalidAuthnRequest(
      body.SAMLResponse !== undefined
        ? 'The form carries a SAMLResponse, not a SAMLRequest: this is the identity provider’s sign-in endpoint, not an assertion consumer service.'
        : 'The form has no SAMLRequest field.',
    );
  }
  if (typeof samlRequest !== 'string')
    throw new InvalidAuthnRequest('The form has more than one SAMLRequest field.');
  if (body.SigAlg !== undefined || body.Signature !== undefined) {
    throw new RequestUnsupported(
      'The HTTP-POST-SimpleSign binding is not supported; sign the AuthnRequest XML instead.',
    );
  }
  const rawRelay = body.RelayState;
  if (rawRelay !== undefined && typeof rawRelay !== 'string') {
    throw new InvalidAuthnRequest('The form has more than one RelayState field.');
  }
  const relayState = checkRelayState(rawRelay);

  let bytes = decodeBase64(samlRequest, 'SAMLRequest', Math.ceil(AUTHN_REQUEST_LIMITS.maxXmlBytes / 3) * 4);
  // The POST binding sends plain base64 (§3.5.4), but node-saml (passport-saml) deflates by default.
  if (bytes.length > 0 && !looksLikeXml(bytes)) bytes = inflateLimited(bytes);
  const xml = utf8(bytes);
  const { doc, root, fields } = readAuthnRequest(xml, options);
  const signature = postSignature(xml, doc, root, fields.id);
  return { binding: 'HTTP-POST', ...fields, ...(relayState !== undefined ? { relayState } : {}), signature };
}

function looksLikeXml(bytes: Buffer): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)
  )
    i++;
  return bytes[i] === 0x3c; // '<'
}

function postSignature(xml: string, doc: Document, root: Element, id: string): AuthnRequestSignature {
  const all = descendantElements(doc.documentElement as Element, NS.ds, 'Signature');
  if (all.length === 0) return { present: false, verify: () => false };
  const signatureEl = all[0] as Element;
  if (all.length > 1 || signatureEl.parentNode !== root) {
    throw new InvalidRequestSignature(
      'The AuthnRequest carries a signature that is not its own enveloped signature (a signature elsewhere in the document, or more than one): refused as a possible signature-wrapping attack.',
    );
  }
  const withId = countElementsWithId(doc.documentElement as Element, id);
  if (withId !== 1) {
    throw new InvalidRequestSignature(
      `${withId} elements carry the ID "${id}"; a signed AuthnRequest's ID must be unique (signature wrapping).`,
    );
  }
  const signedInfo = childElements(signatureEl, NS.ds, 'SignedInfo');
  if (signedInfo.length !== 1)
    throw new InvalidRequestSignature('The signature must have exactly one SignedInfo.');
  const si = signedInfo[0] as Element;
  const c14n = attr(firstChildElement(si, NS.ds, 'CanonicalizationMethod') ?? si, 'Algorithm');
  if (c14n !== XMLDSIG.excC14n && c14n !== XMLDSIG.excC14nWithComments) {
    throw new RequestUnsupported(
      `The signature uses canonicalization ${c14n ?? '(none)'}; Ferry accepts exclusive canonicalization (${XMLDSIG.excC14n}) as SAML Core §5.4.3 recommends.`,
    );
  }
  const method = attr(firstChildElement(si, NS.ds, 'SignatureMethod') ?? si, 'Algorithm') ?? '(none)';
  if (!POST_SIGNATURE_METHODS.has(method)) {
    throw new RequestUnsupported(
      `The request is signed with ${method}, which Ferry does not accept. ` +
        'Configure the service provider to sign requests with RSA-SHA256 (http://www.w3.org/2001/04/xmldsig-more#rsa-sha256).',
    );
  }
  const references = childElements(si, NS.ds, 'Reference');
  const reference = references[0];
  if (references.length !== 1 || !reference) {
    throw new InvalidRequestSignature(
      `The signature has ${references.length} references; it must have exactly one, to the AuthnRequest.`,
    );
  }
  const uri = attr(reference, 'URI');
  if (uri !== `#${id}`) {
    throw new InvalidRequestSignature(
      `The signature references "${uri ?? '(no URI)'}" but the AuthnRequest's ID is "${id}": the signature does not cover this request (signature wrapping).`,
    );
  }
  const transforms = descendantElements(reference, NS.ds, 'Transform').map((t) => attr(t, 'Algorithm') ?? '');
  const allowed: string[] = [XMLDSIG.envelopedSignature, XMLDSIG.excC14n, XMLDSIG.excC14nWithComments];
  if (!transforms.includes(XMLDSIG.envelopedSignature) || transforms.some((t) => !allowed.includes(t))) {
    throw new InvalidRequestSignature(
      `The signature's transforms (${transforms.join(', ') || 'none'}) are not the enveloped-signature and exclusive canonicalization transforms SAML Core §5.4.4 allows.`,
    );
  }
  const digest =
    attr(firstChildElement(reference, NS.ds, 'DigestMethod') ?? reference, 'Algorithm') ?? '(none)';
  if (!POST_DIGEST_METHODS.has(digest)) {
    throw new RequestUnsupported(`The signature uses digest ${digest}; Ferry accepts SHA-256 or SHA-512.`);
  }
  return {
    present: true,
    algorithm: method,
    verify: (certsPem) => certsPem.some((pem) => verifyEnveloped(xml, signatureEl, id, pem)),
  };
}

/** xml-crypto (and xpath) load at the first signed AuthnRequest (ADR 0046). */
const xmlCrypto = onFirstUse<typeof import('xml-crypto')>('xml-crypto');

function verifyEnveloped(xml: string, signatureEl: Element, id: string, pem: string): boolean {
  try {
    // getCertFromKeyInfo: never trust a certificate the message brings along.
    const sig = new xmlCrypto.SignedXml({ publicCert: pem, getCertFromKeyInfo: () => null });
    sig.loadSignature(signatureEl as unknown as Parameters<SignedXml['loadSignature']>[0]);
    if (!sig.checkSignature(xml)) return false;
    // What was verified must be this AuthnRequest, not some other element carrying its ID.
    const signed = sig.getSignedReferences();
    if (signed.length !== 1) return false;
    const signedRoot = parseUntrustedXml(
      signed[0] as string,
      AUTHN_REQUEST_LIMITS.maxXmlBytes,
    ).documentElement;
    return (
      signedRoot?.namespaceURI === NS.samlp &&
      signedRoot.localName === 'AuthnRequest' &&
      attr(signedRoot, 'ID') === id
    );
  } catch {
    return false;
  }
}

function countElementsWithId(root: Element, id: string): number {
  let count = 0;
  const visit = (el: Element) => {
    for (const name of ['ID', 'Id', 'id']) if (el.getAttribute(name) === id) count++;
    for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === n.ELEMENT_NODE) visit(n as Element);
  };
  visit(root);
  return count;
}

// ---------------------------------------------------------------------------------------------------
// Common to both bindings

type AuthnRequestFields = Omit<ReceivedAuthnRequest, 'binding' | 'relayState' | 'signature'>;

function readAuthnRequest(
  xml: string,
  options: AuthnRequestOptions,
): { doc: Document; root: Element; fields: AuthnRequestFields } {
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml, AUTHN_REQUEST_LIMITS.maxXmlBytes);
  } catch (err) {
    if (err instanceof UntrustedXmlError) {
      throw err.kind === 'refused'
        ? new RequestDenied(`The SAMLRequest was refused: ${err.message}.`)
        : new InvalidAuthnRequest(`The SAMLRequest is not readable: ${err.message}.`);
    }
    throw err;
  }
  const root = doc.documentElement as Element;
  if (root.namespaceURI !== NS.samlp || root.localName !== 'AuthnRequest') {
    if (root.namespaceURI === NS.samlp && root.localName === 'LogoutRequest') {
      throw new RequestUnsupported(
        'The SAMLRequest is a LogoutRequest; Ferry does not support SAML Single Logout.',
      );
    }
    throw new InvalidAuthnRequest(
      `The SAMLRequest is a <${root.nodeName}>${root.namespaceURI ? ` in namespace ${root.namespaceURI}` : ''}, not a SAML 2.0 <AuthnRequest>.`,
    );
  }
  const version = attr(root, 'Version');
  if (version === undefined) throw new InvalidAuthnRequest('The AuthnRequest has no Version attribute.');
  if (version !== '2.0') throw new VersionMismatch(version);

  const id = attr(root, 'ID');
  if (!id || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,255}$/.test(id)) {
    throw new InvalidAuthnRequest(
      id ? `The AuthnRequest ID "${id.slice(0, 80)}" is not a valid XML ID.` : 'The AuthnRequest has no ID.',
    );
  }
  const issueInstant = checkIssueInstant(attr(root, 'IssueInstant'), options);

  const issuers = childElements(root, NS.saml, 'Issuer');
  const issuerEl = issuers[0];
  const issuer = (issuerEl?.textContent ?? '').trim();
  if (issuers.length !== 1 || !issuerEl || issuer === '') {
    throw new InvalidAuthnRequest(
      'The AuthnRequest must name its service provider in exactly one <Issuer> (SAML Profiles §4.1.4.1).',
    );
  }
  const issuerFormat = attr(issuerEl, 'Format');
  if (issuerFormat !== undefined && issuerFormat !== ENTITY_FORMAT) {
    throw new InvalidAuthnRequest(
      `The Issuer's Format is ${issuerFormat}; it must be omitted or ${ENTITY_FORMAT}.`,
    );
  }

  const acsUrl = attr(root, 'AssertionConsumerServiceURL');
  const rawIndex = attr(root, 'AssertionConsumerServiceIndex');
  const protocolBinding = attr(root, 'ProtocolBinding');
  if (rawIndex !== undefined && (acsUrl !== undefined || protocolBinding !== undefined)) {
    throw new InvalidAuthnRequest(
      'AssertionConsumerServiceIndex cannot be combined with AssertionConsumerServiceURL or ProtocolBinding (SAML Core §3.4.1).',
    );
  }
  let acsIndex: number | undefined;
  if (rawIndex !== undefined) {
    if (!/^\d{1,5}$/.test(rawIndex.trim()) || Number(rawIndex) > 65535) {
      throw new InvalidAuthnRequest(`AssertionConsumerServiceIndex "${rawIndex}" is not an unsignedShort.`);
    }
    acsIndex = Number(rawIndex);
  }
  if (protocolBinding !== undefined && protocolBinding !== BINDING_URNS['HTTP-POST']) {
    throw new RequestUnsupported(
      `The AuthnRequest asks for the response over ${protocolBinding}; Ferry sends responses with ${BINDING_URNS['HTTP-POST']}.`,
    );
  }
  const forceAuthn = booleanAttr(root, 'ForceAuthn');
  const isPassive = booleanAttr(root, 'IsPassive');
  const requestedAuthnContext = readRequestedAuthnContext(root);
  const nameIdPolicy = firstChildElement(root, NS.samlp, 'NameIDPolicy');
  const nameIdPolicyFormat = nameIdPolicy ? attr(nameIdPolicy, 'Format') : undefined;
  const destination = attr(root, 'Destination');
  if (destination !== undefined && options.ssoUrls && !options.ssoUrls.includes(destination)) {
    throw new RequestDenied(
      `The AuthnRequest is addressed to ${destination}, which is not this identity provider's sign-in endpoint ` +
        `(${options.ssoUrls.join(', ')}). Check the IdP sign-in URL configured at the service provider.`,
      { received: destination, expected: options.ssoUrls },
    );
  }

  const fields: AuthnRequestFields = {
    id,
    issuer,
    forceAuthn,
    isPassive,
    issueInstant,
    ...(acsUrl !== undefined ? { acsUrl: acsUrl.trim() } : {}),
    ...(acsIndex !== undefined ? { acsIndex } : {}),
    ...(protocolBinding !== undefined ? { protocolBinding } : {}),
    ...(nameIdPolicyFormat !== undefined ? { nameIdPolicyFormat } : {}),
    ...(requestedAuthnContext !== undefined ? { requestedAuthnContext } : {}),
    ...(destination !== undefined ? { destination } : {}),
  };
  return { doc, root, fields };
}

const COMPARISONS = ['exact', 'minimum', 'maximum', 'better'] as const;

/** `<samlp:RequestedAuthnContext Comparison="…">` with class or declaration references (Core §3.3.2.2.1). */
function readRequestedAuthnContext(root: Element): RequestedAuthnContext | undefined {
  const all = childElements(root, NS.samlp, 'RequestedAuthnContext');
  if (all.length === 0) return undefined;
  if (all.length > 1)
    throw new InvalidAuthnRequest('The AuthnRequest has more than one RequestedAuthnContext.');
  const el = all[0] as Element;
  const raw = attr(el, 'Comparison') ?? 'exact';
  const comparison = COMPARISONS.find((c) => c === raw.trim());
  if (!comparison) {
    throw new InvalidAuthnRequest(
      `RequestedAuthnContext Comparison="${raw.slice(0, 40)}" is not one of ${COMPARISONS.join(', ')}.`,
    );
  }
  const text = (e: Element) => (e.textContent ?? '').trim();
  const classRefs = childElements(el, NS.saml, 'AuthnContextClassRef').map(text).filter(Boolean);
  const declRefs = childElements(el, NS.saml, 'AuthnContextDeclRef').map(text).filter(Boolean);
  if (classRefs.length === 0 && declRefs.length === 0) {
    throw new InvalidAuthnRequest(
      'RequestedAuthnContext names no AuthnContextClassRef or AuthnContextDeclRef (SAML Core §3.3.2.2.1).',
    );
  }
  return { comparison, classRefs: classRefs.slice(0, 20), declRefs: declRefs.slice(0, 20) };
}

function booleanAttr(el: Element, name: string): boolean {
  const raw = attr(el, name);
  if (raw === undefined) return false;
  const value = xsBoolean(raw);
  if (value === undefined) throw new InvalidAuthnRequest(`${name}="${raw}" is not a boolean.`);
  return value;
}

function checkIssueInstant(raw: string | undefined, options: AuthnRequestOptions): string {
  if (raw === undefined) throw new InvalidAuthnRequest('The AuthnRequest has no IssueInstant.');
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})?$/.exec(raw.trim());
  const at = m ? Date.parse(`${m[1]}${m[2] ?? 'Z'}`) : Number.NaN;
  if (!m || Number.isNaN(at))
    throw new InvalidAuthnRequest(`IssueInstant "${raw.slice(0, 40)}" is not an xs:dateTime.`);
  const now = options.now.getTime();
  const maxAge = options.maxAgeMs ?? AUTHN_REQUEST_LIMITS.maxAgeMs;
  const maxAhead = options.maxFutureSkewMs ?? AUTHN_REQUEST_LIMITS.maxFutureSkewMs;
  if (at > now + maxAhead) {
    throw new RequestDenied(
      `The AuthnRequest was issued at ${raw}, more than ${Math.round(maxAhead / 60_000)} minutes after Ferry's time ` +
        `${options.now.toISOString()}: the service provider's clock is ahead.`,
    );
  }
  if (at < now - maxAge) {
    throw new RequestDenied(
      `The AuthnRequest was issued at ${raw}, more than ${Math.round(maxAge / 60_000)} minutes before Ferry's time ` +
        `${options.now.toISOString()}: a stale or replayed request, or the service provider's clock is behind. Start the sign-in again from the application.`,
    );
  }
  return raw;
}

function checkRelayState(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > AUTHN_REQUEST_LIMITS.maxRelayStateBytes) {
    throw new RequestDenied(
      `RelayState is ${bytes} bytes; Ferry accepts at most ${AUTHN_REQUEST_LIMITS.maxRelayStateBytes} (SAML Bindings §3.4.3 asks for at most 80).`,
    );
  }
  return value;
}

/** Strict base64 (whitespace allowed, as forms wrap long values; a '+' turned into ' ' is restored). */
function decodeBase64(value: string, what: string, maxChars: number): Buffer {
  const compact = value.replace(/[\r\n\t]/g, '').replaceAll(' ', '+');
  if (compact.length > maxChars) {
    throw new AuthnRequestTooLarge(
      `The ${what} is ${compact.length} characters long; Ferry reads at most ${maxChars}.`,
    );
  }
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new InvalidAuthnRequest(`The ${what} is not base64.`);
  }
  return Buffer.from(compact, 'base64');
}

function utf8(bytes: Buffer): string {
  if (bytes.length > AUTHN_REQUEST_LIMITS.maxXmlBytes) {
    throw new AuthnRequestTooLarge(
      `The SAMLRequest is larger than ${AUTHN_REQUEST_LIMITS.maxXmlBytes} bytes.`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidAuthnRequest('The SAMLRequest is not UTF-8 text.');
  }
}

// ---------------------------------------------------------------------------------------------------

/** What verifyAuthnRequestSignature needs to know about the SP the Issuer names. */
export interface SignatureRequirements {
  entityId: string;
  signingCertificates: string[];
  requireSignedRequests: boolean;
}

/**
 * Checks the request's signature against the SP's registered certificates. Throws
 * InvalidRequestSignature when the SP requires signed requests and this one is unsigned, and whenever
 * a signature is present but does not verify (or there is no certificate to verify it with), required
 * or not. Returns whether the request was signed, for the audit trail.
 */
export function verifyAuthnRequestSignature(
  req: ReceivedAuthnRequest,
  sp: SignatureRequirements,
): 'verified' | 'unsigned' {
  if (!req.signature.present) {
    if (sp.requireSignedRequests) {
      throw new InvalidRequestSignature(
        `The service provider "${sp.entityId}" is registered as signing its AuthnRequests, but this request is not signed.`,
      );
    }
    return 'unsigned';
  }
  if (sp.signingCertificates.length === 0) {
    throw new InvalidRequestSignature(
      `The AuthnRequest from "${sp.entityId}" is signed, but no signing certificate is registered for that service provider to verify it with. Re-import its metadata or add its certificate.`,
    );
  }
  if (!req.signature.verify(sp.signingCertificates)) {
    const n = sp.signingCertificates.length;
    throw new InvalidRequestSignature(
      `The signature of the AuthnRequest from "${sp.entityId}" does not verify with ${n === 1 ? 'the certificate' : `any of the ${n} certificates`} registered for it: the request was altered, or the service provider signs with a key Ferry does not know (re-import its metadata).`,
    );
  }
  return 'verified';
}
