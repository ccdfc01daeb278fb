import { execFile } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser, type Element, MIME_TYPE } from '@xmldom/xmldom';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExclusiveCanonicalization } from 'xml-crypto';
import { awsLikeAccept } from '../../../test/support/aws-saml-relying-party.js';
import { testSigningKey } from '../../../test/support/saml-keys.js';
import type { SigningKey } from '../../keys/signing-keys.js';
import { AWS_SAML_AUDIENCE, AWS_SIGNIN_ENDPOINTS, awsAttributes } from './aws-attributes.js';
import {
  AUTHN_CONTEXT,
  buildSignedResponse,
  NAMEID_FORMAT,
  type ResponseInput,
  type SamlAttribute,
  type SignedResponse,
} from './response.js';
import { NS, onlyChild } from './xml.js';

/**
 * buildSignedResponse writes the Response already canonical and digests the strings it wrote, without
 * parsing them. These tests hold that construction to two independent exclusive-c14n implementations
 * (xml-crypto's and libxml2's, through xmlsec1) over inputs that exercise every escaping rule, and
 * check that both signatures verify (xmlsec1, node-saml configured as AWS).
 */

const NOW = new Date('2026-03-02T10:00:00.000Z');
const SIGNIN = AWS_SIGNIN_ENDPOINTS.aws;
const UPN = 'test-awsdeveloper@contoso.example';
const NASTY = 'a & b < c > d " e \' f\tg\nh\ri\r\nj  ';
const ROLE = (n: number) => ({
  roleArn: `arn:aws:iam::123456789012:role/Role${n}`,
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
});

const tmp = mkdtempSync(join(tmpdir(), 'ferry-saml-c14n-'));
let key: SigningKey;

beforeAll(async () => {
  key = await testSigningKey({ modulusLength: 3072 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeEach(() => {
  // node-saml reads Date.now(): pin it to the instant the assertions are issued at.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

function base(overrides: Partial<ResponseInput> = {}): ResponseInput {
  return {
    issuer: 'https://ferry.example.com/saml',
    destination: SIGNIN,
    recipient: SIGNIN,
    audience: AWS_SAML_AUDIENCE,
    nameId: { value: UPN, format: NAMEID_FORMAT.persistent },
    sessionIndex: '_0123456789abcdef',
    authnInstant: new Date(NOW.getTime() - 30_000),
    authnContextClassRef: AUTHN_CONTEXT.passwordProtectedTransport,
    attributes: awsAttributes({
      roles: [ROLE(1), ROLE(2)],
      sessionName: UPN,
      sourceIdentity: UPN,
      sessionDurationSeconds: 3600,
      principalTags: { department: 'Engineering', costCenter: 'CC-1234' },
      transitiveTagKeys: ['department'],
    }),
    now: NOW,
    ...overrides,
  };
}

const manyAttributes: SamlAttribute[] = [
  ...awsAttributes({
    roles: Array.from({ length: 12 }, (_, i) => ROLE(i)),
    sessionName: UPN,
    sourceIdentity: UPN,
    sessionDurationSeconds: 43200,
    principalTags: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`tag${i}`, `value-${i}`])),
    transitiveTagKeys: ['tag0', 'tag1', 'tag2'],
  }),
  ...Array.from({ length: 40 }, (_, i) => ({
    name: `urn:example:attr:${i}`,
    nameFormat: 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    values: Array.from({ length: (i % 4) + 1 }, (_, j) => `v${i}.${j}`),
  })),
];

const CASES: Array<{ name: string; input: ResponseInput }> = [
  { name: 'the AWS console assertion (multi-valued Role, principal tags)', input: base() },
  { name: 'SP-initiated, with InResponseTo', input: base({ inResponseTo: '_request-42' }) },
  {
    name: 'every character c14n escapes, in every text and attribute Ferry writes',
    input: base({
      issuer: `https://idp.example/?a=1&b=<2>"'`,
      destination: `https://sp.example/acs?x=1&y="2"<>'\t`,
      recipient: `https://sp.example/acs?x=1&y="2"<>'\t`,
      audience: `urn:sp:${NASTY}`,
      inResponseTo: `_req&<>"'\t\n\r`,
      nameId: { value: NASTY, format: `urn:format:${NASTY}` },
      sessionIndex: `_s${NASTY}`,
      authnContextClassRef: `urn:ac:${NASTY}`,
      attributes: [
        { name: `name ${NASTY}`, nameFormat: `format ${NASTY}`, values: [NASTY, '>', '<', '&', '"', "'"] },
        { name: 'whitespace', values: ['\t', '\n', '\r', '\r\n', ' ', '  two  '] },
        { name: 'entities-as-text', values: ['&amp;', '&#xD;', '&lt;&gt;', ']]>', '<![CDATA[x]]>'] },
      ],
    }),
  },
  {
    name: 'non-ASCII (Latin, CJK, RTL, astral) in names and values',
    input: base({
      nameId: { value: 'José Müller-Øster 中文 עברית 😀', format: NAMEID_FORMAT.unspecified },
      attributes: [
        { name: 'displayName', values: ['Ærøskøbing', 'Ελληνικά', '日本語 😀🏳️‍🌈'] },
        {
          name: 'атрибут',
          nameFormat: 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
          values: ['значение'],
        },
        { name: 'private-use-and-bmp-edges', values: ['\uE000\uFFFD\u{10FFFF}\u00A0\u200B'] },
        // Line ends in XML 1.1 (and to xmldom), ordinary characters in XML 1.0: see forXmldom.
        { name: 'nel\u0085ls\u2028ps\u2029', values: ['a\u0085b', 'c\u2028d', 'e\u2029f', '\r\u0085'] },
      ],
    }),
  },
  { name: 'many attributes, Role with 12 values', input: base({ attributes: manyAttributes }) },
  {
    name: 'no attributes, a session limit, a short lifetime',
    input: base({
      attributes: [],
      sessionNotOnOrAfter: new Date('2026-03-02T18:00:00.000Z'),
      assertionLifetimeSeconds: 60,
      inResponseTo: 'id-with-dashes.and.dots',
    }),
  },
];

/**
 * Parses as the relying parties' libraries do (xmldom), but without xml.ts's parseXml strictness:
 * xmldom warns about U+FFFD, which is an ordinary XML character.
 */
function parse(xml: string): Element {
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new Error(message);
    },
  }).parseFromString(xml, MIME_TYPE.XML_TEXT);
  return doc.documentElement!;
}

/** The written XML with NEL, LS and PS back as themselves: exactly its canonical form. */
const unref = (xml: string) =>
  xml.replace(/&#x(85|2028|2029);/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
/** And the other way, for parsing a canonical string with xmldom. */
const reref = (xml: string) =>
  xml.replace(/[\u0085\u2028\u2029]/g, (c) => `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);

const exc = new ExclusiveCanonicalization();
// xml-crypto is typed against the DOM lib's Element; it works on xmldom's (its own parser).
const canonical = (el: Element) => exc.process(el as unknown as Parameters<typeof exc.process>[0], {});

/** The substring of `xml` that is the element starting at `from`'s first `open`, through its `close`. */
function span(xml: string, open: string, close: string, from = 0): [number, number] {
  const start = xml.indexOf(open, from);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = xml.indexOf(close, start) + close.length;
  expect(end).toBeGreaterThan(start);
  return [start, end];
}

interface SignedSpans {
  assertion: [number, number];
  assertionSignature: [number, number];
  responseSignature?: [number, number];
}

function spans(xml: string, signedResponse: boolean): SignedSpans {
  const assertion = span(xml, '<saml:Assertion ', '</saml:Assertion>');
  const assertionSignature = span(xml, '<ds:Signature ', '</ds:Signature>', assertion[0]);
  if (!signedResponse) {
    expect(xml.indexOf('<ds:Signature')).toBe(assertionSignature[0]);
    return { assertion, assertionSignature };
  }
  const responseSignature = span(xml, '<ds:Signature ', '</ds:Signature>');
  expect(responseSignature[1]).toBeLessThan(assertion[0]);
  return { assertion, assertionSignature, responseSignature };
}

const without = (s: string, [a, b]: [number, number], offset = 0) =>
  s.slice(0, a - offset) + s.slice(b - offset);

/** Checks one enveloped signature of `owner` against the canonical form the test computes itself. */
function checkSignature(owner: Element, expectedCanonical: string): void {
  const signature = onlyChild(owner, NS.dsig, 'Signature');
  const signedInfo = onlyChild(signature, NS.dsig, 'SignedInfo');
  const reference = onlyChild(signedInfo, NS.dsig, 'Reference');
  // The enveloped-signature transform, then exclusive c14n, by xml-crypto.
  owner.removeChild(signature);
  expect(canonical(owner)).toBe(expectedCanonical);
  owner.insertBefore(signature, owner.firstChild!.nextSibling);
  const digest = createHash('sha256').update(expectedCanonical, 'utf8').digest('base64');
  expect(onlyChild(reference, NS.dsig, 'DigestValue').textContent).toBe(digest);
  // SignedInfo canonicalized in place (xml-crypto renders `ds` on it), verified with the certificate.
  const signatureValue = onlyChild(signature, NS.dsig, 'SignatureValue').textContent!;
  expect(
    verify(
      'sha256',
      Buffer.from(canonical(signedInfo), 'utf8'),
      key.certificatePem,
      Buffer.from(signatureValue, 'base64'),
    ),
  ).toBe(true);
}

interface XmlsecRun {
  code: number;
  output: string;
  preDigest?: string;
  preSigned?: string;
}

/** xmlsec1 --verify of one Signature, keeping what libxml2 canonicalized (the pre-digest data). */
function xmlsec(xml: string, which: 'Response' | 'Assertion'): Promise<XmlsecRun> {
  const name = Math.random().toString(36).slice(2);
  const file = join(tmp, `${name}.xml`);
  const cert = join(tmp, `${name}.pem`);
  writeFileSync(file, xml);
  writeFileSync(cert, key.certificatePem);
  const signature =
    which === 'Response'
      ? "/*[local-name()='Response']/*[local-name()='Signature']"
      : "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']";
  const args = [
    '--verify',
    '--enabled-reference-uris',
    'same-doc',
    '--id-attr:ID',
    `${NS.protocol}:Response`,
    '--id-attr:ID',
    `${NS.assertion}:Assertion`,
    '--node-xpath',
    signature,
    '--pubkey-cert-pem',
    cert,
    '--store-references',
    '--store-signatures',
    '--print-debug',
    file,
  ];
  const between = (out: string, what: string) => {
    const start = `== ${what} data - start buffer:\n`;
    const a = out.indexOf(start);
    const b = out.indexOf(`\n== ${what} data - end buffer`, a);
    return a < 0 || b < 0 ? undefined : out.slice(a + start.length, b);
  };
  return new Promise((resolve, reject) => {
    execFile('xmlsec1', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (err as NodeJS.ErrnoException & { code?: unknown }).code : 0;
      if (err && typeof code !== 'number') {
        reject(new Error(`xmlsec1 could not run (${String(code)}): install the Debian package xmlsec1`));
        return;
      }
      resolve({
        code: code as number,
        output: `${stdout}${stderr}`,
        preDigest: between(stdout, 'PreDigest'),
        preSigned: between(stdout, 'PreSigned'),
      });
    });
  });
}

/** What node-saml reports for an attribute: one value as a string, several as an array. */
function expectedAttributes(attributes: SamlAttribute[]): Record<string, unknown> {
  return Object.fromEntries(attributes.map((a) => [a.name, a.values.length === 1 ? a.values[0] : a.values]));
}

describe.each(CASES)('canonical by construction: $name', ({ input }) => {
  describe.each([true, false])('signResponse %s', (signResponse) => {
    let built: SignedResponse;
    /** What Ferry wrote, NEL/LS/PS references aside: what it digested. */
    let c14n: string;
    beforeAll(() => {
      built = buildSignedResponse({ ...input, signResponse }, key);
      c14n = unref(built.xml);
    });

    it('the whole Response as written is its own exclusive canonical form (xml-crypto)', () => {
      expect(built.xml.startsWith('<samlp:Response ')).toBe(true);
      expect(reref(c14n)).toBe(built.xml);
      expect(canonical(parse(built.xml))).toBe(c14n);
    });

    it('the Assertion is canonical alone and inside the Response, and its digest and signature hold', () => {
      const s = spans(c14n, signResponse);
      const written = c14n.slice(...s.assertion);
      const response = parse(built.xml);
      const nested = onlyChild(response, NS.assertion, 'Assertion');
      expect(canonical(nested)).toBe(written);
      const alone = parse(reref(written));
      expect(canonical(alone)).toBe(written);
      expect(alone.getAttribute('ID')).toBe(built.assertionId);
      const enveloped = without(written, s.assertionSignature, s.assertion[0]);
      checkSignature(nested, enveloped);
      checkSignature(alone, enveloped);
    });

    it('the Response signature covers the Response as written, the signed Assertion included', () => {
      const s = spans(c14n, signResponse);
      const response = parse(built.xml);
      if (!signResponse) {
        expect(() => onlyChild(response, NS.dsig, 'Signature')).toThrow();
        return;
      }
      checkSignature(response, without(c14n, s.responseSignature!));
    });

    it('xmlsec1 verifies each signature, having canonicalized exactly what Ferry wrote', async () => {
      const s = spans(c14n, signResponse);
      const assertion = await xmlsec(built.xml, 'Assertion');
      expect(assertion.output).toContain('OK');
      expect(assertion.code).toBe(0);
      expect(assertion.preDigest).toBe(
        without(c14n.slice(...s.assertion), s.assertionSignature, s.assertion[0]),
      );
      const responseElement = parse(built.xml);
      const assertionSignedInfo = onlyChild(
        onlyChild(onlyChild(responseElement, NS.assertion, 'Assertion'), NS.dsig, 'Signature'),
        NS.dsig,
        'SignedInfo',
      );
      expect(assertion.preSigned).toBe(canonical(assertionSignedInfo));
      const response = await xmlsec(built.xml, 'Response');
      if (!signResponse) {
        expect(response.code).not.toBe(0);
        return;
      }
      expect(response.output).toContain('OK');
      expect(response.code).toBe(0);
      expect(response.preDigest).toBe(without(c14n, s.responseSignature!));
      const responseSignedInfo = onlyChild(
        onlyChild(responseElement, NS.dsig, 'Signature'),
        NS.dsig,
        'SignedInfo',
      );
      expect(response.preSigned).toBe(canonical(responseSignedInfo));
    });

    it('node-saml configured as AWS accepts it and reads back NameID and every attribute value', async () => {
      const profile = await awsLikeAccept(built.base64, {
        idpCert: key.certificatePem,
        signInUrl: input.destination,
        audience: input.audience,
        wantAuthnResponseSigned: signResponse,
      });
      expect(profile.nameID).toBe(input.nameId.value);
      expect(profile.nameIDFormat).toBe(input.nameId.format);
      expect(profile.issuer).toBe(input.issuer);
      expect(profile.sessionIndex).toBe(input.sessionIndex);
      // node-saml re-serializes the verified Assertion and parses that again with xmldom, which then
      // reads NEL and LS as line feeds however they were written: those values are its own affair.
      const lineEnds = /[\u0085\u2028\u2029]/;
      const plain = input.attributes.filter((a) => ![a.name, ...a.values].some((v) => lineEnds.test(v)));
      const attributes = profile.attributes ?? {};
      expect(Object.keys(attributes)).toHaveLength(input.attributes.length);
      expect(attributes).toMatchObject(expectedAttributes(plain));
    });
  });
});

describe('canonical escaping', () => {
  it('writes attribute values as c14n does (`>` raw; tab, LF, CR as references) and text as c14n does', () => {
    const built = buildSignedResponse(
      base({
        recipient: 'r>&<"\t\n\r',
        nameId: { value: 't>&<"\'\t\n\r', format: NAMEID_FORMAT.persistent },
        attributes: [{ name: 'x\u2028', values: ['\u0085\u2028\u2029'] }],
      }),
      key,
    );
    expect(built.xml).toContain('Recipient="r>&amp;&lt;&quot;&#x9;&#xA;&#xD;"');
    expect(built.xml).toContain('>t&gt;&amp;&lt;"\'\t\n&#xD;</saml:NameID>');
    expect(built.xml).not.toMatch(/\/>/);
    expect(built.xml).not.toMatch(/[\u0085\u2028\u2029]/);
    expect(built.xml).not.toMatch(/^<\?xml/);
    // NEL, LS and PS as references (xmldom reads them raw as line feeds), and only they.
    expect(built.xml).toContain('<saml:Attribute Name="x&#x2028;">');
    expect(built.xml).toContain('<saml:AttributeValue>&#x85;&#x2028;&#x2029;</saml:AttributeValue>');
  });
});
