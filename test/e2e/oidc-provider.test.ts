import { generateKeyPairSync } from 'node:crypto';
import * as jose from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { listAudit } from '../../src/audit/ledger.js';
import { Browser, inputValue } from '../support/browserless.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { follow, followToClient as followPeopleToClient, type Person } from '../support/oidc-flows.js';
import { waitFor } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const USER = 'test-awsdeveloper@contoso.example';
const PASSWORD = 'developer-password-42';
const REDIRECT = 'http://127.0.0.1:9/callback';
const PERSON: Person = { userName: USER, password: PASSWORD };
const followToClient = (browser: Browser, start: string) => followPeopleToClient(browser, start, PERSON);

describe.each(ENGINES)('OpenID provider on %s, driven by openid-client', (engine) => {
  let ferry: TestFerry;
  let rp: { clientId: string; secret: string };
  let config: oidc.Configuration;
  const insecure = { execute: [oidc.allowInsecureRequests] };

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const user = await s.users.create(ctx, {
      userName: USER,
      password: PASSWORD,
      displayName: 'Test AWSDeveloper',
      emails: [{ value: 'dev@contoso.example', primary: true }],
    });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    const created = await s.oidcClients.create(ctx, {
      name: 'dashboard',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
      postLogoutRedirectUris: ['http://127.0.0.1:9/bye'],
    });
    rp = { clientId: created.client.clientId, secret: created.secret! };
    config = await oidc.discovery(new URL(ferry.url), rp.clientId, rp.secret, undefined, insecure);
  }, 60_000);

  afterAll(async () => {
    await ferry?.close();
  });

  async function codeFlow(
    browser: Browser,
    params: Record<string, string> = {},
  ): Promise<{
    tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    callback: URL;
    verifier: string;
  }> {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid profile email groups',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...params,
    });
    const callback = await followToClient(browser, url.href);
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    return { tokens, callback, verifier };
  }

  it('publishes discovery at the root with the issuer, S256 only, and the grants Ferry serves', async () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(ferry.url);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.grant_types_supported).toEqual(
      expect.arrayContaining([
        'authorization_code',
        'refresh_token',
        'client_credentials',
        'urn:ietf:params:oauth:grant-type:device_code',
      ]),
    );
    expect(meta.id_token_signing_alg_values_supported).toEqual(['ES256', 'RS256']);
    expect(meta.end_session_endpoint).toBe(`${ferry.url}/oidc/session/end`);
  });

  it('code + PKCE through Ferry’s sign-in: an ES256 ID token with sub, UPN, e-mail, groups, amr and acr that jose verifies against the JWKS', async () => {
    const browser = new Browser(ferry.url);
    const { tokens } = await codeFlow(browser);
    const jwks = jose.createRemoteJWKSet(new URL(`${ferry.url}/oidc/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token!, jwks, {
      issuer: ferry.url,
      audience: rp.clientId,
    });
    expect(protectedHeader.alg).toBe('ES256');
    const user = await ferry.services.users.get(USER);
    expect(payload.sub).toBe(user.id);
    expect(payload.preferred_username).toBe(USER);
    expect(payload.email).toBe('dev@contoso.example');
    expect(payload.groups).toEqual(['AWS-Account1-Developers']);
    expect(payload.amr).toEqual(['pwd']);
    expect(payload.acr).toBe('https://refeds.org/profile/sfa');
    expect(tokens.refresh_token).toBeTruthy();
    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id);
    expect(info.preferred_username).toBe(USER);
  });

  it('a second application signs in silently on the same Ferry session (single sign-on)', async () => {
    const browser = new Browser(ferry.url);
    await codeFlow(browser);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      prompt: 'none',
    });
    const callback = await followToClient(browser, url.href);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });

  it('after signing out of Ferry, prompt=none answers login_required', async () => {
    const browser = new Browser(ferry.url);
    await codeFlow(browser);
    const account = await browser.get('/account');
    await browser.post('/signout', { csrf: inputValue(account.text, 'csrf') ?? '' });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      prompt: 'none',
    });
    const callback = await followToClient(browser, url.href);
    expect(callback.searchParams.get('error')).toBe('login_required');
  });

  it('refresh tokens rotate, and presenting a used one revokes the whole family', async () => {
    const browser = new Browser(ferry.url);
    const { tokens } = await codeFlow(browser);
    const first = tokens.refresh_token!;
    const second = await oidc.refreshTokenGrant(config, first);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first);
    // The old one again: refused, and the grant it belongs to is gone.
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    await expect(oidc.fetchUserInfo(config, second.access_token, oidc.skipSubjectCheck)).rejects.toBeTruthy();
    // The refusal is audited after the answer is sent: wait for it rather than race it.
    const refused = await waitFor('the refused refresh in the audit trail', async () => {
      const audit = (await ferry
        .api('/api/v1/audit/events?type=oidc.token.refused&limit=5')
        .then((r) => r.json())) as { items: Array<{ data: { error: string } }> };
      return audit.items.length > 0 ? audit.items : undefined;
    });
    expect(refused[0]!.data.error).toBe('invalid_grant');
  });

  it("a relying party's access token is not accepted by Ferry's own API (wrong audience)", async () => {
    const { tokens } = await codeFlow(new Browser(ferry.url));
    const res = await fetch(`${ferry.url}/api/v1/aws/entitlements`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('refuses a redirect_uri that is not registered, without redirecting to it', async () => {
    const browser = new Browser(ferry.url);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'https://attacker.example/callback',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const res = await browser.get(url.pathname + url.search);
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(res.text).toContain('redirect_uri');
  });

  it('refuses an authorization request without PKCE, and with the plain method', async () => {
    const browser = new Browser(ferry.url);
    const missing = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid' });
    const a = await followToClient(browser, missing.href);
    expect(a.searchParams.get('error')).toBe('invalid_request');
    expect(a.searchParams.get('error_description')).toMatch(/PKCE/);
    const plain = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
    });
    const b = await followToClient(browser, plain.href);
    expect(b.searchParams.get('error')).toBe('invalid_request');
  });

  it('a code works once: the second redemption is invalid_grant', async () => {
    const browser = new Browser(ferry.url);
    const { callback, verifier } = await codeFlow(browser);
    await expect(
      oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: verifier,
        expectedState: callback.searchParams.get('state')!,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a code redeemed with the wrong PKCE verifier is refused', async () => {
    const browser = new Browser(ferry.url);
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await followToClient(browser, url.href);
    await expect(
      oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('ID tokens are refused by a verifier expecting another audience, alg none, or HS256 keyed with the public key', async () => {
    const browser = new Browser(ferry.url);
    const { tokens } = await codeFlow(browser);
    const jwks = jose.createRemoteJWKSet(new URL(`${ferry.url}/oidc/jwks`));
    await expect(
      jose.jwtVerify(tokens.id_token!, jwks, { issuer: ferry.url, audience: 'another-app' }),
    ).rejects.toThrow(/aud/);
    const [, body] = tokens.id_token!.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${body}.`;
    await expect(jose.jwtVerify(none, jwks, { issuer: ferry.url })).rejects.toThrow();
    // HS256 "signed" with the published public key, the classic confusion attack.
    const published = (await (await fetch(`${ferry.url}/oidc/jwks`)).json()) as {
      keys: Array<{ kid: string }>;
    };
    const forged = await new jose.SignJWT({ sub: 'someone-else' })
      .setProtectedHeader({ alg: 'HS256', kid: published.keys[0]!.kid })
      .setIssuer(ferry.url)
      .setAudience(rp.clientId)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(published.keys[0])));
    await expect(jose.jwtVerify(forged, jwks, { issuer: ferry.url })).rejects.toThrow();
  });

  it('the device flow: the device polls while the person confirms the code in a browser, then gets tokens', async () => {
    const cli = await oidc.discovery(new URL(ferry.url), 'ferry-cli', undefined, oidc.None(), insecure);
    const device = await oidc.initiateDeviceAuthorization(cli, { scope: 'openid profile groups' });
    expect(device.user_code).toMatch(/^[B-Z]{4}-[B-Z]{4}$/);
    const browser = new Browser(ferry.url);
    const polled = oidc.pollDeviceAuthorizationGrant(cli, device);
    // The person opens verification_uri_complete, signs in, and confirms.
    const complete = new URL(device.verification_uri_complete!);
    let page = await browser.get(complete.pathname + complete.search);
    expect(page.status).toBe(200);
    // Code entry, then the confirmation (with the code to compare), then Ferry's sign-in.
    const confirm = await browser.post('/oidc/device', {
      xsrf: inputValue(page.text, 'xsrf') ?? '',
      user_code: device.user_code,
    });
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain(device.user_code);
    const res = await browser.post('/oidc/device', {
      xsrf: inputValue(confirm.text, 'xsrf') ?? '',
      user_code: inputValue(confirm.text, 'user_code') ?? '',
      confirm: 'yes',
    });
    expect(res.location).toBeTruthy();
    page = await followToDevicePage(browser, res.location!);
    expect(page.text).toContain('Device signed in');
    const tokens = await polled;
    const claims = tokens.claims()!;
    expect(claims.preferred_username).toBe(USER);
    expect(claims.groups).toEqual(['AWS-Account1-Developers']);
    expect(tokens.refresh_token).toBeTruthy();
  }, 30_000);

  it('a wrong user code is refused on the page, and nothing is approved', async () => {
    const browser = new Browser(ferry.url);
    const page = await browser.get('/oidc/device');
    const res = await browser.post('/oidc/device', {
      xsrf: inputValue(page.text, 'xsrf') ?? '',
      user_code: 'BBBB-BBBB',
    });
    expect(res.status).toBe(400);
    expect(res.text).toContain('not valid');
  });

  it('records every issued token before answering, and issues none when the record cannot be written', async () => {
    const s = ferry.services;
    const created = await s.oidcClients.create(ctx, { name: 'audited-pipeline', kind: 'workload' });
    const wl = await oidc.discovery(
      new URL(ferry.url),
      created.client.clientId,
      created.secret!,
      undefined,
      insecure,
    );
    const issuedEvents = () =>
      listAudit(s.store.db, { type: 'oidc.token.issued', subject: `workload:${created.client.clientId}` });
    expect((await oidc.clientCredentialsGrant(wl)).access_token).toBeTruthy();
    // Already there when the response arrives: no waiting for a background write.
    expect(await issuedEvents()).toHaveLength(1);
    const db = s.store.db;
    if (engine === 'sqlite')
      await sql`create trigger ferry_test_no_audit before insert on audit_events begin select raise(abort, 'audit refused'); end`.execute(
        db,
      );
    else {
      await sql`create function ferry_test_no_audit() returns trigger language plpgsql as $$ begin raise exception 'audit refused'; end $$`.execute(
        db,
      );
      await sql`create trigger ferry_test_no_audit before insert on audit_events for each row execute function ferry_test_no_audit()`.execute(
        db,
      );
    }
    try {
      const res = await fetch(wl.serverMetadata().token_endpoint!, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(created.client.clientId)}:${encodeURIComponent(created.secret!)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(500);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ error: 'server_error' });
      expect(body.access_token).toBeUndefined();
    } finally {
      await sql`drop trigger ferry_test_no_audit${engine === 'postgres' ? sql` on audit_events` : sql``}`.execute(
        db,
      );
      if (engine === 'postgres') await sql`drop function ferry_test_no_audit()`.execute(db);
    }
    expect(await issuedEvents()).toHaveLength(1);
  });

  it('client credentials for a workload with a secret and with private_key_jwt; a wrong secret is invalid_client', async () => {
    const s = ferry.services;
    const withSecret = await s.oidcClients.create(ctx, { name: 'ci-pipeline', kind: 'workload' });
    const wl = await oidc.discovery(
      new URL(ferry.url),
      withSecret.client.clientId,
      withSecret.secret!,
      undefined,
      insecure,
    );
    const t = await oidc.clientCredentialsGrant(wl);
    expect(t.access_token).toBeTruthy();
    expect(t.token_type.toLowerCase()).toBe('bearer');
    const wrong = await oidc.discovery(
      new URL(ferry.url),
      withSecret.client.clientId,
      'not-the-secret',
      undefined,
      insecure,
    );
    await expect(oidc.clientCredentialsGrant(wrong)).rejects.toMatchObject({ error: 'invalid_client' });

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = {
      ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>),
      kid: 'k1',
      alg: 'ES256',
      use: 'sig',
    };
    const cryptoKey = async (k: typeof privateKey) =>
      (await jose.importJWK(k.export({ format: 'jwk' }) as jose.JWK, 'ES256')) as CryptoKey;
    const withKey = await s.oidcClients.create(ctx, {
      name: 'agent',
      kind: 'workload',
      jwks: { keys: [jwk] },
    });
    expect(withKey.secret).toBeNull();
    const signed = await oidc.discovery(
      new URL(ferry.url),
      withKey.client.clientId,
      undefined,
      oidc.PrivateKeyJwt({ key: await cryptoKey(privateKey), kid: 'k1' }),
      insecure,
    );
    expect((await oidc.clientCredentialsGrant(signed)).access_token).toBeTruthy();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const impostor = await oidc.discovery(
      new URL(ferry.url),
      withKey.client.clientId,
      undefined,
      oidc.PrivateKeyJwt({ key: await cryptoKey(other), kid: 'k1' }),
      insecure,
    );
    await expect(oidc.clientCredentialsGrant(impostor)).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('signing keys rotate: the staged keys are in the JWKS before they sign, then take over', async () => {
    const jwks = async () =>
      (
        (await (await fetch(`${ferry.url}/oidc/jwks`)).json()) as {
          keys: Array<{ kid: string; alg: string }>;
        }
      ).keys;
    const before = await jwks();
    expect(before.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    const staged = (await (await ferry.api('/api/v1/keys/oidc/rotate', { method: 'POST' })).json()) as {
      items: Array<{ id: string; state: string }>;
    };
    expect(staged.items.map((k) => k.state)).toEqual(['next', 'next']);
    const during = await jwks();
    expect(during.map((k) => k.kid)).toEqual(
      expect.arrayContaining([...before.map((k) => k.kid), ...staged.items.map((k) => k.id)]),
    );
    const idTokenKid = async () => {
      const { tokens } = await codeFlow(new Browser(ferry.url));
      return jose.decodeProtectedHeader(tokens.id_token!).kid;
    };
    expect(before.map((k) => k.kid)).toContain(await idTokenKid());
    const activated = await ferry.api('/api/v1/keys/oidc/activate', { method: 'POST' });
    expect(activated.status).toBe(200);
    expect(staged.items.map((k) => k.id)).toContain(await idTokenKid());
    const after = await jwks();
    expect(after.map((k) => k.kid).sort()).toEqual(staged.items.map((k) => k.id).sort());
  });

  it('RP-initiated logout ends the Ferry session too', async () => {
    const browser = new Browser(ferry.url);
    const { tokens } = await codeFlow(browser);
    const logout = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'http://127.0.0.1:9/bye',
    });
    const page = await browser.get(logout.pathname + logout.search);
    expect(page.status).toBe(200);
    const res = await browser.post('/oidc/session/end/confirm', {
      xsrf: inputValue(page.text, 'xsrf') ?? '',
      logout: 'yes',
    });
    expect(res.location).toBe('http://127.0.0.1:9/bye');
    const account = await browser.get('/account');
    expect(account.status).toBe(303);
    expect(account.location).toMatch(/^\/signin/);
  });
});

/** After posting a user code: sign in when asked, and stop at the confirmation page. */
async function followToDevicePage(browser: Browser, start: string) {
  const r = await follow(browser, start, PERSON);
  if ('page' in r) return r.page;
  throw new Error(`left Ferry for ${r.left.href} before the confirmation page`);
}
