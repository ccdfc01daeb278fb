import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ACR } from '../../src/federation/oidc/provider.js';
import { Browser, type PageResponse } from '../support/browserless.js';
import { ENGINES } from '../support/db.js';
import { type EntraAccount, type EntraIdp, type NextSignin, startEntraIdp } from '../support/entra-idp.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { scimClient } from '../support/scim.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };

function entraConfig(idp: EntraIdp, extra: Record<string, unknown> = {}) {
  return {
    upstream: {
      entra: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        loginEndpoint: idp.url,
        graphUrl: idp.graphUrl,
        ...extra,
      },
    },
  };
}

const unescapeAmp = (s: string) => s.replaceAll('&amp;', '&');

/**
 * A person's browser: Ferry's sign-in page → "Sign in with Microsoft" → Entra (the local IdP signs in
 * whoever the test chose) → Ferry's callback. Returns the callback's answer and the URL it came back on.
 */
async function signInWithMicrosoft(
  browser: Browser,
  idp: EntraIdp,
  returnTo = '/account',
): Promise<{ res: PageResponse; callback: string; start: PageResponse }> {
  const page = await browser.get(`/signin?return_to=${encodeURIComponent(returnTo)}`);
  expect(page.status).toBe(200);
  const href = /<a class="button" id="signin-entra" href="([^"]+)">Sign in with Microsoft<\/a>/.exec(
    page.text,
  )?.[1];
  expect(href).toBeDefined();
  const start = await browser.get(unescapeAmp(href!));
  expect(start.status, start.text.slice(0, 300)).toBe(303);
  const authorize = new URL(start.location!);
  expect(authorize.origin).toBe(idp.url); // login.microsoftonline.com, sent to the local IdP
  expect(authorize.pathname).toMatch(/\/oauth2\/v2\.0\/authorize$/);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('nonce')).toBeTruthy();
  const answer = await fetch(authorize, { redirect: 'manual' });
  expect(answer.status).toBe(302);
  const callback = answer.headers.get('location')!;
  expect(callback.startsWith(`${browser.baseUrl}/signin/entra/callback?`)).toBe(true);
  return { res: await browser.get(callback), callback, start };
}

async function lastSignin(ferry: TestFerry) {
  const row = await ferry.services.store.db
    .selectFrom('audit_events')
    .selectAll()
    .where('type', '=', 'signin')
    .orderBy('seq', 'desc')
    .executeTakeFirstOrThrow();
  return { ...row, data: JSON.parse(row.data) as Record<string, unknown> };
}

function account(extra: Partial<EntraAccount> = {}): EntraAccount {
  const oid = randomUUID();
  return { oid, preferredUsername: `p-${oid.slice(0, 8)}@contoso.example`, name: 'Pat Example', ...extra };
}

describe.each(ENGINES)('sign-in with Entra ID on %s', (engine) => {
  describe('provisioned users, one tenant', () => {
    let idp: EntraIdp;
    let ferry: TestFerry;

    beforeAll(async () => {
      idp = await startEntraIdp();
      ferry = await startTestFerry(engine, { config: entraConfig(idp) });
    }, 60_000);
    afterAll(async () => {
      await ferry?.close();
      await idp?.close();
    });

    /** A person provisioned by Entra's SCIM, externalId mapped to objectId. */
    /** Provisions over SCIM; the connection that did so is the one that may later change the user. */
    async function provision(
      extra: Partial<EntraAccount> = {},
      connection?: Awaited<ReturnType<typeof scimClient>>,
    ): Promise<EntraAccount> {
      const a = account(extra);
      const scim = connection ?? (await scimClient(ferry, `entra-${a.oid.slice(0, 6)}`));
      const res = await scim.post('/Users', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: a.preferredUsername,
        externalId: a.oid,
        active: true,
        displayName: a.name,
      });
      expect(res.status).toBe(201);
      return a;
    }

    async function refused(next: NextSignin, status: number, message: RegExp, reason: string) {
      idp.signInAs(next);
      const browser = new Browser(ferry.url);
      const { res } = await signInWithMicrosoft(browser, idp);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.text).toMatch(message);
      expect(browser.cookie('ferry_session')).toBeUndefined();
      const audit = await lastSignin(ferry);
      expect(audit.outcome).toBe('failure');
      expect(audit.data).toMatchObject({ step: 'upstream', provider: 'entra', reason });
      return audit;
    }

    it('signs a SCIM-provisioned person in: session cookie, back to return_to, amr from Entra, audited', async () => {
      const a = await provision({ amr: ['pwd'] });
      idp.signInAs({ account: a });
      const browser = new Browser(ferry.url);
      const { res, start } = await signInWithMicrosoft(browser, idp, '/account?tab=sessions');
      expect(res.status).toBe(303);
      expect(res.location).toBe('/account?tab=sessions');
      const state = start.setCookies.find((c) => c.name === 'ferry_entra_state')!;
      expect(state.value).toBe(new URL(start.location!).searchParams.get('state'));
      expect(state.attributes.get('path')).toBe('/signin/entra/callback');
      expect(state.attributes.get('httponly')).toBe(true);
      expect(state.attributes.get('samesite')).toBe('Lax');
      const session = res.setCookies.find((c) => c.name === 'ferry_session')!;
      expect(session.attributes.get('httponly')).toBe(true);
      expect(session.attributes.get('path')).toBe('/');
      expect(browser.cookie('ferry_entra_state')).toBeUndefined(); // spent
      expect(browser.cookie('ferry_session')).toBeDefined();
      const account = await browser.get('/account');
      expect(account.status).toBe(200);
      expect(account.text).toContain(`<code id="user-name">${a.preferredUsername}</code>`);
      expect(account.text).toContain('Signed in with pwd at');
      const audit = await lastSignin(ferry);
      expect(audit.outcome).toBe('success');
      expect(audit.subject).toBe(a.preferredUsername);
      expect(audit.data).toMatchObject({
        step: 'upstream',
        amr: ['pwd'],
        tenantId: idp.tenantId,
        objectId: a.oid,
      });
      expect(JSON.stringify(audit.data)).not.toContain(idp.clientSecret);
      // The second sign-in finds the person through the link made by the first.
      const again = await signInWithMicrosoft(new Browser(ferry.url), idp);
      expect(again.res.status).toBe(303);
      const links = await ferry.services.store.db
        .selectFrom('upstream_identities')
        .selectAll()
        .where('object_id', '=', a.oid)
        .execute();
      expect(links).toHaveLength(1);
    });

    it('an MFA done in Entra counts: amr carries mfa and Ferry’s own ID token says acr mfa', async () => {
      const a = await provision({ amr: ['pwd', 'mfa'] });
      idp.signInAs({ account: a });
      const browser = new Browser(ferry.url);
      expect((await signInWithMicrosoft(browser, idp)).res.status).toBe(303);
      // A relying party of Ferry's OpenID provider sees the Entra MFA in Ferry's ID token.
      const redirect = 'http://127.0.0.1:9/callback';
      const created = await ferry.services.oidcClients.create(ctx, {
        name: `rp-${a.oid.slice(0, 6)}`,
        kind: 'relying-party',
        redirectUris: [redirect],
      });
      const config = await oidc.discovery(
        new URL(ferry.url),
        created.client.clientId,
        created.secret!,
        undefined,
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const verifier = oidc.randomPKCECodeVerifier();
      let next = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirect,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: 'st',
      }).href;
      for (let hop = 0; hop < 10 && new URL(next, ferry.url).origin === ferry.url; hop++) {
        const r = await browser.get(next);
        expect(r.location, r.text.slice(0, 300)).toBeTruthy();
        next = new URL(r.location!, ferry.url).href;
      }
      const tokens = await oidc.authorizationCodeGrant(config, new URL(next), {
        pkceCodeVerifier: verifier,
        expectedState: 'st',
      });
      const claims = tokens.claims()!;
      expect(claims.acr).toBe(ACR.mfa);
      expect(claims.amr).toEqual(['pwd', 'mfa']);
    });

    it('refuses a person Entra knows but Ferry was not provisioned with, and says so', async () => {
      await refused({ account: account() }, 403, /not set up in Ferry/, 'unknown-user');
    });

    it('refuses a disabled (offboarded) user', async () => {
      const scim = await scimClient(ferry, 'entra-disable');
      const a = await provision({}, scim);
      const user = await ferry.services.users.get(a.preferredUsername);
      const res = await scim.patch(`/Users/${user.id}`, [{ op: 'Replace', path: 'active', value: 'False' }]);
      expect(res.status).toBe(200);
      const audit = await refused({ account: a }, 403, /Your Ferry account is disabled/, 'disabled');
      expect(audit.data.objectId).toBe(a.oid);
    });

    it('refuses an ID token with a bad signature', async () => {
      const audit = await refused(
        { account: await provision(), tamper: 'bad-signature' },
        401,
        /could not be verified/,
        'token-invalid',
      );
      expect(String(audit.data.detail)).toMatch(/signature/i);
    });

    it('refuses an ID token for another audience', async () => {
      const audit = await refused(
        { account: await provision(), tamper: 'wrong-audience' },
        401,
        /could not be verified/,
        'token-invalid',
      );
      expect(String(audit.data.detail)).toMatch(/aud/);
    });

    it('refuses an expired ID token (beyond the clock tolerance)', async () => {
      const audit = await refused(
        { account: await provision(), tamper: 'expired' },
        401,
        /could not be verified/,
        'token-invalid',
      );
      expect(String(audit.data.detail)).toMatch(/exp|timestamp/i);
    });

    it('refuses an ID token whose nonce is not the one Ferry sent', async () => {
      const audit = await refused(
        { account: await provision(), tamper: 'nonce' },
        401,
        /could not be verified/,
        'token-invalid',
      );
      expect(String(audit.data.detail)).toMatch(/nonce/);
    });

    it('refuses an ID token issued by another tenant than the configured one', async () => {
      const audit = await refused(
        { account: await provision(), tamper: 'issuer-of-other-tenant' },
        401,
        /could not be verified/,
        'token-invalid',
      );
      expect(String(audit.data.detail)).toMatch(/iss/);
    });

    it('shows and audits an AADSTS error from Entra', async () => {
      const audit = await refused(
        {
          account: await provision(),
          error: {
            error: 'access_denied',
            error_description:
              'AADSTS50105: Your administrator has configured the application Ferry to block users unless they are specifically granted access.\r\nTrace ID: 1',
          },
        },
        400,
        /AADSTS50105: Your administrator has configured the application Ferry/,
        'idp-error',
      );
      expect(String(audit.data.detail)).toContain('access_denied: AADSTS50105');
      expect(String(audit.data.detail)).not.toContain('Trace ID');
    });

    it('uses a state once: replaying the callback is refused, and so is a callback in another browser', async () => {
      const a = await provision();
      idp.signInAs({ account: a });
      const browser = new Browser(ferry.url);
      const { res, callback } = await signInWithMicrosoft(browser, idp);
      expect(res.status).toBe(303);
      const replay = await browser.get(callback);
      expect(replay.status).toBe(400);
      expect(replay.text).toMatch(/expired or was already used/);
      expect((await lastSignin(ferry)).data).toMatchObject({ reason: 'state-invalid' });

      // Login CSRF: a callback that started in the attacker's browser, opened in the victim's.
      const attacker = new Browser(ferry.url);
      const page = await attacker.get('/signin');
      const start = await attacker.get(unescapeAmp(/id="signin-entra" href="([^"]+)"/.exec(page.text)![1]!));
      const answer = await fetch(start.location!, { redirect: 'manual' });
      const victim = new Browser(ferry.url);
      const planted = await victim.get(answer.headers.get('location')!);
      expect(planted.status).toBe(400);
      expect(victim.cookie('ferry_session')).toBeUndefined();
      expect((await lastSignin(ferry)).data).toMatchObject({
        reason: 'state-invalid',
        detail: 'state was not issued to this browser',
      });
    });

    it('leaves an audit trail that still verifies', async () => {
      const verify = (await (await ferry.api('/api/v1/audit/verify')).json()) as { ok: boolean };
      expect(verify.ok).toBe(true);
      const types = await ferry.services.store.db
        .selectFrom('audit_events')
        .select('type')
        .distinct()
        .execute();
      expect(types.map((t) => t.type)).toEqual(expect.arrayContaining(['signin', 'upstream.linked']));
    });

    it('answers a callback without any parameters with a page, not a 500', async () => {
      const res = await new Browser(ferry.url).get('/signin/entra/callback');
      expect(res.status).toBe(400);
      expect(res.text).toMatch(/Sign-in expired/);
      // A crafted error link: refused and audited, but Ferry's page does not repeat its text.
      const crafted = await new Browser(ferry.url).get(
        `/signin/entra/callback?error=access_denied&error_description=${encodeURIComponent('Call +1 555 0100 to unlock your account')}`,
      );
      expect(crafted.status).toBe(400);
      expect(crafted.text).toMatch(/Microsoft did not sign you in/);
      expect(crafted.text).not.toContain('555');
      expect((await lastSignin(ferry)).data).toMatchObject({ reason: 'idp-error' });
    });
  });

  describe('when Entra cannot be reached', () => {
    let ferry: TestFerry;
    beforeAll(async () => {
      const tenant = randomUUID();
      ferry = await startTestFerry(engine, {
        config: {
          upstream: {
            entra: {
              issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
              clientId: randomUUID(),
              clientSecret: 'secret',
              loginEndpoint: 'http://127.0.0.1:9', // nothing listens there
            },
          },
        },
      });
    }, 60_000);
    afterAll(async () => {
      await ferry?.close();
    });

    it('says so on a page (503) and audits it; the next attempt tries discovery again', async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await new Browser(ferry.url).get('/signin/entra?return_to=%2Faccount');
        expect(res.status).toBe(503);
        expect(res.text).toMatch(/could not reach Microsoft sign-in/);
        expect((await lastSignin(ferry)).data).toMatchObject({ reason: 'idp-unavailable' });
      }
      const attempts = await ferry.services.store.db
        .selectFrom('audit_events')
        .select('seq')
        .where('type', '=', 'signin')
        .where('outcome', '=', 'failure')
        .execute();
      expect(attempts).toHaveLength(2);
    });
  });

  describe('just-in-time users, organizations (multi-tenant) issuer, group claims', () => {
    let idp: EntraIdp;
    let ferry: TestFerry;

    beforeAll(async () => {
      idp = await startEntraIdp();
      ferry = await startTestFerry(engine, {
        config: entraConfig(idp, {
          issuer: 'https://login.microsoftonline.com/organizations/v2.0',
          allowedTenants: [idp.tenantId],
          userMapping: 'jit',
        }),
      });
    }, 60_000);
    afterAll(async () => {
      await ferry?.close();
      await idp?.close();
    });

    async function entraGroups(n: number, prefix: string) {
      const groups = [];
      for (let i = 0; i < n; i++) {
        const oid = randomUUID();
        groups.push(
          await ferry.services.groups.create(ctx, { displayName: `${prefix}-${i}`, externalId: oid }),
        );
      }
      return groups;
    }

    it('creates the user on first sign-in from the claims and maps the groups claim to Ferry groups by externalId', async () => {
      const [admins, devs, other] = await entraGroups(3, 'jit');
      const local = await ferry.services.groups.create(ctx, { displayName: 'ferry-local-group' });
      const a = account({
        email: 'pat@contoso.example',
        groups: [admins!.externalId!, devs!.externalId!, randomUUID()],
        amr: ['rsa', 'mfa'],
      });
      idp.signInAs({ account: a });
      const browser = new Browser(ferry.url);
      expect((await signInWithMicrosoft(browser, idp)).res.status).toBe(303);
      const user = await ferry.services.users.get(a.preferredUsername);
      expect(user).toMatchObject({ displayName: 'Pat Example', externalId: a.oid, hasPassword: false });
      expect(user.emails).toEqual([{ value: 'pat@contoso.example', type: 'work', primary: true }]);
      expect((await ferry.services.groups.namesOf(user.id)).sort()).toEqual(
        [admins!.displayName, devs!.displayName].sort(),
      );
      const audit = await lastSignin(ferry);
      expect(audit.data).toMatchObject({ userCreated: true, groupsFrom: 'token', amr: ['rsa', 'mfa'] });

      // Next sign-in: Entra says devs and other; admins goes, other comes, Ferry's own group is untouched.
      await ferry.services.groups.setMembership(ctx, local.id, user.id, true);
      idp.signInAs({ account: { ...a, groups: [devs!.externalId!, other!.externalId!] } });
      expect((await signInWithMicrosoft(new Browser(ferry.url), idp)).res.status).toBe(303);
      expect((await ferry.services.groups.namesOf(user.id)).sort()).toEqual(
        [devs!.displayName, other!.displayName, 'ferry-local-group'].sort(),
      );
      expect((await lastSignin(ferry)).data).toMatchObject({
        userCreated: false,
        groupsAdded: [other!.displayName],
        groupsRemoved: [admins!.displayName],
      });
    });

    it('group overage: no groups in the token, so Ferry asks Microsoft Graph with the access token', async () => {
      const groups = await entraGroups(4, 'overage');
      const a = account({ overage: true, groups: groups.map((g) => g.externalId!) });
      idp.signInAs({ account: a });
      const before = idp.calls.graph.length;
      expect((await signInWithMicrosoft(new Browser(ferry.url), idp)).res.status).toBe(303);
      expect(idp.calls.graph.slice(before)).toEqual(['POST /v1.0/me/getMemberObjects']);
      const user = await ferry.services.users.get(a.preferredUsername);
      expect((await ferry.services.groups.namesOf(user.id)).sort()).toEqual(
        groups.map((g) => g.displayName).sort(),
      );
      expect((await lastSignin(ferry)).data).toMatchObject({ groupsFrom: 'graph' });
    });

    it('group overage with Graph unavailable: refused (502) rather than signed in with unknown memberships', async () => {
      const [g] = await entraGroups(1, 'graph-down');
      const a = account({ overage: true, groups: [g!.externalId!] });
      idp.signInAs({ account: a, graphDown: true });
      const browser = new Browser(ferry.url);
      const { res } = await signInWithMicrosoft(browser, idp);
      expect(res.status).toBe(502);
      expect(res.text).toMatch(/could not read your group memberships/);
      expect(browser.cookie('ferry_session')).toBeUndefined();
      expect((await lastSignin(ferry)).data).toMatchObject({
        reason: 'groups-unavailable',
        detail: 'Microsoft Graph getMemberObjects answered 503 serviceNotAvailable',
      });
      await expect(ferry.services.users.get(a.preferredUsername)).rejects.toThrow(/not found/i);
    });

    it('a first sign-in of one person in two browsers at once makes one user and one link', async () => {
      const a = account();
      idp.signInAs({ account: a });
      const results = await Promise.all([
        signInWithMicrosoft(new Browser(ferry.url), idp),
        signInWithMicrosoft(new Browser(ferry.url), idp),
      ]);
      expect(results.map((r) => r.res.status)).toEqual([303, 303]);
      const links = await ferry.services.store.db
        .selectFrom('upstream_identities')
        .selectAll()
        .where('object_id', '=', a.oid)
        .execute();
      expect(links).toHaveLength(1);
      expect((await ferry.services.users.get(a.preferredUsername)).externalId).toBe(a.oid);
    });

    it('refuses a tenant that is not allowed (the {tenantid} issuer form verifies, the tenant check refuses)', async () => {
      const a = account({ tid: randomUUID() });
      idp.signInAs({ account: a });
      const browser = new Browser(ferry.url);
      const { res } = await signInWithMicrosoft(browser, idp);
      expect(res.status).toBe(403);
      expect(res.text).toMatch(/organisation \(tenant\) is not allowed/);
      expect((await lastSignin(ferry)).data).toMatchObject({ reason: 'tenant-not-allowed', tenantId: a.tid });
      await expect(ferry.services.users.get(a.preferredUsername)).rejects.toThrow();
    });

    it('does not hand an existing local account to an Entra account of the same name', async () => {
      const a = account();
      await ferry.services.users.create(ctx, {
        userName: a.preferredUsername,
        password: 'local-password-123',
      });
      idp.signInAs({ account: a });
      const { res } = await signInWithMicrosoft(new Browser(ferry.url), idp);
      expect(res.status).toBe(403);
      expect(res.text).toMatch(/not linked to your Microsoft account/);
      expect((await lastSignin(ferry)).data).toMatchObject({ reason: 'user-conflict' });
    });
  });
});
