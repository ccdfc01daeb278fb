import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { Browser } from '../support/browserless.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { confirmDevice, follow, type Person } from '../support/oidc-flows.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const PERSON: Person = { userName: 'grace@contoso.example', password: 'grace-password-42' };
const REDIRECT = 'http://127.0.0.1:9/callback';
const insecure = { execute: [oidc.allowInsecureRequests] };

/** The OAuth error a rejected openid-client call carries. */
async function oauthError(call: Promise<unknown>): Promise<{ error?: string; description?: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as {
      error?: string;
      error_description?: string;
      cause?: { error?: string; error_description?: string };
    };
    return {
      error: e.error ?? e.cause?.error,
      description: e.error_description ?? e.cause?.error_description,
    };
  }
  throw new Error('the call succeeded');
}

describe.each(ENGINES)('per-client grant types on %s', (engine) => {
  let ferry: TestFerry;
  let home: string;

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    await ferry.services.users.create(ctx, {
      userName: PERSON.userName,
      password: PERSON.password,
      emails: [{ value: PERSON.userName, primary: true }],
    });
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-grants-'));
  }, 60_000);

  afterAll(async () => {
    await ferry?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const discover = (clientId: string, secret?: string) =>
    secret
      ? oidc.discovery(new URL(ferry.url), clientId, secret, undefined, insecure)
      : oidc.discovery(new URL(ferry.url), clientId, undefined, oidc.None(), insecure);

  /** Code flow through Ferry's pages; `pkce: false` leaves PKCE out of the request. */
  async function codeFlow(config: oidc.Configuration, pkce = true) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 'st',
      ...(pkce
        ? { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }
        : {}),
    });
    const done = await follow(new Browser(ferry.url), url.href, PERSON);
    if (!('left' in done)) throw new Error(`the sign-in stayed on Ferry: ${done.page.text.slice(0, 300)}`);
    if (done.left.searchParams.get('error')) return { callback: done.left, tokens: null };
    const tokens = await oidc.authorizationCodeGrant(config, done.left, {
      expectedState: 'st',
      ...(pkce ? { pkceCodeVerifier: verifier } : {}),
    });
    return { callback: done.left, tokens };
  }

  it('a relying party registered with the CLI for the device flow signs a person in on a device', async () => {
    const created = await runFerry(
      [
        '--server',
        ferry.url,
        'oidc',
        'clients',
        'create',
        '--name',
        'kiosk',
        '--grant',
        'device_code',
        '--json',
      ],
      { cwd: home, env: { FERRY_TOKEN: ferry.adminToken, HOME: home } },
    );
    expect(created.stderr).toBe('');
    const { client, clientSecret } = JSON.parse(created.stdout) as {
      client: { clientId: string; grantTypes: string[]; requirePkce: boolean; redirectUris: string[] };
      clientSecret: string;
    };
    expect(client.grantTypes).toEqual(['device_code']);
    expect(client.redirectUris).toEqual([]);
    const config = await discover(client.clientId, clientSecret);
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    const polled = oidc.pollDeviceAuthorizationGrant(config, device);
    const page = await confirmDevice(new Browser(ferry.url), device.verification_uri_complete!, PERSON);
    expect(page.text).toContain('kiosk is signed in');
    const tokens = await polled;
    expect(tokens.claims()?.preferred_username).toBe(PERSON.userName);
    // Device only: no refresh token, and the code flow is not for it.
    expect(tokens.refresh_token).toBeUndefined();
    const refused = await oauthError(oidc.refreshTokenGrant(config, 'not-a-refresh-token'));
    expect(refused).toEqual({
      error: 'unauthorized_client',
      description: `client ${client.clientId} may not use the refresh_token grant (allowed: device_code)`,
    });
  }, 60_000);

  it('a relying party registered without the device flow gets unauthorized_client naming it', async () => {
    const { client, secret } = await ferry.services.oidcClients.create(ctx, {
      name: 'web-only',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
    });
    expect(client.grantTypes).toEqual(['authorization_code', 'refresh_token']);
    const config = await discover(client.clientId, secret!);
    const refused = await oauthError(oidc.initiateDeviceAuthorization(config, { scope: 'openid' }));
    expect(refused).toEqual({
      error: 'unauthorized_client',
      description: `client ${client.clientId} may not use the device_code grant (allowed: authorization_code, refresh_token)`,
    });
    // The workload kind: client credentials only.
    const workload = await ferry.services.oidcClients.create(ctx, { name: 'batch-job', kind: 'workload' });
    const wl = await discover(workload.client.clientId, workload.secret!);
    expect(await oauthError(oidc.initiateDeviceAuthorization(wl, { scope: 'openid' }))).toMatchObject({
      error: 'unauthorized_client',
    });
  }, 30_000);

  it('refresh can be turned off: no refresh token, and a refresh attempt is unauthorized_client', async () => {
    const { client, secret } = await ferry.services.oidcClients.create(ctx, {
      name: 'no-refresh',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
      grantTypes: ['authorization_code'],
    });
    const config = await discover(client.clientId, secret!);
    const { tokens } = await codeFlow(config);
    expect(tokens?.access_token).toBeTruthy();
    expect(tokens?.refresh_token).toBeUndefined();
    expect(await oauthError(oidc.refreshTokenGrant(config, 'anything'))).toMatchObject({
      error: 'unauthorized_client',
      description: expect.stringContaining('may not use the refresh_token grant'),
    });
    // Turned on again through the admin API: the next sign-in gets a refresh token that works.
    const patched = await ferry.api(`/api/v1/oidc/clients/${client.clientId}`, {
      method: 'PATCH',
      body: JSON.stringify({ grantTypes: ['authorization_code', 'refresh_token'] }),
    });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { grantTypes: string[] }).grantTypes).toEqual([
      'authorization_code',
      'refresh_token',
    ]);
    const again = await codeFlow(await discover(client.clientId, secret!));
    expect(again.tokens?.refresh_token).toBeTruthy();
  }, 30_000);

  it('PKCE stays required for a confidential client unless its registration lets it go; never for a public one', async () => {
    const strict = await ferry.services.oidcClients.create(ctx, {
      name: 'strict',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
    });
    const refused = await codeFlow(await discover(strict.client.clientId, strict.secret!), false);
    expect(refused.callback.searchParams.get('error')).toBe('invalid_request');
    expect(refused.callback.searchParams.get('error_description')).toMatch(/PKCE/);

    const legacy = await ferry.services.oidcClients.create(ctx, {
      name: 'legacy',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
      requirePkce: false,
    });
    expect(legacy.client.requirePkce).toBe(false);
    const allowed = await codeFlow(await discover(legacy.client.clientId, legacy.secret!), false);
    expect(allowed.tokens?.id_token).toBeTruthy();

    const publicClient = await ferry.api('/api/v1/oidc/clients', {
      method: 'POST',
      body: JSON.stringify({
        name: 'spa',
        kind: 'relying-party',
        authMethod: 'none',
        redirectUris: [REDIRECT],
        requirePkce: false,
      }),
    });
    expect(publicClient.status).toBe(400);
    expect(((await publicClient.json()) as { detail: string }).detail).toBe(
      'a public client (auth none) always needs PKCE',
    );
  }, 30_000);

  it('refuses grant lists that make no sense, with a 400 naming the problem', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ grantTypes: ['refresh_token'] }, 'refresh_token alone signs nobody in'],
      [{ grantTypes: ['authorization_code', 'authorization_code'] }, 'listed twice'],
      [
        { grantTypes: ['device_code'], redirectUris: [REDIRECT] },
        'redirect URIs are for the authorization_code grant',
      ],
      [
        { grantTypes: ['authorization_code'], redirectUris: [] },
        'authorization_code needs at least one redirect URI',
      ],
    ];
    for (const [body, detail] of cases) {
      const res = await ferry.api('/api/v1/oidc/clients', {
        method: 'POST',
        body: JSON.stringify({ name: 'bad', kind: 'relying-party', ...body }),
      });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toContain(detail);
    }
    const workload = await ferry.api('/api/v1/oidc/clients', {
      method: 'POST',
      body: JSON.stringify({ name: 'bad-wl', kind: 'workload', grantTypes: ['device_code'] }),
    });
    expect(workload.status).toBe(400);
  });

  it('the tenant file sets grants on an existing client, creates a public one, and says how to create a confidential one', async () => {
    await ferry.services.oidcClients.create(ctx, {
      name: 'portal',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
    });
    const apply = (document: unknown) =>
      ferry.api('/api/v1/tenant/apply', {
        method: 'POST',
        body: JSON.stringify({ document, dryRun: false }),
      });
    const document = {
      oidcClients: [
        { name: 'portal', grantTypes: ['authorization_code', 'device_code'], requirePkce: false },
        { name: 'cli-tool', authMethod: 'none', grantTypes: ['device_code', 'refresh_token'] },
      ],
    };
    const first = await apply(document);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { changes: unknown[] }).changes).toEqual([
      {
        action: 'update',
        kind: 'oidc-client',
        name: 'portal',
        detail:
          'grantTypes: ["authorization_code","refresh_token"] → ["authorization_code","device_code"], requirePkce: true → false',
      },
      { action: 'create', kind: 'oidc-client', name: 'cli-tool' },
    ]);
    const portal = await ferry.services.oidcClients.get('portal');
    expect([portal.grantTypes, portal.requirePkce]).toEqual([['authorization_code', 'device_code'], false]);
    expect((await ferry.services.oidcClients.get('cli-tool')).grantTypes).toEqual([
      'device_code',
      'refresh_token',
    ]);
    // Applying again changes nothing.
    expect(((await (await apply(document)).json()) as { changes: unknown[] }).changes).toEqual([]);
    const missing = await apply({ oidcClients: [{ name: 'erp', grantTypes: ['authorization_code'] }] });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { detail: string }).detail).toContain(
      'create it with `ferry oidc clients create`',
    );
  });
});
