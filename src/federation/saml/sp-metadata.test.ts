import { X509Certificate } from 'node:crypto';
import { SAML } from '@node-saml/node-saml';
import * as samlify from 'samlify';
import { beforeAll, describe, expect, it } from 'vitest';
import { certBody, IDC, identityCenterMetadata } from '../../../test/support/saml-fixtures.js';
import { InvalidInput } from '../../errors.js';
import { type GeneratedSigningKey, generateSelfSignedRsa } from '../../keys/self-signed-certificate.js';
import { acsUrlProblem, certificateToPem, InvalidSpMetadata, parseSpMetadata } from './sp-metadata.js';

const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';

let signing: GeneratedSigningKey;
let encryption: GeneratedSigningKey;

beforeAll(async () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  [signing, encryption] = await Promise.all([
    generateSelfSignedRsa({ commonName: 'sp-signing', modulusLength: 2048, notBefore, validityDays: 365 }),
    generateSelfSignedRsa({ commonName: 'sp-encryption', modulusLength: 2048, notBefore, validityDays: 365 }),
  ]);
});

const sameCert = (a: string, b: string) =>
  new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;

function refusal(xml: string): InvalidSpMetadata {
  try {
    parseSpMetadata(xml);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidSpMetadata);
    return err as InvalidSpMetadata;
  }
  throw new Error('expected the metadata to be refused');
}

/** A minimal SP entity; `sso` replaces the SPSSODescriptor's content. */
function spEntity(
  sso: string,
  attrs = 'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"',
): string {
  return `<EntityDescriptor xmlns="${MD}" entityID="https://app.example/saml"><SPSSODescriptor ${attrs}>${sso}</SPSSODescriptor></EntityDescriptor>`;
}

describe('parseSpMetadata on real-world documents', () => {
  it('reads IAM Identity Center SP metadata', () => {
    const md = parseSpMetadata(identityCenterMetadata(signing.certificatePem));
    expect(md.entityId).toBe(IDC.entityId);
    expect(md.acsUrls).toEqual([
      { url: IDC.acsUrl, binding: 'HTTP-POST', index: 0, isDefault: true },
      { url: IDC.dualStackAcsUrl, binding: 'HTTP-POST', index: 1, isDefault: false },
    ]);
    expect(md.nameIdFormats).toEqual([IDC.emailAddress]);
    expect(md.signingCertificates).toHaveLength(1);
    expect(sameCert(md.signingCertificates[0]!, signing.certificatePem)).toBe(true);
    expect(md.signingCertificates[0]).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n$/,
    );
    expect(md.authnRequestsSigned).toBe(false);
    expect(md.wantAssertionsSigned).toBe(true);
  });

  it('reads the metadata node-saml generates, keeping the encryption certificate out of the signing ones', () => {
    const saml = new SAML({
      entryPoint: 'https://ferry.example/saml/sso',
      issuer: 'https://node-saml-sp.example/metadata',
      callbackUrl: 'https://node-saml-sp.example/login/callback',
      idpCert: signing.certificatePem,
      privateKey: signing.privateKeyPem,
      publicCert: signing.certificatePem,
      decryptionPvk: encryption.privateKeyPem,
    });
    const xml = saml.generateServiceProviderMetadata(encryption.certificatePem, signing.certificatePem);
    expect(xml).toContain('use="encryption"');
    const md = parseSpMetadata(xml);
    expect(md.entityId).toBe('https://node-saml-sp.example/metadata');
    expect(md.acsUrls).toEqual([
      { url: 'https://node-saml-sp.example/login/callback', binding: 'HTTP-POST', index: 1, isDefault: true },
    ]);
    expect(md.signingCertificates).toHaveLength(1);
    expect(sameCert(md.signingCertificates[0]!, signing.certificatePem)).toBe(true);
    expect(md.authnRequestsSigned).toBe(true);
    expect(md.wantAssertionsSigned).toBe(true);
    expect(md.nameIdFormats).toEqual(['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress']);
  });

  it('reads the metadata samlify generates (default namespace, POST and Redirect ACS without isDefault)', () => {
    const sp = samlify.ServiceProvider({
      entityID: 'https://samlify-sp.example/metadata',
      authnRequestsSigned: false,
      wantAssertionsSigned: false,
      signingCert: signing.certificatePem,
      nameIDFormat: [
        'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      ],
      assertionConsumerService: [
        { Binding: POST, Location: 'https://samlify-sp.example/acs' },
        { Binding: REDIRECT, Location: 'https://samlify-sp.example/acs/redirect' },
      ],
    });
    const md = parseSpMetadata(sp.getMetadata());
    expect(md.entityId).toBe('https://samlify-sp.example/metadata');
    expect(md.acsUrls).toEqual([
      { url: 'https://samlify-sp.example/acs', binding: 'HTTP-POST', index: 0, isDefault: true },
      {
        url: 'https://samlify-sp.example/acs/redirect',
        binding: 'HTTP-Redirect',
        index: 1,
        isDefault: false,
      },
    ]);
    expect(md.nameIdFormats).toEqual([
      'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    ]);
    expect(md.authnRequestsSigned).toBe(false);
    expect(md.wantAssertionsSigned).toBe(false);
  });

  it('accepts any namespace prefix, a BOM and CRLF line ends', () => {
    const xml =
      '\uFEFF<?xml version="1.0"?>\r\n' +
      `<x:EntityDescriptor xmlns:x="${MD}" xmlns:sig="http://www.w3.org/2000/09/xmldsig#" entityID="https://prefixed.example">\r\n` +
      '<x:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:1.1:protocol urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="1">\r\n' +
      `<x:KeyDescriptor><sig:KeyInfo><sig:X509Data><sig:X509Certificate>${certBody(signing.certificatePem)}</sig:X509Certificate></sig:X509Data></sig:KeyInfo></x:KeyDescriptor>\r\n` +
      `<x:AssertionConsumerService Binding="${POST}" Location="https://prefixed.example/acs" index="7"/>\r\n` +
      '</x:SPSSODescriptor></x:EntityDescriptor>';
    const md = parseSpMetadata(xml);
    expect(md.entityId).toBe('https://prefixed.example');
    expect(md.acsUrls).toEqual([
      { url: 'https://prefixed.example/acs', binding: 'HTTP-POST', index: 7, isDefault: true },
    ]);
    expect(md.authnRequestsSigned).toBe(true);
    expect(md.signingCertificates).toHaveLength(1); // a KeyDescriptor without use is for signing too
  });

  it('takes the first SP entity of an EntitiesDescriptor, or the one asked for', () => {
    const idp = `<md:EntityDescriptor entityID="https://idp.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>`;
    const sp = (id: string) =>
      `<md:EntityDescriptor entityID="${id}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
      `<md:AssertionConsumerService Binding="${POST}" Location="${id}/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>`;
    const xml = `<md:EntitiesDescriptor xmlns:md="${MD}"><md:EntitiesDescriptor>${idp}${sp('https://one.example')}</md:EntitiesDescriptor>${sp('https://two.example')}</md:EntitiesDescriptor>`;
    expect(parseSpMetadata(xml).entityId).toBe('https://one.example');
    expect(parseSpMetadata(xml, { entityId: 'https://two.example' }).acsUrls[0]?.url).toBe(
      'https://two.example/acs',
    );
    expect(() => parseSpMetadata(xml, { entityId: 'https://idp.example' })).toThrow(
      /no SP entity "https:\/\/idp.example".*https:\/\/one.example, https:\/\/two.example/,
    );
  });
});

describe('parseSpMetadata ACS endpoints', () => {
  const acs = (attrs: string) => `<AssertionConsumerService Binding="${POST}" ${attrs}/>`;

  it('picks the default by SAML Metadata §2.2.3 and marks only that one', () => {
    const explicit = parseSpMetadata(
      spEntity(
        acs('Location="https://a.example/1" index="1"') +
          acs('Location="https://a.example/2" index="2"') +
          acs('Location="https://a.example/3" index="3" isDefault="true"'),
      ),
    );
    expect(explicit.acsUrls.map((a) => a.isDefault)).toEqual([false, false, true]);
    const notFalse = parseSpMetadata(
      spEntity(
        acs('Location="https://a.example/1" index="1" isDefault="false"') +
          acs('Location="https://a.example/2" index="2"'),
      ),
    );
    expect(notFalse.acsUrls.map((a) => a.isDefault)).toEqual([false, true]);
    const allFalse = parseSpMetadata(
      spEntity(
        acs('Location="https://a.example/1" index="1" isDefault="false"') +
          acs('Location="https://a.example/2" index="2" isDefault="false"'),
      ),
    );
    expect(allFalse.acsUrls.map((a) => a.isDefault)).toEqual([true, false]);
  });

  it('numbers endpoints without an index after the used ones', () => {
    const md = parseSpMetadata(
      spEntity(
        acs('Location="https://a.example/1"') +
          acs('Location="https://a.example/2" index="0"') +
          acs('Location="https://a.example/3"'),
      ),
    );
    expect(md.acsUrls.map((a) => a.index)).toEqual([1, 0, 2]);
  });

  it('skips bindings Ferry cannot answer on, and refuses when none is left', () => {
    const paos =
      '<AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:PAOS" Location="https://a.example/ecp" index="0"/>';
    const md = parseSpMetadata(spEntity(paos + acs('Location="https://a.example/acs" index="1"')));
    expect(md.acsUrls).toEqual([
      { url: 'https://a.example/acs', binding: 'HTTP-POST', index: 1, isDefault: true },
    ]);
    expect(refusal(spEntity(paos)).message).toMatch(/none of the AssertionConsumerService bindings.*PAOS/);
    expect(refusal(spEntity('')).message).toMatch(/has no AssertionConsumerService/);
  });

  it('refuses plain http outside localhost, duplicate and malformed indexes', () => {
    expect(refusal(spEntity(acs('Location="http://app.example/acs" index="0"'))).message).toMatch(
      /"http:\/\/app.example\/acs" must use https/,
    );
    expect(
      parseSpMetadata(spEntity(acs('Location="http://localhost:3000/acs" index="0"'))).acsUrls[0]?.url,
    ).toBe('http://localhost:3000/acs');
    expect(
      refusal(
        spEntity(
          acs('Location="https://a.example/1" index="4"') + acs('Location="https://a.example/2" index="4"'),
        ),
      ).message,
    ).toMatch(/two AssertionConsumerService endpoints have index 4/);
    expect(refusal(spEntity(acs('Location="https://a.example/1" index="-1"'))).message).toMatch(
      /index="-1", not an unsignedShort/,
    );
    expect(refusal(spEntity(acs('Location="/relative" index="0"'))).message).toMatch(
      /"\/relative" is not an absolute URL/,
    );
  });
});

describe('parseSpMetadata refusals', () => {
  it('refuses a DOCTYPE with an external entity (XXE) without resolving it', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${spEntity(`<NameIDFormat>&xxe;</NameIDFormat>`)}`;
    const err = refusal(xxe);
    expect(err.message).toMatch(/DOCTYPE/);
    expect(err.message).not.toMatch(/root:/);
  });

  it('refuses an internal entity expansion (billion laughs) and a bare ENTITY declaration', () => {
    const lol = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>${spEntity('&lol2;')}`;
    expect(refusal(lol).message).toMatch(/DOCTYPE/);
    expect(refusal(`${spEntity('')}<!ENTITY x "y">`).message).toMatch(/ENTITY/);
  });

  it('says what a non-metadata document is', () => {
    expect(refusal('').message).toMatch(/empty/);
    expect(refusal('{"entityId":"x"}').message).toMatch(/not well-formed XML/);
    expect(refusal('<html><body>Sign in</body></html>').message).toMatch(
      /root element is <html>; SAML metadata starts with <EntityDescriptor>/,
    );
    expect(
      refusal('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>')
        .message,
    ).toMatch(/root element is <samlp:AuthnRequest> in namespace urn:oasis:names:tc:SAML:2.0:protocol/);
    expect(refusal(`<EntityDescriptor entityID="x"/>`).message).toMatch(
      /root element is <EntityDescriptor>;/,
    );
    const idp = `<EntityDescriptor xmlns="${MD}" entityID="https://idp.example"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`;
    expect(refusal(idp).message).toMatch(
      /describes an identity provider \(IDPSSODescriptor\), not a service provider/,
    );
  });

  it('refuses metadata without entityID, SAML 2.0 support or a readable certificate', () => {
    const acsEl = `<AssertionConsumerService Binding="${POST}" Location="https://a.example/acs" index="0"/>`;
    expect(refusal(spEntity(acsEl).replace('entityID="https://app.example/saml"', '')).message).toMatch(
      /no entityID/,
    );
    expect(
      refusal(spEntity(acsEl, 'protocolSupportEnumeration="urn:oasis:names:tc:SAML:1.1:protocol"')).message,
    ).toMatch(/SAML 1.x-only SP/);
    const badCert =
      '<KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>bm90IGEgY2VydA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>';
    expect(refusal(spEntity(badCert + acsEl)).message).toMatch(
      /signing KeyDescriptor of https:\/\/app.example\/saml holds something that is not an X.509 certificate/,
    );
  });

  it('is an InvalidInput, so the HTTP layer answers 400 naming the field', () => {
    const err = refusal('<nope/>');
    expect(err).toBeInstanceOf(InvalidInput);
    expect(err.field).toBe('metadataXml');
    expect(err.name).toBe('InvalidSpMetadata');
  });
});

describe('helpers', () => {
  it('certificateToPem normalizes PEM and bare base64 to the same PEM', () => {
    const bare = certBody(signing.certificatePem);
    expect(certificateToPem(bare)).toBe(certificateToPem(signing.certificatePem));
    expect(() => certificateToPem('')).toThrow(/no base64 certificate/);
  });

  it('acsUrlProblem accepts https and loopback http only', () => {
    expect(acsUrlProblem('https://app.example/acs')).toBeUndefined();
    expect(acsUrlProblem('http://127.0.0.1:8080/acs')).toBeUndefined();
    expect(acsUrlProblem('http://[::1]/acs')).toBeUndefined();
    expect(acsUrlProblem('http://10.0.0.1/acs')).toMatch(/must use https/);
    expect(acsUrlProblem('https://user:pw@app.example/acs')).toMatch(/user info/);
    expect(acsUrlProblem('https://app.example/acs#x')).toMatch(/fragment/);
    expect(acsUrlProblem('javascript:alert(1)')).toMatch(/must use https/);
  });
});
