import { SAML } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignedXml } from 'xml-crypto';
import { Browser, inputValue } from '../../../test/support/browserless.js';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import type { AuditContext } from '../../audit/actor.js';
import { SAML_AUTHN_CLASS } from '../../authn/amr.js';
import { totpCode } from '../../identity/totp.js';
import { generateSelfSignedRsa } from '../../keys/self-signed-certificate.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PUBLIC_URL = 'https://ferry.test';
const PASSWORD = 'correct horse battery staple';
const NO_AUTHN_CONTEXT = 'urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext';
const RESPONDER = 'urn:oasis:names:tc:SAML:2.0:status:Responder';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

/**
 * SP-initiated SSO with what SPs ask of the authentication (SAML Core §3.3.2.2.1), signed status
 * responses, replayed requests, group-restricted SPs and IdP-initiated launch, over HTTP with a
 * cookie jar. The same flows in Chromium against pysaml2 are in test/e2e/saml-pysaml2.test.ts.
 */
describe.each(ENGINES)('SAML SSO: authentication context, status, replay, assignment on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const unique = (p: string) => `${p}${++seq}`;
  let spKey: { privateKeyPem: string; certificatePem: string };

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { publicUrl: PUBLIC_URL } });
    spKey = await generateSelfSignedRsa({
      commonName: 'context sp',
      modulusLength: 2048,
      notBefore: new Date(),
      validityDays: 2,
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });
  const idpCert = async () => (await ferry.services.signingKeys.current('saml')).certificatePem;

  /** A user in a group, and an SP assigned to that group (not open to all). */
  async function world(sp: Record<string, unknown> = {}) {
    const s = ferry.services;
    const n = ++seq;
    const group = await s.groups.create(ctx, { displayName: `Team${n}` });
    const user = await s.users.create(ctx, {
      userName: `person${n}@contoso.example`,
      emails: [{ value: `person${n}@contoso.example`, primary: true }],
      password: PASSWORD,
    });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    const entityId = `https://sp${n}.example/saml`;
    const acsUrl = `https://sp${n}.example/acs`;
    const res = await ferry.api('/api/v1/saml/service-providers', {
      method: 'POST',
      body: JSON.stringify({
        name: `App${n}`,
        entityId,
        acsUrls: [acsUrl],
        nameIdFormat: 'emailAddress',
        signingCertificates: [spKey.certificatePem],
        requireSignedRequests: true,
        ...sp,
      }),
    });
    expect(res.status).toBe(201);
    const assigned = await ferry.api(
      `/api/v1/saml/service-providers/${encodeURIComponent(entityId)}/groups`,
      {
        method: 'PUT',
        body: JSON.stringify({ groups: [group.displayName] }),
      },
    );
    expect(assigned.status).toBe(200);
    return { s, user, group, entityId, acsUrl, browser: new Browser(ferry.url) };
  }

  const client = (
    w: { entityId: string; acsUrl: string },
    extra: {
      authnContext?: string[];
      racComparison?: 'exact' | 'minimum' | 'maximum' | 'better';
      passive?: boolean;
      disableRequestedAuthnContext?: boolean;
    } = {},
  ) =>
    new SAML({
      entryPoint: `${PUBLIC_URL}/saml/sso`,
      issuer: w.entityId,
      callbackUrl: w.acsUrl,
      idpCert: 'placeholder',
      privateKey: spKey.privateKeyPem,
      publicCert: spKey.certificatePem,
      signatureAlgorithm: 'sha256',
      ...extra,
    });
  const requestUrl = async (sp: SAML, relay = '') =>
    `/saml/sso${new URL(await sp.getAuthorizeUrlAsync(relay, undefined, {})).search}`;

  async function signIn(browser: Browser, userName: string, returnTo: string) {
    const form = await browser.get(`/signin?return_to=${encodeURIComponent(returnTo)}`);
    const res = await browser.post('/signin', {
      csrf: inputValue(form.text, 'csrf')!,
      return_to: returnTo,
      username: userName,
      password: PASSWORD,
    });
    expect(res.status).toBe(303);
    return res.location!;
  }
  const returnToOf = (location: string) => decodeURIComponent(location.split('return_to=')[1]!);

  /** Enrols TOTP on the step-up page and proves it; returns where the browser goes next. */
  async function stepUpWithTotp(browser: Browser, stepUpAt: string) {
    const page = await browser.get(stepUpAt);
    expect(page.status).toBe(200);
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.text)![1]!;
    const res = await browser.post('/signin/step-up', {
      csrf: inputValue(page.text, 'csrf')!,
      return_to: inputValue(page.text, 'return_to')!,
      code: totpCode(secret, new Date()),
    });
    expect(res.status).toBe(303);
    return res.location!;
  }

  const samlXml = (html: string) => Buffer.from(inputValue(html, 'SAMLResponse')!, 'base64').toString('utf8');
  const classRefOf = (xml: string) => /<saml:AuthnContextClassRef>([^<]+)</.exec(xml)?.[1];
  const signatureVerifies = (xml: string, cert: string) => {
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    const sigs = doc.getElementsByTagNameNS(DSIG, 'Signature');
    if (sigs.length === 0) return false;
    const sig = new SignedXml({ publicCert: cert, getCertFromKeyInfo: () => null });
    sig.loadSignature(sigs[0] as unknown as Parameters<SignedXml['loadSignature']>[0]);
    return sig.checkSignature(xml);
  };

  it('asks for MFA when the SP requests REFEDS MFA (minimum), then asserts the class that happened', async () => {
    const w = await world();
    const sp = client(w, { authnContext: [SAML_AUTHN_CLASS.mfa], racComparison: 'minimum' });
    const first = await w.browser.get(await requestUrl(sp, 'rs-1'));
    expect(first.location).toMatch(/^\/signin\?return_to=/);
    const resumeAt = await signIn(w.browser, w.user.userName, returnToOf(first.location!));
    const resumed = await w.browser.get(resumeAt);
    expect(resumed.status).toBe(303);
    expect(resumed.location).toMatch(/^\/signin\/step-up\?require=mfa&return_to=/);
    const back = await stepUpWithTotp(w.browser, resumed.location!);
    const posted = await w.browser.get(back);
    expect(posted.status).toBe(200);
    expect(posted.text).toContain(`action="${w.acsUrl}"`);
    expect(inputValue(posted.text, 'RelayState')).toBe('rs-1');
    const verifier = new SAML({
      callbackUrl: w.acsUrl,
      issuer: w.entityId,
      audience: w.entityId,
      idpCert: await idpCert(),
      wantAuthnResponseSigned: true,
    });
    const { profile } = await verifier.validatePostResponseAsync({
      SAMLResponse: inputValue(posted.text, 'SAMLResponse')!,
    });
    expect(profile?.nameID).toBe(w.user.userName);
    expect(classRefOf(samlXml(posted.text))).toBe(SAML_AUTHN_CLASS.mfa);
    // The same session, asked for exactly password-over-TLS, is not refused: it did prove that.
    const again = await w.browser.get(
      await requestUrl(client(w, { authnContext: [SAML_AUTHN_CLASS.passwordProtectedTransport] })),
    );
    expect(classRefOf(samlXml(again.text))).toBe(SAML_AUTHN_CLASS.passwordProtectedTransport);
  });

  it('answers a context Ferry cannot assert with a signed Responder/NoAuthnContext, before any sign-in', async () => {
    const w = await world();
    const kerberos = 'urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos';
    const res = await w.browser.get(await requestUrl(client(w, { authnContext: [kerberos] }), 'rs-2'));
    expect(res.status).toBe(200);
    expect(res.text).toContain(`action="${w.acsUrl}"`);
    expect(res.headers.get('content-security-policy')).toContain(`form-action https://sp${seq}.example;`);
    expect(inputValue(res.text, 'RelayState')).toBe('rs-2');
    const xml = samlXml(res.text);
    expect(xml).toContain(
      `<samlp:StatusCode Value="${RESPONDER}"><samlp:StatusCode Value="${NO_AUTHN_CONTEXT}">`,
    );
    expect(xml).not.toContain('<saml:Assertion');
    expect(signatureVerifies(xml, await idpCert())).toBe(true);
    // Tampered, it no longer verifies (the signature covers the status).
    expect(
      signatureVerifies(
        xml.replace(NO_AUTHN_CONTEXT, 'urn:oasis:names:tc:SAML:2.0:status:Success'),
        await idpCert(),
      ),
    ).toBe(false);
    // `better` than the strongest class Ferry has is just as impossible.
    const better = await w.browser.get(
      await requestUrl(
        client(w, { authnContext: [SAML_AUTHN_CLASS.phishingResistant], racComparison: 'better' }),
      ),
    );
    expect(samlXml(better.text)).toContain(NO_AUTHN_CONTEXT);
  });

  it('sends unsigned status responses only to an SP configured so', async () => {
    const w = await world({ signStatusResponses: false });
    const res = await w.browser.get(await requestUrl(client(w, { authnContext: ['urn:example:unknown'] })));
    const xml = samlXml(res.text);
    expect(xml).toContain(NO_AUTHN_CONTEXT);
    expect(xml).not.toContain('<ds:Signature');
  });

  it('answers IsPassive with NoPassive (signed) when a step-up would be needed', async () => {
    const w = await world();
    const first = await w.browser.get(await requestUrl(client(w)));
    await w.browser.get(await signIn(w.browser, w.user.userName, returnToOf(first.location!)));
    const res = await w.browser.get(
      await requestUrl(
        client(w, { authnContext: [SAML_AUTHN_CLASS.mfa], racComparison: 'minimum', passive: true }),
      ),
    );
    expect(res.status).toBe(200);
    const xml = samlXml(res.text);
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:status:NoPassive');
    expect(signatureVerifies(xml, await idpCert())).toBe(true);
  });

  it('applies the per-SP minimum whatever the request asks', async () => {
    const w = await world({ minimumAuthnContext: 'mfa' });
    const first = await w.browser.get(await requestUrl(client(w, { disableRequestedAuthnContext: true })));
    const resumed = await w.browser.get(
      await signIn(w.browser, w.user.userName, returnToOf(first.location!)),
    );
    expect(resumed.location).toMatch(/^\/signin\/step-up\?require=mfa&/);
    const posted = await w.browser.get(await stepUpWithTotp(w.browser, resumed.location!));
    expect(classRefOf(samlXml(posted.text))).toBe(SAML_AUTHN_CLASS.mfa);
    // node-saml asks for exactly PasswordProtectedTransport by default: the MFA session reaches the
    // minimum (which is about the sign-in) and gets the class asked for, not NoAuthnContext.
    const exact = await w.browser.get(
      await requestUrl(client(w, { authnContext: [SAML_AUTHN_CLASS.passwordProtectedTransport] })),
    );
    expect(classRefOf(samlXml(exact.text))).toBe(SAML_AUTHN_CLASS.passwordProtectedTransport);
  });

  it('lets conditional access require MFA for an SP; the assertion then states MFA unasked', async () => {
    const w = await world();
    const policy = await ferry.api(`/api/v1/policies/${encodeURIComponent(`MFA for ${w.entityId}`)}`, {
      method: 'PUT',
      body: JSON.stringify({
        state: 'on',
        include: { groups: [w.group.displayName] },
        targets: [`app:${w.entityId}`],
        grant: { require: ['mfa'] },
      }),
    });
    expect(policy.status).toBe(201);
    const first = await w.browser.get(await requestUrl(client(w, { disableRequestedAuthnContext: true })));
    const resumed = await w.browser.get(
      await signIn(w.browser, w.user.userName, returnToOf(first.location!)),
    );
    expect(resumed.location).toMatch(/^\/signin\/step-up\?require=mfa&/);
    const posted = await w.browser.get(await stepUpWithTotp(w.browser, resumed.location!));
    expect(classRefOf(samlXml(posted.text))).toBe(SAML_AUTHN_CLASS.mfa);
  });

  it('asks for a security key when the SP requests the phishing-resistant class', async () => {
    const w = await world();
    const sp = client(w, { authnContext: [SAML_AUTHN_CLASS.phishingResistant] });
    const first = await w.browser.get(await requestUrl(sp));
    const resumed = await w.browser.get(
      await signIn(w.browser, w.user.userName, returnToOf(first.location!)),
    );
    expect(resumed.location).toMatch(/^\/signin\/step-up\?require=phishing-resistant-mfa&/);
  });

  it('refuses a replayed AuthnRequest, also when the copies arrive at once', async () => {
    const w = await world();
    const url = await requestUrl(client(w));
    const first = await w.browser.get(url);
    expect(first.status).toBe(303);
    const again = await w.browser.get(url);
    expect(again.status).toBe(400);
    expect(again.text).toContain('already received');

    const burstUrl = await requestUrl(client(w));
    const burst = await Promise.all(Array.from({ length: 20 }, () => new Browser(ferry.url).get(burstUrl)));
    expect(burst.filter((r) => r.status === 303)).toHaveLength(1);
    expect(burst.filter((r) => r.status === 400)).toHaveLength(19);
  });

  it('lets only assigned groups in; a new SP with no group reaches nobody unless configured open', async () => {
    const w = await world();
    const outsider = await w.s.users.create(ctx, {
      userName: `${unique('outsider')}@contoso.example`,
      password: PASSWORD,
    });
    const browser = new Browser(ferry.url);
    const first = await browser.get(await requestUrl(client(w)));
    const denied = await browser.get(await signIn(browser, outsider.userName, returnToOf(first.location!)));
    expect(denied.status).toBe(403);
    expect(denied.text).toContain(`Team${seq - 1}`);
    expect(denied.text).not.toContain('SAMLResponse');

    // No group at all: closed, until an admin opens it.
    const put = await ferry.api(`/api/v1/saml/service-providers/${encodeURIComponent(w.entityId)}/groups`, {
      method: 'PUT',
      body: JSON.stringify({ groups: [] }),
    });
    expect(put.status).toBe(200);
    const closed = await w.browser.get(await requestUrl(client(w)));
    const resumed = await w.browser.get(
      await signIn(w.browser, w.user.userName, returnToOf(closed.location!)),
    );
    expect(resumed.status).toBe(403);
    expect(resumed.text).toContain('assigned to no group and is not open');
    const open = await ferry.api(`/api/v1/saml/service-providers/${encodeURIComponent(w.entityId)}`, {
      method: 'PATCH',
      body: JSON.stringify({ openToAll: true }),
    });
    expect(open.status).toBe(200);
    const now = await w.browser.get(await requestUrl(client(w)));
    expect(now.status).toBe(200);
    expect(now.text).toContain(`action="${w.acsUrl}"`);
  });

  it('launches IdP-initiated SSO to a registered SP with RelayState, after sign-in', async () => {
    const w = await world();
    const link = `/saml/launch?sp=${encodeURIComponent(w.entityId)}&RelayState=${encodeURIComponent('https://sp.example/home')}`;
    const first = await w.browser.get(link);
    expect(first.location).toMatch(/^\/signin\?return_to=/);
    const posted = await w.browser.get(await signIn(w.browser, w.user.userName, returnToOf(first.location!)));
    expect(posted.status).toBe(200);
    expect(inputValue(posted.text, 'RelayState')).toBe('https://sp.example/home');
    const xml = samlXml(posted.text);
    expect(xml).not.toContain('InResponseTo');
    expect(signatureVerifies(xml, await idpCert())).toBe(true);
    const unknown = await w.browser.get('/saml/launch?sp=https%3A%2F%2Fnobody.example');
    expect(unknown.status).toBe(404);
  });
});
