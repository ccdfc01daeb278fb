import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { awsLikeAccept, RelyingPartyRejected } from '../../../test/support/aws-saml-relying-party.js';
import { testSigningKey } from '../../../test/support/saml-keys.js';
import { ManualClock } from '../../clock.js';
import type { SigningKey } from '../../keys/signing-keys.js';
import { AWS_ATTRIBUTE, AWS_SAML_AUDIENCE, AWS_SIGNIN_ENDPOINTS, awsAttributes } from './aws-attributes.js';
import {
  AUTHN_CONTEXT,
  buildSignedResponse,
  EXC_C14N,
  NAMEID_FORMAT,
  type ResponseInput,
  RSA_SHA256,
  SHA256,
} from './response.js';
import { elementChildren, InvalidXml, NS, onlyChild, parseXml } from './xml.js';

const SIGNIN = AWS_SIGNIN_ENDPOINTS.aws;
const ISSUER = 'https://ferry.example.com/saml';
const UPN = 'test-awsdeveloper@contoso.example';
const DEV = {
  roleArn: 'arn:aws:iam::123456789012:role/Developer',
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
};
const ADMIN = {
  roleArn: 'arn:aws:iam::123456789012:role/Administrator',
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
};

const tmp = mkdtempSync(join(tmpdir(), 'ferry-saml-'));
let key: SigningKey;
let otherKey: SigningKey;
let clock: ManualClock;

beforeAll(async () => {
  // The production size (RSA-3072) for the key under test; the stranger's key only has to differ.
  [key, otherKey] = await Promise.all([testSigningKey({ modulusLength: 3072 }), testSigningKey()]);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeEach(() => {
  clock = new ManualClock('2026-03-02T10:00:00.000Z');
  // node-saml reads Date.now(): pin it to the same instant the assertions are issued at.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(clock.now());
});
afterEach(() => {
  vi.useRealTimers();
});

function input(overrides: Partial<ResponseInput> = {}): ResponseInput {
  return {
    issuer: ISSUER,
    destination: SIGNIN,
    recipient: SIGNIN,
    audience: AWS_SAML_AUDIENCE,
    nameId: { value: UPN, format: NAMEID_FORMAT.persistent },
    sessionIndex: '_0123456789abcdef',
    authnInstant: new Date(clock.now().getTime() - 30_000),
    authnContextClassRef: AUTHN_CONTEXT.passwordProtectedTransport,
    attributes: awsAttributes({
      roles: [DEV, ADMIN],
      sessionName: UPN,
      sourceIdentity: UPN,
      sessionDurationSeconds: 3600,
      principalTags: { department: 'Engineering', costCenter: 'CC-1234' },
      transitiveTagKeys: ['department'],
    }),
    now: clock.now(),
    ...overrides,
  };
}

const b64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

interface Run {
  code: number;
  output: string;
}

/** xmlsec1 --verify of the Response's or the Assertion's own Signature, with one certificate. */
function xmlsecVerify(xml: string, certPem: string, which: 'Response' | 'Assertion'): Promise<Run> {
  const name = `${Math.random().toString(36).slice(2)}`;
  const file = join(tmp, `${name}.xml`);
  const cert = join(tmp, `${name}.pem`);
  writeFileSync(file, xml);
  writeFileSync(cert, certPem);
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
    // xmlsec1 verifies the first Signature in document order (the Response's) unless told otherwise.
    '--node-xpath',
    signature,
    '--pubkey-cert-pem',
    cert,
    file,
  ];
  return new Promise((resolve, reject) => {
    execFile('xmlsec1', args, (err, stdout, stderr) => {
      const code = err ? (err as NodeJS.ErrnoException & { code?: unknown }).code : 0;
      if (err && typeof code !== 'number') {
        reject(new Error(`xmlsec1 could not run (${String(code)}): install the Debian package xmlsec1`));
        return;
      }
      resolve({ code: code as number, output: `${stdout}${stderr}` });
    });
  });
}

describe('xmlsec1 verifies the signatures with the published certificate', () => {
  it('accepts the Assertion and the Response signature', async () => {
    const { xml } = buildSignedResponse(input(), key);
    const assertion = await xmlsecVerify(xml, key.certificatePem, 'Assertion');
    expect(assertion.output).toContain('OK');
    expect(assertion.code).toBe(0);
    const response = await xmlsecVerify(xml, key.certificatePem, 'Response');
    expect(response.code).toBe(0);
  });

  it('rejects both once one byte of an attribute value changed', async () => {
    const { xml } = buildSignedResponse(input(), key);
    const tampered = xml.replace('>CC-1234<', '>CC-1235<');
    expect(tampered).not.toBe(xml);
    expect((await xmlsecVerify(tampered, key.certificatePem, 'Assertion')).code).not.toBe(0);
    expect((await xmlsecVerify(tampered, key.certificatePem, 'Response')).code).not.toBe(0);
  });

  it('checks each signature separately: a changed Destination breaks only the Response signature', async () => {
    const { xml } = buildSignedResponse(input(), key);
    const tampered = xml.replace(`Destination="${SIGNIN}"`, 'Destination="https://evil.example/saml"');
    expect(tampered).not.toBe(xml);
    expect((await xmlsecVerify(tampered, key.certificatePem, 'Assertion')).code).toBe(0);
    expect((await xmlsecVerify(tampered, key.certificatePem, 'Response')).code).not.toBe(0);
  });

  it('rejects with another certificate (the KeyInfo certificate is not trusted by itself)', async () => {
    const { xml } = buildSignedResponse(input(), key);
    expect((await xmlsecVerify(xml, otherKey.certificatePem, 'Assertion')).code).not.toBe(0);
    expect((await xmlsecVerify(xml, otherKey.certificatePem, 'Response')).code).not.toBe(0);
  });

  it('verifies values that need escaping (&, <, quotes, carriage return)', async () => {
    const attributes = [{ name: 'note', values: ['a & b <c> "d"', 'line\r\nbreak', "it's"] }];
    const { xml } = buildSignedResponse(input({ attributes }), key);
    expect((await xmlsecVerify(xml, key.certificatePem, 'Assertion')).code).toBe(0);
    expect((await xmlsecVerify(xml, key.certificatePem, 'Response')).code).toBe(0);
  });
});

describe('an independent SP library configured as AWS (node-saml)', () => {
  const rp = (cert = key.certificatePem) => ({ idpCert: cert, signInUrl: SIGNIN });

  it('accepts the response and reads NameID and the AWS attributes, Role multi-valued', async () => {
    const built = buildSignedResponse(input(), key);
    const profile = await awsLikeAccept(built.base64, rp());
    expect(profile.nameID).toBe(UPN);
    expect(profile.nameIDFormat).toBe(NAMEID_FORMAT.persistent);
    expect(profile.issuer).toBe(ISSUER);
    expect(profile.sessionIndex).toBe('_0123456789abcdef');
    const attrs = profile.attributes as Record<string, unknown>;
    expect(attrs[AWS_ATTRIBUTE.role]).toEqual([
      `${DEV.roleArn},${DEV.providerArn}`,
      `${ADMIN.roleArn},${ADMIN.providerArn}`,
    ]);
    expect(attrs[AWS_ATTRIBUTE.roleSessionName]).toBe(UPN);
    expect(attrs[AWS_ATTRIBUTE.sourceIdentity]).toBe(UPN);
    expect(attrs[AWS_ATTRIBUTE.sessionDuration]).toBe('3600');
    expect(attrs[`${AWS_ATTRIBUTE.principalTagPrefix}costCenter`]).toBe('CC-1234');
    expect(attrs[AWS_ATTRIBUTE.transitiveTagKeys]).toBe('department');
  });

  it('accepts it until just before NotOnOrAfter (5 minutes by default), not at it', async () => {
    const built = buildSignedResponse(input(), key);
    expect(built.notOnOrAfter.toISOString()).toBe('2026-03-02T10:05:00.000Z');
    vi.setSystemTime(new Date(built.notOnOrAfter.getTime() - 1000));
    await expect(awsLikeAccept(built.base64, rp())).resolves.toMatchObject({ nameID: UPN });
    vi.setSystemTime(built.notOnOrAfter);
    await expect(awsLikeAccept(built.base64, rp())).rejects.toThrow(/expired/);
  });

  it('rejects a tampered attribute value', async () => {
    const { xml } = buildSignedResponse(input(), key);
    const tampered = xml.replace('>CC-1234<', '>CC-9999<');
    expect(tampered).not.toBe(xml);
    await expect(awsLikeAccept(b64(tampered), rp())).rejects.toThrow(/signature/i);
  });

  it('rejects an expired response (issued 10 minutes ago)', async () => {
    const built = buildSignedResponse(input({ now: new Date(clock.now().getTime() - 10 * 60_000) }), key);
    await expect(awsLikeAccept(built.base64, rp())).rejects.toThrow(/expired/);
  });

  it('rejects a response for another audience', async () => {
    const built = buildSignedResponse(input({ audience: 'https://other-sp.example/metadata' }), key);
    await expect(awsLikeAccept(built.base64, rp())).rejects.toThrow(/audience mismatch/);
  });

  it('rejects a response addressed to another recipient or destination', async () => {
    const recipient = buildSignedResponse(input({ recipient: 'https://other-sp.example/acs' }), key);
    await expect(awsLikeAccept(recipient.base64, rp())).rejects.toThrow(RelyingPartyRejected);
    const destination = buildSignedResponse(input({ destination: 'https://other-sp.example/acs' }), key);
    await expect(awsLikeAccept(destination.base64, rp())).rejects.toThrow(/Destination/);
  });

  it('rejects a response signed by another key', async () => {
    const built = buildSignedResponse(input(), otherKey);
    await expect(awsLikeAccept(built.base64, rp())).rejects.toThrow(/signature/i);
  });

  it('accepts any of the published certificates (rotation: current and next)', async () => {
    const built = buildSignedResponse(input(), key);
    const profile = await awsLikeAccept(built.base64, {
      idpCert: [otherKey.certificatePem, key.certificatePem],
      signInUrl: SIGNIN,
    });
    expect(profile.nameID).toBe(UPN);
  });

  it('with signResponse false only the Assertion is signed, which an SP demanding a signed Response refuses', async () => {
    const built = buildSignedResponse(input({ signResponse: false }), key);
    await expect(awsLikeAccept(built.base64, rp())).rejects.toThrow(/Invalid document signature/);
    const profile = await awsLikeAccept(built.base64, { ...rp(), wantAuthnResponseSigned: false });
    expect(profile.nameID).toBe(UPN);
  });

  it('round-trips values that need escaping', async () => {
    const values = ['a & b <c> "d"', "it's", 'line\r\nbreak', 'tab\there'];
    const built = buildSignedResponse(input({ attributes: [{ name: 'note', values }] }), key);
    const profile = await awsLikeAccept(built.base64, rp());
    expect((profile.attributes as Record<string, unknown>).note).toEqual(values);
  });
});

describe('document structure', () => {
  it('puts each Signature right after its Issuer (schema order), then the rest in order', () => {
    const built = buildSignedResponse(input(), key);
    const response = parseXml(built.xml).documentElement!;
    expect(elementChildren(response).map((e) => e.localName)).toEqual([
      'Issuer',
      'Signature',
      'Status',
      'Assertion',
    ]);
    const assertion = onlyChild(response, NS.assertion, 'Assertion');
    expect(elementChildren(assertion).map((e) => `${e.namespaceURI}|${e.localName}`)).toEqual([
      `${NS.assertion}|Issuer`,
      `${NS.dsig}|Signature`,
      `${NS.assertion}|Subject`,
      `${NS.assertion}|Conditions`,
      `${NS.assertion}|AuthnStatement`,
      `${NS.assertion}|AttributeStatement`,
    ]);
  });

  it('signs with RSA-SHA256, SHA-256 digests, exclusive c14n, enveloped, Reference #ID, KeyInfo with the certificate', () => {
    const built = buildSignedResponse(input(), key);
    const response = parseXml(built.xml).documentElement!;
    const assertion = onlyChild(response, NS.assertion, 'Assertion');
    for (const [owner, id] of [
      [response, built.responseId],
      [assertion, built.assertionId],
    ] as const) {
      expect(owner.getAttribute('ID')).toBe(id);
      const signature = onlyChild(owner, NS.dsig, 'Signature');
      const signedInfo = onlyChild(signature, NS.dsig, 'SignedInfo');
      expect(onlyChild(signedInfo, NS.dsig, 'CanonicalizationMethod').getAttribute('Algorithm')).toBe(
        EXC_C14N,
      );
      expect(onlyChild(signedInfo, NS.dsig, 'SignatureMethod').getAttribute('Algorithm')).toBe(RSA_SHA256);
      const reference = onlyChild(signedInfo, NS.dsig, 'Reference');
      expect(reference.getAttribute('URI')).toBe(`#${id}`);
      const transforms = elementChildren(onlyChild(reference, NS.dsig, 'Transforms'));
      expect(transforms.map((t) => t.getAttribute('Algorithm'))).toEqual([
        'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
        EXC_C14N,
      ]);
      expect(onlyChild(reference, NS.dsig, 'DigestMethod').getAttribute('Algorithm')).toBe(SHA256);
      const keyInfo = onlyChild(signature, NS.dsig, 'KeyInfo');
      const cert = onlyChild(onlyChild(keyInfo, NS.dsig, 'X509Data'), NS.dsig, 'X509Certificate');
      expect(cert.textContent?.replace(/\s/g, '')).toBe(key.certificateBase64);
    }
  });

  it('writes the SAML header, one bearer confirmation, conditions and the authn statement', () => {
    const sessionNotOnOrAfter = new Date('2026-03-02T18:00:00.000Z');
    const built = buildSignedResponse(input({ assertionLifetimeSeconds: 180, sessionNotOnOrAfter }), key);
    expect(built.responseId).toMatch(/^_[0-9a-f]{32}$/);
    expect(built.assertionId).toMatch(/^_[0-9a-f]{32}$/);
    expect(built.assertionId).not.toBe(built.responseId);
    expect(Buffer.from(built.base64, 'base64').toString('utf8')).toBe(built.xml);
    const response = parseXml(built.xml).documentElement!;
    expect(response.namespaceURI).toBe(NS.protocol);
    expect(response.getAttribute('Version')).toBe('2.0');
    expect(response.getAttribute('IssueInstant')).toBe('2026-03-02T10:00:00Z');
    expect(response.getAttribute('Destination')).toBe(SIGNIN);
    expect(response.hasAttribute('InResponseTo')).toBe(false);
    const status = onlyChild(onlyChild(response, NS.protocol, 'Status'), NS.protocol, 'StatusCode');
    expect(status.getAttribute('Value')).toBe('urn:oasis:names:tc:SAML:2.0:status:Success');

    const assertion = onlyChild(response, NS.assertion, 'Assertion');
    expect(onlyChild(assertion, NS.assertion, 'Issuer').textContent).toBe(ISSUER);
    const subject = onlyChild(assertion, NS.assertion, 'Subject');
    expect(onlyChild(subject, NS.assertion, 'NameID').textContent).toBe(UPN);
    const confirmation = onlyChild(subject, NS.assertion, 'SubjectConfirmation');
    expect(confirmation.getAttribute('Method')).toBe('urn:oasis:names:tc:SAML:2.0:cm:bearer');
    const data = onlyChild(confirmation, NS.assertion, 'SubjectConfirmationData');
    expect(data.getAttribute('Recipient')).toBe(SIGNIN);
    expect(data.getAttribute('NotOnOrAfter')).toBe('2026-03-02T10:03:00Z');
    expect(data.hasAttribute('InResponseTo')).toBe(false);

    const conditions = onlyChild(assertion, NS.assertion, 'Conditions');
    expect(conditions.getAttribute('NotBefore')).toBe('2026-03-02T09:59:00Z');
    expect(conditions.getAttribute('NotOnOrAfter')).toBe('2026-03-02T10:03:00Z');
    expect(built.notOnOrAfter.toISOString()).toBe('2026-03-02T10:03:00.000Z');
    const audience = onlyChild(
      onlyChild(conditions, NS.assertion, 'AudienceRestriction'),
      NS.assertion,
      'Audience',
    );
    expect(audience.textContent).toBe(AWS_SAML_AUDIENCE);

    const authn = onlyChild(assertion, NS.assertion, 'AuthnStatement');
    expect(authn.getAttribute('AuthnInstant')).toBe('2026-03-02T09:59:30Z');
    expect(authn.getAttribute('SessionIndex')).toBe('_0123456789abcdef');
    expect(authn.getAttribute('SessionNotOnOrAfter')).toBe('2026-03-02T18:00:00Z');
    const classRef = onlyChild(
      onlyChild(authn, NS.assertion, 'AuthnContext'),
      NS.assertion,
      'AuthnContextClassRef',
    );
    expect(classRef.textContent).toBe(AUTHN_CONTEXT.passwordProtectedTransport);
  });

  it('writes whole-second instants even when now has milliseconds', () => {
    const built = buildSignedResponse(input({ now: new Date('2026-03-02T10:00:00.999Z') }), key);
    const response = parseXml(built.xml).documentElement!;
    expect(response.getAttribute('IssueInstant')).toBe('2026-03-02T10:00:00Z');
    expect(built.notOnOrAfter.toISOString()).toBe('2026-03-02T10:05:00.000Z');
  });

  it('carries InResponseTo on the Response and the confirmation when answering an AuthnRequest', () => {
    const built = buildSignedResponse(input({ inResponseTo: '_request-42' }), key);
    const response = parseXml(built.xml).documentElement!;
    expect(response.getAttribute('InResponseTo')).toBe('_request-42');
    const data = onlyChild(
      onlyChild(
        onlyChild(onlyChild(response, NS.assertion, 'Assertion'), NS.assertion, 'Subject'),
        NS.assertion,
        'SubjectConfirmation',
      ),
      NS.assertion,
      'SubjectConfirmationData',
    );
    expect(data.getAttribute('InResponseTo')).toBe('_request-42');
  });

  it('omits the AttributeStatement when there are no attributes', async () => {
    const built = buildSignedResponse(input({ attributes: [] }), key);
    const assertion = onlyChild(parseXml(built.xml).documentElement!, NS.assertion, 'Assertion');
    expect(elementChildren(assertion).map((e) => e.localName)).not.toContain('AttributeStatement');
    expect((await xmlsecVerify(built.xml, key.certificatePem, 'Assertion')).code).toBe(0);
  });

  it('refuses what it cannot write correctly', () => {
    expect(() => buildSignedResponse(input({ assertionLifetimeSeconds: 4 * 3600 }), key)).toThrow(
      /assertionLifetimeSeconds/,
    );
    expect(() => buildSignedResponse(input({ assertionLifetimeSeconds: 0 }), key)).toThrow(
      /assertionLifetimeSeconds/,
    );
    expect(() => buildSignedResponse(input({ recipient: '' }), key)).toThrow(/recipient is required/);
    expect(() =>
      buildSignedResponse(
        input({ nameId: { value: 'bad\u0000name', format: NAMEID_FORMAT.persistent } }),
        key,
      ),
    ).toThrow(InvalidXml);
    expect(() => buildSignedResponse(input({ attributes: [{ name: 'empty', values: [] }] }), key)).toThrow(
      /no values/,
    );
    expect(() => buildSignedResponse(input({ now: new Date(Number.NaN) }), key)).toThrow(
      /now must be a valid Date/,
    );
  });
});
