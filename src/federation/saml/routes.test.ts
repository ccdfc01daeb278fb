import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SAML } from '@node-saml/node-saml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsLikeAccept, RelyingPartyRejected } from '../../../test/support/aws-saml-relying-party.js';
import { Browser, inputValue } from '../../../test/support/browserless.js';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { awsIdentityCandidates } from '../../access/aws-identity.js';
import type { AuditContext } from '../../audit/actor.js';
import { generateSelfSignedRsa } from '../../keys/self-signed-certificate.js';

const run = promisify(execFile);
const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const PUBLIC_URL = 'https://ferry.test';
const PASSWORD = 'correct horse battery staple';
const AWS_SIGNIN = 'https://signin.aws.amazon.com/saml';
const ROLE_ATTR = 'https://aws.amazon.com/SAML/Attributes/Role';

describe.each(ENGINES)('SAML identity provider on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const unique = (p: string) => `${p}${++seq}`;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-saml-'));

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { publicUrl: PUBLIC_URL } });
  });
  afterAll(async () => {
    await ferry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A user in a group assigned Developer (and, when asked, a second role) in a fresh account. */
  async function world(options: { secondRole?: boolean; department?: string; userName?: string } = {}) {
    const s = ferry.services;
    const accountId = String(300000000000 + ++seq);
    await s.accounts.upsert(ctx, { id: accountId, alias: unique('Acct') });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Developer', maxSessionDuration: 7200 });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Administrator', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: unique('Devs') });
    const user = await s.users.create(ctx, {
      userName: options.userName ?? `${unique('dev')}@contoso.example`,
      emails: [{ value: `dev${seq}@contoso.example`, primary: true }],
      attributes: options.department ? { department: options.department } : {},
      password: PASSWORD,
    });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      accountId,
      'Developer',
    );
    if (options.secondRole) {
      await s.assignments.add(
        ctx,
        { type: 'user', id: user.id, name: user.userName },
        accountId,
        'Administrator',
      );
    }
    const browser = new Browser(ferry.url);
    return { s, accountId, user, browser };
  }

  async function signIn(browser: Browser, userName: string, returnTo = '/account') {
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

  const idpCert = async () => (await ferry.services.signingKeys.current('saml')).certificatePem;

  it('publishes metadata AWS accepts: entity id, both bindings, the signing certificate', async () => {
    const res = await ferry.api('/saml/metadata', { auth: false });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const xml = await res.text();
    expect(xml.charCodeAt(0)).not.toBe(0xfeff);
    expect(xml).toContain(`entityID="${PUBLIC_URL}/saml/metadata"`);
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect');
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    const certBody = (await idpCert()).replace(/-----[^-]+-----|\s/g, '');
    expect(xml.replace(/\s/g, '')).toContain(certBody);
  });

  it('sends a signed assertion to the AWS console that an AWS-like relying party and xmlsec1 accept', async () => {
    const { accountId, user, browser } = await world({ department: 'Engineering' });
    await signIn(browser, user.userName);
    const page = await browser.get('/apps/aws-console');
    expect(page.status).toBe(200);
    expect(page.text).toContain(`action="${AWS_SIGNIN}"`);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const samlResponse = inputValue(page.text, 'SAMLResponse')!;
    const profile = await awsLikeAccept(samlResponse, {
      idpCert: await idpCert(),
      wantAuthnResponseSigned: false,
    });
    const attrs = profile as unknown as Record<string, string | string[]>;
    expect(attrs[ROLE_ATTR]).toBe(
      `arn:aws:iam::${accountId}:role/Developer,arn:aws:iam::${accountId}:saml-provider/Ferry`,
    );
    expect(attrs['https://aws.amazon.com/SAML/Attributes/RoleSessionName']).toBe(user.userName);
    expect(attrs['https://aws.amazon.com/SAML/Attributes/SourceIdentity']).toBe(user.userName);
    expect(attrs['https://aws.amazon.com/SAML/Attributes/SessionDuration']).toBe('7200');
    expect(attrs['https://aws.amazon.com/SAML/Attributes/PrincipalTag:department']).toBe('Engineering');
    // How the person proved a second factor rides along (password only here; IAM policies can require aws:PrincipalTag/MfaMethod).
    expect(attrs['https://aws.amazon.com/SAML/Attributes/PrincipalTag:MfaMethod']).toBe('none');
    expect(attrs['https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys']).toEqual([
      'department',
      'MfaMethod',
    ]);

    // xmlsec1, an independent implementation, verifies the signature with the published certificate.
    const xmlFile = join(dir, `response-${seq}.xml`);
    const certFile = join(dir, `idp-${seq}.pem`);
    writeFileSync(xmlFile, Buffer.from(samlResponse, 'base64'));
    writeFileSync(certFile, await idpCert());
    await run('xmlsec1', [
      '--verify',
      '--id-attr:ID',
      'urn:oasis:names:tc:SAML:2.0:protocol:Response',
      '--id-attr:ID',
      'urn:oasis:names:tc:SAML:2.0:assertion:Assertion',
      '--pubkey-cert-pem',
      certFile,
      xmlFile,
    ]);

    // The ledger knows the assertion id AWS will log, and the audit trail has the issuance.
    const assertionId = /<saml:Assertion[^>]*\sID="([^"]+)"/.exec(
      Buffer.from(samlResponse, 'base64').toString(),
    )![1]!;
    const issued = await ferry.services.store.db
      .selectFrom('issued_credentials')
      .selectAll()
      .where('external_id', '=', assertionId)
      .executeTakeFirstOrThrow();
    expect(issued).toMatchObject({
      kind: 'saml-assertion',
      subject: user.userName,
      target: `aws:${accountId}/Developer`,
    });
    const audit = (await (
      await ferry.api(`/api/v1/audit/events?type=saml.assertion&subject=${user.userName}`)
    ).json()) as {
      items: Array<{ outcome: string; data: { assertionId: string } }>;
    };
    expect(audit.items.map((e) => [e.outcome, e.data.assertionId])).toEqual([['success', assertionId]]);
  });

  it('refuses a tampered or misaddressed assertion at the relying party', async () => {
    const { user, browser } = await world();
    await signIn(browser, user.userName);
    const samlResponse = inputValue((await browser.get('/apps/aws-console')).text, 'SAMLResponse')!;
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    const tampered = Buffer.from(xml.replace(':role/Developer', ':role/Administrator')).toString('base64');
    await expect(
      awsLikeAccept(tampered, { idpCert: await idpCert(), wantAuthnResponseSigned: false }),
    ).rejects.toThrow();
    await expect(
      awsLikeAccept(samlResponse, {
        idpCert: await idpCert(),
        wantAuthnResponseSigned: false,
        signInUrl: 'https://signin.amazonaws-us-gov.com/saml',
      }),
    ).rejects.toBeInstanceOf(RelyingPartyRejected);
  });

  it('refuses a role nobody assigned, with no assertion and an audited reason', async () => {
    const { accountId, user, browser } = await world();
    await signIn(browser, user.userName);
    const page = await browser.get(`/apps/aws-console?account=${accountId}&role=Administrator`);
    expect(page.status).toBe(403);
    expect(page.text).not.toContain('SAMLResponse');
    expect(page.text).toContain('no assignment');
    const audit = (await (
      await ferry.api(`/api/v1/audit/events?type=saml.assertion&subject=${user.userName}`)
    ).json()) as {
      items: Array<{ outcome: string; data: { reasons: string[] } }>;
    };
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]!.outcome).toBe('failure');
    expect(audit.items[0]!.data.reasons[0]).toContain('no assignment');
  });

  it('gives two people whose UPNs normalise alike two AWS identities, and refuses when none is free', async () => {
    const n = ++seq;
    const plain = await world({ userName: `jose${n}@contoso.example` });
    const accented = await world({ userName: `josé${n}@contoso.example` });
    await signIn(plain.browser, plain.user.userName);
    await signIn(accented.browser, accented.user.userName);
    const identityOf = async (w: typeof plain) => {
      const page = await w.browser.get('/apps/aws-console');
      expect(page.status).toBe(200);
      const attrs = (await awsLikeAccept(inputValue(page.text, 'SAMLResponse')!, {
        idpCert: await idpCert(),
        wantAuthnResponseSigned: false,
      })) as unknown as Record<string, string>;
      expect(attrs['https://aws.amazon.com/SAML/Attributes/RoleSessionName']).toBe(
        attrs['https://aws.amazon.com/SAML/Attributes/SourceIdentity'],
      );
      return attrs['https://aws.amazon.com/SAML/Attributes/SourceIdentity'];
    };
    expect(await identityOf(plain)).toBe(`jose${n}@contoso.example`);
    const other = await identityOf(accented);
    // On main both were jose<n>@contoso.example: a deny for one ended the other's sessions.
    expect(other).toMatch(new RegExp(`^jose${n}@contoso\\.example-[0-9a-f]{8}$`));
    expect(await identityOf(accented)).toBe(other);
    const ledger = await ferry.services.store.db
      .selectFrom('issued_credentials')
      .select('details')
      .where('user_id', '=', accented.user.id)
      .execute();
    expect(ledger.map((r) => JSON.parse(r.details).sourceIdentity)).toEqual([other, other]);

    // Someone already holds both values a third person could carry: the console refuses, audited.
    const taken = await world({ userName: `taken${n}@contoso.example` });
    await ferry.services.store.db
      .insertInto('aws_identities')
      .values(
        awsIdentityCandidates(`user:${taken.user.id}`, taken.user.userName).map((identity) => ({
          identity_key: identity.toLowerCase(),
          identity,
          owner_key: 'user:someone-else',
          user_name: 'someone-else',
          created_at: new Date().toISOString(),
        })),
      )
      .execute();
    await signIn(taken.browser, taken.user.userName);
    const refused = await taken.browser.get('/apps/aws-console');
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('SAMLResponse');
    expect(refused.text).toContain('already belong to someone else');
  });

  it('lists several roles to choose from, and sends them all as one multi-valued Role when asked', async () => {
    const { accountId, user, browser } = await world({ secondRole: true });
    await signIn(browser, user.userName);
    const picker = await browser.get('/apps/aws-console');
    expect(picker.status).toBe(200);
    expect(picker.text).not.toContain('SAMLResponse');
    expect(picker.text).toContain(`account=${accountId}&amp;role=Administrator`);
    const chosen = await browser.get(`/apps/aws-console?account=${accountId}&role=Administrator`);
    const one = await awsLikeAccept(inputValue(chosen.text, 'SAMLResponse')!, {
      idpCert: await idpCert(),
      wantAuthnResponseSigned: false,
    });
    expect(
      (one as unknown as Record<string, string>)['https://aws.amazon.com/SAML/Attributes/SessionDuration'],
    ).toBe('43200');
    const all = await browser.get('/apps/aws-console?all=1');
    const profile = await awsLikeAccept(inputValue(all.text, 'SAMLResponse')!, {
      idpCert: await idpCert(),
      wantAuthnResponseSigned: false,
    });
    const roles = (profile as unknown as Record<string, string[]>)[ROLE_ATTR];
    expect(roles).toHaveLength(2);
    // One assertion for both roles may not outlive the shorter one's MaxSessionDuration.
    expect(
      (profile as unknown as Record<string, string>)[
        'https://aws.amazon.com/SAML/Attributes/SessionDuration'
      ],
    ).toBe('7200');
  });

  it('sends a person without a session to sign in first, and a disabled user gets nothing', async () => {
    const { s, user, browser } = await world();
    const res = await browser.get('/apps/aws-console');
    expect(res.status).toBe(303);
    expect(res.location).toBe(`/signin?return_to=${encodeURIComponent('/apps/aws-console')}`);
    expect(await signIn(browser, user.userName, '/apps/aws-console')).toBe('/apps/aws-console');
    await s.users.update(ctx, user.id, { active: false });
    const after = await browser.get('/apps/aws-console');
    expect(after.status).toBe(303);
    expect(after.text).not.toContain('SAMLResponse');
  });

  describe('SP-initiated', () => {
    let spKey: { privateKeyPem: string; certificatePem: string };
    const spEntity = () => `https://sp${seq}.example/saml`;
    const acs = () => `https://sp${seq}.example/acs`;

    beforeAll(async () => {
      spKey = await generateSelfSignedRsa({
        commonName: 'test sp',
        modulusLength: 2048,
        notBefore: new Date(),
        validityDays: 2,
      });
    });

    async function registerSp(entityId: string, acsUrl: string) {
      const res = await ferry.api('/api/v1/saml/service-providers', {
        method: 'POST',
        body: JSON.stringify({
          name: unique('App'),
          entityId,
          acsUrls: [acsUrl],
          nameIdFormat: 'emailAddress',
          attributeMap: { email: 'email', groups: 'groups' },
          signingCertificates: [spKey.certificatePem],
          requireSignedRequests: true,
          openToAll: true,
        }),
      });
      expect(res.status).toBe(201);
    }

    const spClient = (
      entityId: string,
      acsUrl: string,
      extra: { forceAuthn?: boolean; passive?: boolean } = {},
    ) =>
      new SAML({
        ...extra,
        entryPoint: `${PUBLIC_URL}/saml/sso`,
        issuer: entityId,
        callbackUrl: acsUrl,
        idpCert: 'placeholder',
        privateKey: spKey.privateKeyPem,
        publicCert: spKey.certificatePem,
        signatureAlgorithm: 'sha256',
        digestAlgorithm: 'sha256',
        audience: entityId,
        wantAuthnResponseSigned: true,
        wantAssertionsSigned: true,
      });

    it('answers an AuthnRequest after sign-in with a response the SP library accepts, RelayState kept', async () => {
      const { user, browser } = await world();
      const entityId = spEntity();
      const acsUrl = acs();
      await registerSp(entityId, acsUrl);
      const sp = spClient(entityId, acsUrl);
      const redirect = new URL(await sp.getAuthorizeUrlAsync('state-123', undefined, {}));
      const first = await browser.get(`/saml/sso${redirect.search}`);
      expect(first.status).toBe(303);
      const resumeAt = await signIn(
        browser,
        user.userName,
        decodeURIComponent(first.location!.split('return_to=')[1]!),
      );
      expect(resumeAt).toMatch(/^\/saml\/sso\/resume\?state=/);
      const posted = await browser.get(resumeAt);
      expect(posted.status).toBe(200);
      expect(posted.text).toContain(`action="${acsUrl}"`);
      expect(inputValue(posted.text, 'RelayState')).toBe('state-123');
      const verifier = new SAML({
        callbackUrl: acsUrl,
        issuer: entityId,
        audience: entityId,
        idpCert: await idpCert(),
        wantAuthnResponseSigned: true,
        wantAssertionsSigned: true,
      });
      const { profile } = await verifier.validatePostResponseAsync({
        SAMLResponse: inputValue(posted.text, 'SAMLResponse')!,
      });
      expect(profile?.nameID).toBe(user.emails[0]!.value);
      expect(profile?.inResponseTo).toMatch(/^_/);
    });

    it('shows an unknown SP and an unregistered ACS URL on the error page, with what is registered', async () => {
      const browser = new Browser(ferry.url);
      const entityId = spEntity();
      const acsUrl = acs();
      await registerSp(entityId, acsUrl);
      const stranger = new URL(
        await spClient('https://stranger.example/saml', acsUrl).getAuthorizeUrlAsync('', undefined, {}),
      );
      const unknown = await browser.get(`/saml/sso${stranger.search}`);
      expect(unknown.status).toBe(400);
      expect(unknown.text).toContain('https://stranger.example/saml');
      expect(unknown.text).toContain(entityId);
      const wrongAcs = new URL(
        await spClient(entityId, 'https://evil.example/acs').getAuthorizeUrlAsync('', undefined, {}),
      );
      const unregistered = await browser.get(`/saml/sso${wrongAcs.search}`);
      expect(unregistered.status).toBe(400);
      expect(unregistered.text).toContain('https://evil.example/acs');
      expect(unregistered.text).toContain(acsUrl);
    });

    it('asks for a fresh sign-in when the SP sends ForceAuthn, even with a live session', async () => {
      const { user, browser } = await world();
      const entityId = spEntity();
      const acsUrl = acs();
      await registerSp(entityId, acsUrl);
      await signIn(browser, user.userName);
      await new Promise((r) => setTimeout(r, 1100)); // the live session predates the request
      const redirect = new URL(
        await spClient(entityId, acsUrl, { forceAuthn: true }).getAuthorizeUrlAsync('', undefined, {}),
      );
      const first = await browser.get(`/saml/sso${redirect.search}`);
      expect(first.status).toBe(303);
      expect(first.location).toMatch(/^\/signin\?prompt=login&return_to=/);
      const form = await browser.get(first.location!);
      expect(form.status).toBe(200); // the password form, not a redirect past it
      const returnTo = inputValue(form.text, 'return_to')!;
      expect(returnTo).toMatch(/^\/saml\/sso\/resume\?state=/);
      const signedIn = await browser.post('/signin', {
        csrf: inputValue(form.text, 'csrf')!,
        return_to: returnTo,
        username: user.userName,
        password: PASSWORD,
      });
      expect(signedIn.status).toBe(303);
      const resumeAt = signedIn.location!;
      const posted = await browser.get(resumeAt);
      expect(posted.text).toContain(`action="${acsUrl}"`);
      expect(inputValue(posted.text, 'SAMLResponse')).toBeTruthy();
    });

    it('answers IsPassive with a NoPassive status when nobody is signed in, showing no sign-in page', async () => {
      const browser = new Browser(ferry.url);
      const entityId = spEntity();
      const acsUrl = acs();
      await registerSp(entityId, acsUrl);
      const redirect = new URL(
        await spClient(entityId, acsUrl, { passive: true }).getAuthorizeUrlAsync('rs', undefined, {}),
      );
      const res = await browser.get(`/saml/sso${redirect.search}`);
      expect(res.status).toBe(200);
      expect(res.text).toContain(`action="${acsUrl}"`);
      expect(inputValue(res.text, 'RelayState')).toBe('rs');
      const xml = Buffer.from(inputValue(res.text, 'SAMLResponse')!, 'base64').toString('utf8');
      expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:status:NoPassive');
      expect(xml).not.toContain('<saml:Assertion');
    });

    it('refuses a forged resume state', async () => {
      const { user, browser } = await world();
      await signIn(browser, user.userName);
      const res = await browser.get('/saml/sso/resume?state=v1.AAAA.BBBB.CCCC');
      expect(res.status).toBe(400);
      expect(res.text).not.toContain('SAMLResponse');
    });
  });
});
