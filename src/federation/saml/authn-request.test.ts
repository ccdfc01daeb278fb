import 'reflect-metadata';
import { sign as cryptoSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { SAML, type SamlConfig } from '@node-saml/node-saml';
import * as x509 from '@peculiar/x509';
import * as samlify from 'samlify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignedXml } from 'xml-crypto';
import { type GeneratedSigningKey, generateSelfSignedRsa } from '../../keys/self-signed-certificate.js';
import {
  AUTHN_REQUEST_LIMITS,
  type AuthnRequestOptions,
  AuthnRequestTooLarge,
  InvalidAuthnRequest,
  InvalidRequestSignature,
  parsePostAuthnRequest,
  parseRedirectAuthnRequest,
  type ReceivedAuthnRequest,
  RequestDenied,
  RequestUnsupported,
  VersionMismatch,
  verifyAuthnRequestSignature,
} from './authn-request.js';
import { SAML_STATUS, SamlRequestError } from './request-errors.js';

const NOW = new Date('2026-03-01T09:00:00.000Z');
const SSO_URL = 'https://ferry.example/saml/sso';
const SP_ENTITY = 'https://sp.example/saml/metadata';
const SP_ACS = 'https://sp.example/saml/acs';
const POST_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

let spKey: GeneratedSigningKey;
let otherKey: GeneratedSigningKey;

beforeAll(async () => {
  // node-saml and samlify stamp IssueInstant with the system clock: pin it to the injected "now".
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
  [spKey, otherKey] = await Promise.all([
    generateSelfSignedRsa({
      commonName: 'sp.example',
      modulusLength: 2048,
      notBefore: NOW,
      validityDays: 365,
    }),
    generateSelfSignedRsa({
      commonName: 'impostor.example',
      modulusLength: 2048,
      notBefore: NOW,
      validityDays: 365,
    }),
  ]);
});

afterAll(() => {
  vi.useRealTimers();
});

const opts: AuthnRequestOptions = { now: NOW, ssoUrls: [SSO_URL] };

function nodeSaml(overrides: Partial<SamlConfig> = {}): SAML {
  return new SAML({
    entryPoint: SSO_URL,
    issuer: SP_ENTITY,
    callbackUrl: SP_ACS,
    idpCert: otherKey.certificatePem, // required by node-saml; only used to check responses
    privateKey: spKey.privateKeyPem,
    publicCert: spKey.certificatePem,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    ...overrides,
  });
}

/** Splits a redirect URL the way the route will: framework-parsed query + the raw query string. */
function fromUrl(url: string): [Record<string, string>, string] {
  const u = new URL(url);
  return [Object.fromEntries(u.searchParams), u.search.slice(1)];
}

const redirect = (raw: string, o = opts) =>
  parseRedirectAuthnRequest(Object.fromEntries(new URLSearchParams(raw)), raw, o);

/** The error `fn` throws (fails the test if it returns). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, but the call returned');
}

/** An unsigned AuthnRequest; `attrs` are added to (or replace) the root's attributes. */
function requestXml(attrs: Record<string, string | undefined> = {}, inner = ''): string {
  const all: Record<string, string | undefined> = {
    ID: '_req1',
    Version: '2.0',
    IssueInstant: NOW.toISOString(),
    Destination: SSO_URL,
    AssertionConsumerServiceURL: SP_ACS,
    ProtocolBinding: POST_BINDING,
    ...attrs,
  };
  const rendered = Object.entries(all)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${v}"`)
    .join('');
  return (
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"${rendered}>` +
    `<saml:Issuer>${SP_ENTITY}</saml:Issuer>${inner}</samlp:AuthnRequest>`
  );
}

const post = (xml: string, extra: Record<string, unknown> = {}, o = opts) =>
  parsePostAuthnRequest({ SAMLRequest: Buffer.from(xml).toString('base64'), ...extra }, o);
const redirectXml = (xml: string, extra = '') =>
  redirect(`SAMLRequest=${encodeURIComponent(deflateRawSync(xml).toString('base64'))}${extra}`);

/** The hidden inputs of an auto-POST form, unescaped. */
function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]!] = m[2]!
      .replaceAll('&#13;', '\r')
      .replaceAll('&quot;', '"')
      .replaceAll('&apos;', "'")
      .replaceAll('&lt;', '<')
      .replaceAll('&gt;', '>')
      .replaceAll('&amp;', '&');
  }
  return fields;
}

const sp = (requireSignedRequests: boolean, certs = [spKey.certificatePem]) => ({
  entityId: SP_ENTITY,
  signingCertificates: certs,
  requireSignedRequests,
});

describe('HTTP-Redirect with node-saml as the SP', () => {
  it('reads a signed request and verifies it with the SP certificate only', async () => {
    const [query, raw] = fromUrl(await nodeSaml().getAuthorizeUrlAsync('relay-123', undefined, {}));
    const req = parseRedirectAuthnRequest(query, raw, opts);
    expect(req).toMatchObject({
      binding: 'HTTP-Redirect',
      issuer: SP_ENTITY,
      acsUrl: SP_ACS,
      protocolBinding: POST_BINDING,
      destination: SSO_URL,
      relayState: 'relay-123',
      nameIdPolicyFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      forceAuthn: false,
      isPassive: false,
      issueInstant: NOW.toISOString(),
    });
    expect(req.id).toMatch(/^_[0-9a-f]{40}$/);
    expect(req.acsIndex).toBeUndefined();
    expect(req.signature.present).toBe(true);
    expect(req.signature.algorithm).toBe(RSA_SHA256);
    expect(req.signature.verify([spKey.certificatePem])).toBe(true);
    expect(req.signature.verify([otherKey.certificatePem])).toBe(false);
    expect(req.signature.verify([otherKey.certificatePem, spKey.certificatePem])).toBe(true);
    expect(req.signature.verify([])).toBe(false);
    expect(verifyAuthnRequestSignature(req, sp(true))).toBe('verified');
  });

  it('fails verification when any character of SAMLRequest is changed', async () => {
    const [, raw] = fromUrl(await nodeSaml().getAuthorizeUrlAsync('relay-123', undefined, {}));
    const start = raw.indexOf('SAMLRequest=') + 'SAMLRequest='.length;
    const end = raw.indexOf('&', start);
    let parsedButUnverified = 0;
    let refused = 0;
    for (let i = start; i < end; i++) {
      const c = raw[i]!;
      if (!/[A-Za-z0-9]/.test(c) || raw[i - 1] === '%' || raw[i - 2] === '%') continue; // keep %XX escapes intact
      const tampered = raw.slice(0, i) + (c === 'A' ? 'B' : 'A') + raw.slice(i + 1);
      let req: ReceivedAuthnRequest;
      try {
        req = redirect(tampered);
      } catch (err) {
        expect(err).toBeInstanceOf(SamlRequestError); // not inflatable / not XML any more
        refused++;
        continue;
      }
      expect(req.signature.verify([spKey.certificatePem])).toBe(false);
      expect(() => verifyAuthnRequestSignature(req, sp(false))).toThrow(InvalidRequestSignature);
      parsedButUnverified++;
    }
    // Both outcomes occur: some tamperings still inflate to a readable request, which the signature catches.
    expect(parsedButUnverified).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('fails verification when RelayState, SigAlg or Signature is changed, dropped or reordered', async () => {
    const [, raw] = fromUrl(await nodeSaml().getAuthorizeUrlAsync('relay-123', undefined, {}));
    expect(redirect(raw).signature.verify([spKey.certificatePem])).toBe(true);
    for (const tampered of [
      raw.replace('RelayState=relay-123', 'RelayState=relay-124'),
      raw.replace('RelayState=relay-123', 'RelayState=Relay-123'),
      raw.replace('RelayState=relay-123&', ''),
      raw.replace(/Signature=([A-Za-z0-9])/, (_m, c: string) => `Signature=${c === 'A' ? 'B' : 'A'}`),
    ]) {
      expect(tampered).not.toBe(raw);
      expect(redirect(tampered).signature.verify([spKey.certificatePem])).toBe(false);
    }
    const sha512 = raw.replace('rsa-sha256', 'rsa-sha512');
    expect(redirect(sha512).signature.verify([spKey.certificatePem])).toBe(false);
  });

  it('verifies over the raw octets, not a re-encoding (and so catches node-saml signing one encoding and sending another)', async () => {
    // node-saml signs querystring.stringify()'s encoding (space → %20, "(" kept) but puts URLSearchParams'
    // encoding on the URL (space → +, "(" → %28). SAML Bindings §3.4.4.1 has the verifier use the octets as
    // received, so such a request does not verify; samlify signs what it sends, and verifies.
    const relay = 'a b(c)';
    const [query, raw] = fromUrl(await nodeSaml().getAuthorizeUrlAsync(relay, undefined, {}));
    expect(raw).toContain('RelayState=a+b%28c%29');
    const req = parseRedirectAuthnRequest(query, raw, opts);
    expect(req.relayState).toBe(relay);
    expect(req.signature.verify([spKey.certificatePem])).toBe(false);

    const samlifySp = samlify.ServiceProvider({
      entityID: SP_ENTITY,
      authnRequestsSigned: true,
      privateKey: spKey.privateKeyPem,
      signingCert: spKey.certificatePem,
      requestSignatureAlgorithm: RSA_SHA256,
      assertionConsumerService: [{ Binding: POST_BINDING, Location: SP_ACS }],
    });
    const idp = samlify.IdentityProvider({
      entityID: 'https://ferry.example/saml',
      wantAuthnRequestsSigned: true,
      singleSignOnService: [
        { Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: SSO_URL },
      ],
    });
    const { context } = samlifySp.createLoginRequest(idp, 'redirect', { relayState: relay }) as {
      context: string;
    };
    const [q2, raw2] = fromUrl(context);
    expect(raw2).toContain('RelayState=a%20b(c)');
    const req2 = parseRedirectAuthnRequest(q2, raw2, opts);
    expect(req2).toMatchObject({ issuer: SP_ENTITY, acsUrl: SP_ACS, relayState: relay });
    expect(req2.signature.verify([spKey.certificatePem])).toBe(true);
  });

  it('takes the raw query string with or without "?" or the path', async () => {
    const url = await nodeSaml().getAuthorizeUrlAsync('r', undefined, {});
    const [query, raw] = fromUrl(url);
    const u = new URL(url);
    for (const form of [raw, `?${raw}`, `${u.pathname}?${raw}`]) {
      expect(parseRedirectAuthnRequest(query, form, opts).signature.verify([spKey.certificatePem])).toBe(
        true,
      );
    }
  });

  it('handles an unsigned request: allowed unless the SP requires signing', async () => {
    const unsigned = nodeSaml({ privateKey: undefined, publicCert: undefined });
    const [query, raw] = fromUrl(await unsigned.getAuthorizeUrlAsync('', undefined, {}));
    const req = parseRedirectAuthnRequest(query, raw, opts);
    expect(req.signature.present).toBe(false);
    expect(req.relayState).toBeUndefined();
    expect(req.signature.verify([spKey.certificatePem])).toBe(false);
    expect(verifyAuthnRequestSignature(req, sp(false))).toBe('unsigned');
    const err = thrown(() => verifyAuthnRequestSignature(req, sp(true)));
    expect(err).toBeInstanceOf(InvalidRequestSignature);
    expect(err.message).toBe(
      `The service provider "${SP_ENTITY}" is registered as signing its AuthnRequests, but this request is not signed.`,
    );
  });

  it('refuses a signature that does not verify even when the SP does not require signing', async () => {
    const impostor = nodeSaml({ privateKey: otherKey.privateKeyPem, publicCert: otherKey.certificatePem });
    const [query, raw] = fromUrl(await impostor.getAuthorizeUrlAsync('r', undefined, {}));
    const req = parseRedirectAuthnRequest(query, raw, opts);
    const err = thrown(() => verifyAuthnRequestSignature(req, sp(false)));
    expect(err).toBeInstanceOf(InvalidRequestSignature);
    expect(err.message).toMatch(/does not verify with the certificate registered for it/);
    const noCert = thrown(() => verifyAuthnRequestSignature(req, sp(false, [])));
    expect(noCert.message).toMatch(/is signed, but no signing certificate is registered/);
  });

  it('refuses RSA-SHA1, node-saml’s default, with the fix in the message', async () => {
    const sha1 = nodeSaml({ signatureAlgorithm: undefined, digestAlgorithm: undefined });
    const [query, raw] = fromUrl(await sha1.getAuthorizeUrlAsync('r', undefined, {}));
    const err = thrown(() => parseRedirectAuthnRequest(query, raw, opts));
    expect(err).toBeInstanceOf(RequestUnsupported);
    expect(err.message).toBe(
      'The request is signed with http://www.w3.org/2000/09/xmldsig#rsa-sha1, which Ferry does not accept. ' +
        'Configure the service provider to sign requests with RSA-SHA256 (http://www.w3.org/2001/04/xmldsig-more#rsa-sha256).',
    );
  });

  it('verifies an ECDSA-SHA256 signature (r||s) with an EC certificate', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = {
      privateKey: await crypto.subtle.importKey(
        'pkcs8',
        privateKey.export({ format: 'der', type: 'pkcs8' }),
        alg,
        true,
        ['sign'],
      ),
      publicKey: await crypto.subtle.importKey(
        'spki',
        publicKey.export({ format: 'der', type: 'spki' }),
        alg,
        true,
        ['verify'],
      ),
    };
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomBytes(8).toString('hex'),
      name: 'CN=ec-sp',
      notBefore: NOW,
      notAfter: new Date(NOW.getTime() + 86_400_000),
      signingAlgorithm: alg,
      keys,
    });
    const samlRequest = encodeURIComponent(deflateRawSync(requestXml()).toString('base64'));
    const sigAlg = encodeURIComponent('http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256');
    const signed = `SAMLRequest=${samlRequest}&RelayState=r&SigAlg=${sigAlg}`;
    const signature = cryptoSign('sha256', Buffer.from(signed), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    const req = redirect(`${signed}&Signature=${encodeURIComponent(signature.toString('base64'))}`);
    expect(req.signature.verify([cert.toString('pem')])).toBe(true);
    expect(req.signature.verify([spKey.certificatePem])).toBe(false); // an RSA key never verifies an ECDSA SigAlg
  });
});

describe('HTTP-Redirect refusals', () => {
  const deflated = (xml: string) => encodeURIComponent(deflateRawSync(xml).toString('base64'));

  it('refuses a query string whose parsed and raw forms disagree', () => {
    const raw = `SAMLRequest=${deflated(requestXml())}&RelayState=one`;
    const err = thrown(() =>
      parseRedirectAuthnRequest(
        { ...Object.fromEntries(new URLSearchParams(raw)), RelayState: 'two' },
        raw,
        opts,
      ),
    );
    expect(err).toBeInstanceOf(InvalidAuthnRequest);
    expect(err.message).toMatch(/RelayState parameter reads differently/);
    expect(thrown(() => parseRedirectAuthnRequest({}, raw, opts))).toBeInstanceOf(InvalidAuthnRequest);
  });

  it('refuses duplicated parameters, a missing SAMLRequest and a SAMLResponse', () => {
    const one = `SAMLRequest=${deflated(requestXml())}`;
    const dup = `${one}&${one}`;
    expect(thrown(() => parseRedirectAuthnRequest({}, dup, opts)).message).toBe(
      'The SAMLRequest parameter appears more than once.',
    );
    expect(thrown(() => redirect('RelayState=x')).message).toBe('The request has no SAMLRequest parameter.');
    expect(thrown(() => redirect('SAMLResponse=abc')).message).toMatch(
      /carries a SAMLResponse, not a SAMLRequest/,
    );
  });

  it('refuses a SAMLRequest that is not base64 or not deflated', () => {
    expect(thrown(() => redirect('SAMLRequest=%%%')).message).toMatch(/malformed percent-encoding/);
    expect(thrown(() => redirect('SAMLRequest=not*base64')).message).toBe('The SAMLRequest is not base64.');
    const plain = encodeURIComponent(Buffer.from(requestXml()).toString('base64'));
    const err = thrown(() => redirect(`SAMLRequest=${plain}`));
    expect(err).toBeInstanceOf(InvalidAuthnRequest);
    expect(err.message).toMatch(/not DEFLATE-compressed/);
    const encoding = thrown(() => redirect(`SAMLRequest=${deflated(requestXml())}&SAMLEncoding=urn%3Aother`));
    expect(encoding).toBeInstanceOf(RequestUnsupported);
  });

  it('refuses a zip bomb quickly, without inflating it', () => {
    const bomb = deflateRawSync(Buffer.alloc(20 * 1024 * 1024, 0x20), { level: 9 });
    const encoded = encodeURIComponent(bomb.toString('base64'));
    // small enough on the wire to pass the length check: the inflate limit is what stops it
    expect(encoded.length).toBeLessThan(Math.ceil(AUTHN_REQUEST_LIMITS.maxXmlBytes / 3) * 4);
    const started = performance.now();
    const err = thrown(() => redirect(`SAMLRequest=${encoded}`));
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(AuthnRequestTooLarge);
    expect(err.message).toBe('The SAMLRequest inflates to more than 65536 bytes; Ferry reads no further.');
    expect(elapsed).toBeLessThan(500);
  });

  it('refuses an oversized SAMLRequest before decoding it', () => {
    const big = 'A'.repeat(200_000);
    expect(thrown(() => redirect(`SAMLRequest=${big}`))).toBeInstanceOf(AuthnRequestTooLarge);
  });

  it('keeps RelayState up to 1024 bytes and refuses more', () => {
    const ok = 'x'.repeat(1024);
    expect(redirectXml(requestXml(), `&RelayState=${ok}`).relayState).toBe(ok);
    const err = thrown(() => redirectXml(requestXml(), `&RelayState=${encodeURIComponent('é'.repeat(513))}`));
    expect(err).toBeInstanceOf(RequestDenied);
    expect(err.message).toBe(
      'RelayState is 1026 bytes; Ferry accepts at most 1024 (SAML Bindings §3.4.3 asks for at most 80).',
    );
  });

  it('refuses a Signature without SigAlg and the reverse', () => {
    const base = `SAMLRequest=${deflated(requestXml())}`;
    expect(thrown(() => redirect(`${base}&Signature=AAAA`)).message).toMatch(/a Signature but no SigAlg/);
    expect(thrown(() => redirect(`${base}&SigAlg=${encodeURIComponent(RSA_SHA256)}`))).toBeInstanceOf(
      InvalidRequestSignature,
    );
  });

  it('refuses a DOCTYPE / entity payload', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${requestXml({}, '<samlp:Extensions>&xxe;</samlp:Extensions>')}`;
    const err = thrown(() => redirectXml(xxe));
    expect(err).toBeInstanceOf(RequestDenied);
    expect(err.message).toBe(
      'The SAMLRequest was refused: the document contains a DOCTYPE declaration, which Ferry never accepts.',
    );
  });
});

describe('HTTP-POST', () => {
  it('verifies a signed request from node-saml’s auto-POST form', async () => {
    const html = await nodeSaml({ skipRequestCompression: true }).getAuthorizeFormAsync(
      'relay-post',
      undefined,
      {},
    );
    const fields = formFields(html);
    expect(Object.keys(fields).sort()).toEqual(['RelayState', 'SAMLRequest']);
    const req = parsePostAuthnRequest(fields, opts);
    expect(req).toMatchObject({
      binding: 'HTTP-POST',
      issuer: SP_ENTITY,
      acsUrl: SP_ACS,
      relayState: 'relay-post',
    });
    expect(req.signature.present).toBe(true);
    expect(req.signature.algorithm).toBe(RSA_SHA256);
    expect(req.signature.verify([spKey.certificatePem])).toBe(true);
    expect(req.signature.verify([otherKey.certificatePem])).toBe(false);
    expect(verifyAuthnRequestSignature(req, sp(true))).toBe('verified');
  });

  it('accepts node-saml’s default deflated POST payload too', async () => {
    const fields = formFields(await nodeSaml().getAuthorizeFormAsync('r', undefined, {}));
    expect(Buffer.from(fields.SAMLRequest!, 'base64')[0]).not.toBe(0x3c); // not "<": deflated
    expect(parsePostAuthnRequest(fields, opts).signature.verify([spKey.certificatePem])).toBe(true);
  });

  it('verifies a signed request from samlify', () => {
    const samlifySp = samlify.ServiceProvider({
      entityID: SP_ENTITY,
      authnRequestsSigned: true,
      privateKey: spKey.privateKeyPem,
      signingCert: spKey.certificatePem,
      assertionConsumerService: [{ Binding: POST_BINDING, Location: SP_ACS }],
    });
    const idp = samlify.IdentityProvider({
      entityID: 'https://ferry.example/saml',
      wantAuthnRequestsSigned: true,
      singleSignOnService: [{ Binding: POST_BINDING, Location: SSO_URL }],
    });
    const ctx = samlifySp.createLoginRequest(idp, 'post', { relayState: 'rs' }) as {
      context: string;
      relayState: string;
    };
    const req = parsePostAuthnRequest({ SAMLRequest: ctx.context, RelayState: ctx.relayState }, opts);
    expect(req).toMatchObject({ issuer: SP_ENTITY, acsUrl: SP_ACS, relayState: 'rs', destination: SSO_URL });
    expect(req.signature.verify([spKey.certificatePem])).toBe(true);
  });

  describe('tampering and signature wrapping', () => {
    let signedXml: string;
    let id: string;
    const b64 = (xml: string) => Buffer.from(xml).toString('base64');

    beforeAll(async () => {
      const fields = formFields(
        await nodeSaml({ skipRequestCompression: true }).getAuthorizeFormAsync('', undefined, {}),
      );
      signedXml = Buffer.from(fields.SAMLRequest!, 'base64')
        .toString()
        .replace(/^<\?xml[^>]*\?>/, '');
      id = /ID="([^"]+)"/.exec(signedXml)![1]!;
    });

    const signatureEl = () => /<Signature [\s\S]*<\/Signature>/.exec(signedXml)![0];
    const evilRoot = (rootId: string, inner: string) =>
      requestXml({ ID: rootId, AssertionConsumerServiceURL: 'https://evil.example/acs' }, inner);

    it('fails verification once the signed content is changed', () => {
      const tampered = signedXml.replace(SP_ACS, 'https://evil.example/acs');
      const req = parsePostAuthnRequest({ SAMLRequest: b64(tampered) }, opts);
      expect(req.acsUrl).toBe('https://evil.example/acs');
      expect(req.signature.verify([spKey.certificatePem])).toBe(false);
      expect(() => verifyAuthnRequestSignature(req, sp(false))).toThrow(InvalidRequestSignature);
    });

    it('refuses a new root whose signature references the original request moved inside it', () => {
      const original = signedXml.replace(signatureEl(), '');
      const wrapped = evilRoot('_evil', `${signatureEl()}<samlp:Extensions>${original}</samlp:Extensions>`);
      // xml-crypto alone finds the referenced element and reports the signature valid: the attack is real.
      const bare = new SignedXml({ publicCert: spKey.certificatePem });
      const sigStart = wrapped.indexOf('<Signature ');
      bare.loadSignature(
        wrapped.slice(sigStart, wrapped.indexOf('</Signature>', sigStart) + '</Signature>'.length),
      );
      expect(bare.checkSignature(wrapped)).toBe(true);

      const err = thrown(() => parsePostAuthnRequest({ SAMLRequest: b64(wrapped) }, opts));
      expect(err).toBeInstanceOf(InvalidRequestSignature);
      expect(err.message).toBe(
        `The signature references "#${id}" but the AuthnRequest's ID is "_evil": the signature does not cover this request (signature wrapping).`,
      );
    });

    it('refuses a signed request nested inside another one', () => {
      const wrapped = evilRoot('_evil', `<samlp:Extensions>${signedXml}</samlp:Extensions>`);
      const err = thrown(() => parsePostAuthnRequest({ SAMLRequest: b64(wrapped) }, opts));
      expect(err).toBeInstanceOf(InvalidRequestSignature);
      expect(err.message).toMatch(/not its own enveloped signature/);
    });

    it('refuses a forged root that reuses the signed ID next to a copy of the original', () => {
      const original = signedXml.replace(signatureEl(), '');
      const wrapped = evilRoot(id, `${signatureEl()}<samlp:Extensions>${original}</samlp:Extensions>`);
      const err = thrown(() => parsePostAuthnRequest({ SAMLRequest: b64(wrapped) }, opts));
      expect(err).toBeInstanceOf(InvalidRequestSignature);
      expect(err.message).toBe(
        `2 elements carry the ID "${id}"; a signed AuthnRequest's ID must be unique (signature wrapping).`,
      );
    });

    it('refuses a signature with a second reference or a foreign transform', () => {
      const twoRefs = signedXml.replace(/(<Reference [\s\S]*?<\/Reference>)/, '$1$1');
      expect(thrown(() => parsePostAuthnRequest({ SAMLRequest: b64(twoRefs) }, opts)).message).toBe(
        'The signature has 2 references; it must have exactly one, to the AuthnRequest.',
      );
      const xslt = signedXml.replace(
        '<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
        '<Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>',
      );
      expect(thrown(() => parsePostAuthnRequest({ SAMLRequest: b64(xslt) }, opts))).toBeInstanceOf(
        InvalidRequestSignature,
      );
    });
  });

  it('handles an unsigned request by the SP’s requirement', () => {
    const req = post(requestXml({ ForceAuthn: 'true', IsPassive: '1' }));
    expect(req).toMatchObject({
      id: '_req1',
      forceAuthn: true,
      isPassive: true,
      signature: { present: false },
    });
    expect(verifyAuthnRequestSignature(req, sp(false))).toBe('unsigned');
    expect(() => verifyAuthnRequestSignature(req, sp(true))).toThrow(InvalidRequestSignature);
  });

  it('refuses DOCTYPE, entity expansion and SimpleSign', () => {
    const lol = `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>${requestXml({}, '<samlp:Extensions>&b;</samlp:Extensions>')}`;
    expect(thrown(() => post(lol))).toBeInstanceOf(RequestDenied);
    const simpleSign = thrown(() => post(requestXml(), { SigAlg: RSA_SHA256, Signature: 'AAAA' }));
    expect(simpleSign).toBeInstanceOf(RequestUnsupported);
    expect(thrown(() => parsePostAuthnRequest({ SAMLRequest: ['a', 'b'] }, opts)).message).toBe(
      'The form has more than one SAMLRequest field.',
    );
    expect(thrown(() => parsePostAuthnRequest({ SAMLResponse: 'x' }, opts)).message).toMatch(
      /carries a SAMLResponse/,
    );
  });

  it('refuses an oversized POST body', () => {
    const huge = Buffer.alloc(AUTHN_REQUEST_LIMITS.maxXmlBytes + 10, 0x20).toString('base64');
    expect(thrown(() => parsePostAuthnRequest({ SAMLRequest: huge }, opts))).toBeInstanceOf(
      AuthnRequestTooLarge,
    );
  });
});

describe('AuthnRequest content checks (both bindings)', () => {
  it('reads the AssertionConsumerServiceIndex and NameIDPolicy', () => {
    const xml = requestXml(
      {
        AssertionConsumerServiceURL: undefined,
        ProtocolBinding: undefined,
        AssertionConsumerServiceIndex: '2',
      },
      '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/>',
    );
    for (const req of [post(xml), redirectXml(xml)]) {
      expect(req.acsIndex).toBe(2);
      expect(req.acsUrl).toBeUndefined();
      expect(req.protocolBinding).toBeUndefined();
      expect(req.nameIdPolicyFormat).toBe('urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    }
  });

  it('refuses a version other than 2.0 with VersionMismatch', () => {
    const err = thrown(() => post(requestXml({ Version: '1.1' })));
    expect(err).toBeInstanceOf(VersionMismatch);
    expect((err as VersionMismatch).samlStatus).toEqual([SAML_STATUS.versionMismatch]);
    expect(err.message).toBe(
      'The AuthnRequest has Version="1.1"; Ferry speaks SAML 2.0 only (Version="2.0").',
    );
  });

  it('checks IssueInstant against the injected now: 10 minutes back, 5 ahead', () => {
    const at = (ms: number) => new Date(NOW.getTime() + ms).toISOString();
    expect(post(requestXml({ IssueInstant: at(-9 * 60_000) })).issueInstant).toBe(at(-9 * 60_000));
    expect(post(requestXml({ IssueInstant: at(4 * 60_000) })).id).toBe('_req1');
    const stale = thrown(() => post(requestXml({ IssueInstant: at(-11 * 60_000) })));
    expect(stale).toBeInstanceOf(RequestDenied);
    expect(stale.message).toMatch(
      /issued at 2026-03-01T08:49:00.000Z, more than 10 minutes before Ferry's time 2026-03-01T09:00:00.000Z/,
    );
    const ahead = thrown(() => post(requestXml({ IssueInstant: at(6 * 60_000) })));
    expect(ahead.message).toMatch(/more than 5 minutes after Ferry's time .*clock is ahead/);
    // the same request is fine for a caller whose now is later
    expect(
      post(requestXml({ IssueInstant: at(6 * 60_000) }), {}, { now: new Date(NOW.getTime() + 60_000) }).id,
    ).toBe('_req1');
    expect(thrown(() => post(requestXml({ IssueInstant: 'yesterday' })))).toBeInstanceOf(InvalidAuthnRequest);
  });

  it('refuses a missing ID, Issuer, or a non-AuthnRequest', () => {
    expect(thrown(() => post(requestXml({ ID: undefined }))).message).toBe('The AuthnRequest has no ID.');
    expect(thrown(() => post(requestXml({ ID: 'a b' }))).message).toMatch(/is not a valid XML ID/);
    const noIssuer = requestXml().replace(`<saml:Issuer>${SP_ENTITY}</saml:Issuer>`, '');
    expect(thrown(() => post(noIssuer)).message).toMatch(/exactly one <Issuer>/);
    const logout =
      '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>';
    expect(thrown(() => post(logout))).toBeInstanceOf(RequestUnsupported);
    expect(thrown(() => post('<html/>')).message).toBe(
      'The SAMLRequest is a <html>, not a SAML 2.0 <AuthnRequest>.',
    );
    expect(thrown(() => post('not xml at all'))).toBeInstanceOf(InvalidAuthnRequest);
  });

  it('refuses URL and index together, and response bindings other than HTTP-POST', () => {
    const both = thrown(() => post(requestXml({ AssertionConsumerServiceIndex: '1' })));
    expect(both.message).toMatch(/cannot be combined with AssertionConsumerServiceURL/);
    const artifact = thrown(() =>
      post(requestXml({ ProtocolBinding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact' })),
    );
    expect(artifact).toBeInstanceOf(RequestUnsupported);
    expect((artifact as RequestUnsupported).samlStatus).toEqual([
      SAML_STATUS.requester,
      SAML_STATUS.requestUnsupported,
    ]);
  });

  it('refuses a request addressed to another IdP, naming both', () => {
    const err = thrown(() =>
      post(requestXml({ Destination: 'https://login.microsoftonline.com/tenant/saml2' })),
    );
    expect(err).toBeInstanceOf(RequestDenied);
    expect(err.message).toBe(
      'The AuthnRequest is addressed to https://login.microsoftonline.com/tenant/saml2, which is not this identity ' +
        "provider's sign-in endpoint (https://ferry.example/saml/sso). Check the IdP sign-in URL configured at the service provider.",
    );
    expect((err as RequestDenied).status).toBe(400);
    // without ssoUrls the caller checks nothing about Destination
    expect(post(requestXml({ Destination: 'https://other.example' }), {}, { now: NOW }).destination).toBe(
      'https://other.example',
    );
  });
});
