import { X509Certificate } from 'node:crypto';
import { IdPMetadata } from 'samlify';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { awsLikeAccept } from '../../../test/support/aws-saml-relying-party.js';
import { testSigningKey } from '../../../test/support/saml-keys.js';
import { ManualClock } from '../../clock.js';
import type { SigningKey } from '../../keys/signing-keys.js';
import { AWS_SAML_AUDIENCE, AWS_SIGNIN_ENDPOINTS } from './aws-attributes.js';
import { BINDING, buildIdpMetadata, type IdpMetadataInput, InvalidIdpMetadata } from './idp-metadata.js';
import { AUTHN_CONTEXT, buildSignedResponse, NAMEID_FORMAT } from './response.js';
import { childElements, elementChildren, NS, onlyChild, parseXml } from './xml.js';

const ENTITY_ID = 'https://ferry.example.com/saml/metadata';
let current: SigningKey;
let next: SigningKey;

beforeAll(async () => {
  [current, next] = await Promise.all([testSigningKey(), testSigningKey({ state: 'next' })]);
});
afterEach(() => {
  vi.useRealTimers();
});

function input(overrides: Partial<IdpMetadataInput> = {}): IdpMetadataInput {
  return {
    entityId: ENTITY_ID,
    ssoRedirectUrl: 'https://ferry.example.com/saml/sso',
    ssoPostUrl: 'https://ferry.example.com/saml/sso/post',
    keys: [current],
    ...overrides,
  };
}

const certsIn = (xml: string) => {
  const idp = onlyChild(parseXml(xml).documentElement!, NS.metadata, 'IDPSSODescriptor');
  return childElements(idp, NS.metadata, 'KeyDescriptor').map((kd) => {
    expect(kd.getAttribute('use')).toBe('signing');
    const data = onlyChild(onlyChild(kd, NS.dsig, 'KeyInfo'), NS.dsig, 'X509Data');
    return onlyChild(data, NS.dsig, 'X509Certificate').textContent!.trim();
  });
};

describe('IdP metadata', () => {
  it('is UTF-8 without a BOM and starts with the XML declaration', () => {
    const xml = buildIdpMetadata(input());
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    const bytes = Buffer.from(xml, 'utf8');
    expect([...bytes.subarray(0, 5)]).toEqual([...Buffer.from('<?xml')]);
    expect(xml.charCodeAt(0)).not.toBe(0xfeff);
  });

  it('describes an IdP: entity id, SAML 2.0, unsigned requests accepted, NameID formats, both SSO bindings', () => {
    const doc = parseXml(buildIdpMetadata(input({ sloUrl: 'https://ferry.example.com/saml/slo' })));
    const root = doc.documentElement!;
    expect(root.namespaceURI).toBe(NS.metadata);
    expect(root.localName).toBe('EntityDescriptor');
    expect(root.getAttribute('entityID')).toBe(ENTITY_ID);
    const idp = onlyChild(root, NS.metadata, 'IDPSSODescriptor');
    expect(idp.getAttribute('WantAuthnRequestsSigned')).toBe('false');
    expect(idp.getAttribute('protocolSupportEnumeration')).toBe(NS.protocol);
    // Schema order: KeyDescriptor*, SingleLogoutService*, NameIDFormat*, SingleSignOnService+
    expect(elementChildren(idp).map((e) => e.localName)).toEqual([
      'KeyDescriptor',
      'SingleLogoutService',
      'SingleLogoutService',
      'NameIDFormat',
      'NameIDFormat',
      'NameIDFormat',
      'SingleSignOnService',
      'SingleSignOnService',
    ]);
    expect(childElements(idp, NS.metadata, 'NameIDFormat').map((e) => e.textContent)).toEqual([
      NAMEID_FORMAT.persistent,
      NAMEID_FORMAT.emailAddress,
      NAMEID_FORMAT.unspecified,
    ]);
    expect(
      childElements(idp, NS.metadata, 'SingleSignOnService').map((e) => [
        e.getAttribute('Binding'),
        e.getAttribute('Location'),
      ]),
    ).toEqual([
      [BINDING.redirect, 'https://ferry.example.com/saml/sso'],
      [BINDING.post, 'https://ferry.example.com/saml/sso/post'],
    ]);
    expect(
      childElements(idp, NS.metadata, 'SingleLogoutService').map((e) => e.getAttribute('Binding')),
    ).toEqual([BINDING.redirect, BINDING.post]);
  });

  it('leaves out SingleLogoutService without an SLO URL', () => {
    const idp = onlyChild(
      parseXml(buildIdpMetadata(input())).documentElement!,
      NS.metadata,
      'IDPSSODescriptor',
    );
    expect(childElements(idp, NS.metadata, 'SingleLogoutService')).toHaveLength(0);
  });

  it("publishes the key's own certificate, and both current and next during a rotation", () => {
    expect(certsIn(buildIdpMetadata(input()))).toEqual([current.certificateBase64]);
    const during = certsIn(buildIdpMetadata(input({ keys: [current, next] })));
    expect(during).toEqual([current.certificateBase64, next.certificateBase64]);
    expect(new X509Certificate(Buffer.from(during[0]!, 'base64')).fingerprint256).toBe(
      new X509Certificate(current.certificatePem).fingerprint256,
    );
    // The same key twice is published once.
    expect(certsIn(buildIdpMetadata(input({ keys: [current, current] })))).toHaveLength(1);
  });

  it('loads as IdP metadata in another SAML library (samlify)', () => {
    const meta = IdPMetadata(buildIdpMetadata(input({ keys: [current, next] })));
    expect(meta.getEntityID()).toBe(ENTITY_ID);
    expect(meta.isWantAuthnRequestsSigned()).toBe(false);
    expect(meta.getX509Certificate('signing')).toEqual([current.certificateBase64, next.certificateBase64]);
    expect(meta.getSingleSignOnService('redirect')).toBe('https://ferry.example.com/saml/sso');
    expect(meta.getSingleSignOnService('post')).toBe('https://ferry.example.com/saml/sso/post');
  });

  it('publishes a certificate with which a relying party verifies what the current key signs', async () => {
    const clock = new ManualClock('2026-03-02T10:00:00.000Z');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(clock.now());
    const [published] = certsIn(buildIdpMetadata(input({ keys: [current, next] })));
    const pem = `-----BEGIN CERTIFICATE-----\n${published!.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    const signin = AWS_SIGNIN_ENDPOINTS.aws;
    const response = buildSignedResponse(
      {
        issuer: ENTITY_ID,
        destination: signin,
        recipient: signin,
        audience: AWS_SAML_AUDIENCE,
        nameId: { value: 'someone@contoso.example', format: NAMEID_FORMAT.persistent },
        sessionIndex: '_s',
        authnInstant: clock.now(),
        authnContextClassRef: AUTHN_CONTEXT.passwordProtectedTransport,
        attributes: [],
        now: clock.now(),
      },
      current,
    );
    const profile = await awsLikeAccept(response.base64, { idpCert: pem });
    expect(profile.nameID).toBe('someone@contoso.example');
  });

  it('escapes the entity id and URLs', () => {
    const weird = 'https://ferry.example.com/saml?tenant=a&x="b"';
    const root = parseXml(buildIdpMetadata(input({ entityId: weird, ssoPostUrl: weird }))).documentElement!;
    expect(root.getAttribute('entityID')).toBe(weird);
  });

  it('refuses keys AWS would refuse, and metadata without a key', async () => {
    const weak = await testSigningKey({ modulusLength: 1024 as 2048 });
    expect(() => buildIdpMetadata(input({ keys: [current, weak] }))).toThrow(
      /1024 bits; AWS requires at least 2048/,
    );
    expect(() => buildIdpMetadata(input({ keys: [] }))).toThrow(InvalidIdpMetadata);
    expect(() =>
      buildIdpMetadata(input({ keys: [{ ...current, certificateBase64: next.certificateBase64 }] })),
    ).toThrow(/not its certificate/);
    expect(() => buildIdpMetadata(input({ entityId: ' ' }))).toThrow(/entityId is required/);
  });
});
