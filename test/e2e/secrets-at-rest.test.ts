import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { Browser, inputValue } from '../support/browserless.js';
import { copyDatabase, credentialProbe, everyCell } from '../support/credential-probe.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { followToClient as followPeopleToClient, type Person } from '../support/oidc-flows.js';

// Issue 14, point 2: a copy of the database must not be usable. After a realistic run (browser
// sign-in, code flow with refresh, the CLI's device flow, a workload's client credentials, admin and
// SCIM tokens, recovery codes, flows left half-way), every value of every table is tried where a
// bearer value is accepted; and none of the values the run handed out appears anywhere in the copy.

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const USER = 'test-awsdeveloper@contoso.example';
const PASSWORD = 'developer-password-42';
const REDIRECT = 'http://127.0.0.1:9/callback';
const PERSON: Person = { userName: USER, password: PASSWORD };
const followToClient = (browser: Browser, start: string) => followPeopleToClient(browser, start, PERSON);
const insecure = { execute: [oidc.allowInsecureRequests] };

describe.each(ENGINES)('a copy of the database is useless on %s', (engine) => {
  let ferry: TestFerry;
  let rp: { clientId: string; secret: string };
  /** every value the run handed out that is, or was, accepted as a credential */
  const handedOut = new Map<string, string>();

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const s = ferry.services;
    const user = await s.users.create(ctx, {
      userName: USER,
      password: PASSWORD,
      emails: [{ value: 'dev@contoso.example', primary: true }],
    });
    handedOut.set(ferry.adminToken, 'admin API token');
    handedOut.set((await s.apiTokens.create(ctx, { name: 'terraform' })).token, 'second admin API token');
    const scim = (await s.scimConnections.create(ctx, { name: 'entra' })).token;
    handedOut.set(scim, 'SCIM token');
    expect(
      (await fetch(new URL('/scim/v2/Users', ferry.url), { headers: { authorization: `Bearer ${scim}` } }))
        .status,
    ).toBe(200);
    for (const code of await s.recoveryCodes.generate(ctx, { id: user.id, userName: USER })) {
      handedOut.set(code, 'recovery code');
      handedOut.set(code.replace('-', ''), 'recovery code');
    }

    // A relying party: code + PKCE through the browser sign-in, then a refresh.
    const created = await s.oidcClients.create(ctx, {
      name: 'dashboard',
      kind: 'relying-party',
      redirectUris: [REDIRECT],
    });
    rp = { clientId: created.client.clientId, secret: created.secret! };
    handedOut.set(rp.secret, 'relying party client secret');
    const config = await oidc.discovery(new URL(ferry.url), rp.clientId, rp.secret, undefined, insecure);
    const browser = new Browser(ferry.url);
    const authorize = async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT,
        scope: 'openid profile email',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      const callback = await followToClient(browser, url.href);
      handedOut.set(callback.searchParams.get('code')!, 'authorization code');
      return { callback, verifier, state };
    };
    const first = await authorize();
    const tokens = await oidc.authorizationCodeGrant(config, first.callback, {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
    });
    handedOut.set(tokens.access_token, 'relying party access token');
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    handedOut.set(tokens.refresh_token!, 'relying party refresh token (rotated)');
    handedOut.set(refreshed.access_token, 'relying party access token after refresh');
    handedOut.set(refreshed.refresh_token!, 'relying party refresh token');
    // A second authorization whose code is never redeemed: it stays in the table.
    await authorize();
    for (const [name, value] of browser.jar) handedOut.set(value, `browser cookie ${name}`);
    // An authorization left at the sign-in page: an interaction in the table.
    const pending = new Browser(ferry.url);
    const left = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const started = await pending.get(left.pathname + left.search);
    expect(started.location).toMatch(/\/oidc\/interaction\//);
    handedOut.set(started.location!.split('/').pop()!, 'interaction uid');
    for (const [name, value] of pending.jar) handedOut.set(value, `pending browser cookie ${name}`);

    // The CLI: `ferry login --user` (device authorization approved with the password), and one left pending.
    const cli = await oidc.discovery(new URL(ferry.url), 'ferry-cli', undefined, oidc.None(), insecure);
    const device = await oidc.initiateDeviceAuthorization(cli, { scope: 'openid profile' });
    handedOut.set(device.device_code, 'device code');
    handedOut.set(device.user_code.replace('-', ''), 'user code');
    const approve = await fetch(new URL('/api/v1/signin/device', ferry.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userCode: device.user_code, userName: USER, password: PASSWORD }),
    });
    expect(approve.status).toBe(204);
    const cliTokens = await oidc.pollDeviceAuthorizationGrant(cli, device);
    handedOut.set(cliTokens.access_token, 'CLI access token');
    handedOut.set(cliTokens.refresh_token!, 'CLI refresh token');
    const waiting = await oidc.initiateDeviceAuthorization(cli, { scope: 'openid' });
    handedOut.set(waiting.device_code, 'pending device code');
    handedOut.set(waiting.user_code.replace('-', ''), 'pending user code');

    // A workload: client credentials.
    const workload = await s.oidcClients.create(ctx, { name: 'ci-pipeline', kind: 'workload' });
    handedOut.set(workload.secret!, 'workload client secret');
    const wl = await oidc.discovery(
      new URL(ferry.url),
      workload.client.clientId,
      workload.secret!,
      undefined,
      insecure,
    );
    handedOut.set((await oidc.clientCredentialsGrant(wl)).access_token, 'workload access token');
  }, 120_000);

  afterAll(async () => {
    await ferry?.close();
  });

  it('holds none of the values it handed out, in any table, column or part of a value', async () => {
    const cells = await everyCell(ferry);
    const leaks: string[] = [];
    for (const [secret, what] of handedOut) {
      for (const cell of cells) if (cell.text.includes(secret)) leaks.push(`${what} in ${cell.where}`);
    }
    expect(leaks).toEqual([]);
  });

  it('accepts no stored value at the token, userinfo, introspection, admin, SCIM or person API, nor as a session cookie', async () => {
    const probe = credentialProbe(ferry, rp);
    const values = [...(await copyDatabase(ferry))];
    expect(values.length).toBeGreaterThan(100);
    const accepted: string[] = [];
    const queue = [...values];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let next = queue.pop(); next; next = queue.pop()) {
          const [value, where] = next;
          for (const endpoint of await probe(value)) accepted.push(`${where} accepted by ${endpoint}`);
        }
      }),
    );
    expect(accepted).toEqual([]);

    // The probes do recognise live credentials: every kind handed out is accepted somewhere.
    for (const [value, what] of handedOut) {
      if (!/token|cookie ferry_session|pending device/.test(what) || /rotated/.test(what)) continue;
      expect({ what, accepted: (await probe(value)).length > 0 }).toEqual({ what, accepted: true });
    }
  }, 300_000);
});
