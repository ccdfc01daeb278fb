import type { Command } from 'commander';
import { openBrowser } from './browser.js';
import { ApiError, FerryClient, ServerUnreachable } from './client.js';
import { rememberServer } from './config-dir.js';
import { serverOf } from './context.js';
import {
  CLI_CLIENT_ID,
  forgetLogin,
  LOGIN_SCOPE,
  loadLogin,
  NotSignedIn,
  personToken,
  type StoredLogin,
  saveLogin,
} from './login-session.js';
import { note, out, printJson, t } from './output.js';
import { Prompter } from './prompt.js';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description(
      'sign in to a Ferry server (device code in a browser, or --user with password and one-time code)',
    )
    .option('--user <upn>', 'sign in as a local user here, with password and one-time code (no browser)')
    .option('--no-browser', 'only print the sign-in URL; do not try to open a browser')
    .option('--json', 'print who signed in as JSON')
    .action(async function (this: Command, opts: { user?: string; browser: boolean; json?: boolean }) {
      const server = serverOf(this);
      const oidc = await import('openid-client');
      const insecure = server.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : undefined;
      let config: Awaited<ReturnType<typeof oidc.discovery>>;
      try {
        config = await oidc.discovery(new URL(server), CLI_CLIENT_ID, undefined, oidc.None(), insecure);
      } catch (err) {
        throw new ServerUnreachable(server, err);
      }
      const device = await oidc.initiateDeviceAuthorization(config, { scope: LOGIN_SCOPE });
      let tokens: Awaited<ReturnType<typeof oidc.pollDeviceAuthorizationGrant>>;
      if (opts.user) {
        await approveWithPassword(server, device.user_code, opts.user);
        tokens = await oidc.genericGrantRequest(config, DEVICE_CODE_GRANT, {
          device_code: device.device_code,
        });
      } else {
        const url = device.verification_uri_complete ?? device.verification_uri;
        note(
          t`To sign in, open ${url}\nand check that it shows the code ${device.user_code}.\n(Or go to ${device.verification_uri} and enter the code.) Waiting…\n`,
        );
        if (opts.browser) openBrowser(url);
        tokens = await oidc.pollDeviceAuthorizationGrant(config, device);
      }
      const claims: Record<string, unknown> = tokens.claims() ?? {};
      const meta = config.serverMetadata();
      const login: StoredLogin = {
        server,
        issuer: meta.issuer,
        tokenEndpoint: meta.token_endpoint!,
        revocationEndpoint: meta.revocation_endpoint ?? null,
        accessToken: tokens.access_token,
        accessTokenExpiresAt: Date.now() + (tokens.expires_in ?? 300) * 1000,
        refreshToken: tokens.refresh_token ?? null,
        idToken: tokens.id_token ?? null,
        userName: String(claims.preferred_username ?? claims.sub ?? ''),
        subject: String(claims.sub ?? ''),
        groups: Array.isArray(claims.groups) ? (claims.groups as string[]) : [],
        amr: Array.isArray(claims.amr) ? (claims.amr as string[]) : [],
        signedInAt: new Date().toISOString(),
      };
      // A new sign-in may be someone else: nothing cached for the previous one is kept.
      forgetLogin(server);
      saveLogin(login);
      rememberServer(server);
      if (opts.json) return printJson(whoamiView(login));
      out(t`Signed in to ${server} as ${login.userName}\n`);
    });

  program
    .command('logout')
    .description('sign out: revoke this sign-in at the server and forget its tokens and cached credentials')
    .action(async function (this: Command) {
      const server = serverOf(this);
      const login = loadLogin(server);
      if (!login) {
        out(t`Not signed in to ${server}\n`);
        return;
      }
      if (login.revocationEndpoint && login.refreshToken) {
        // Revoking the refresh token ends the whole grant server-side; best effort when offline.
        await fetch(login.revocationEndpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            token: login.refreshToken,
            token_type_hint: 'refresh_token',
            client_id: CLI_CLIENT_ID,
          }),
          signal: AbortSignal.timeout(10_000),
        }).catch(() => undefined);
      }
      forgetLogin(server);
      out(t`Signed out of ${server}\n`);
    });

  program
    .command('whoami')
    .description('who you are signed in as, and how')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const server = serverOf(this);
      let login = loadLogin(server);
      if (!login) throw new NotSignedIn(server);
      // An expired access token says nothing of the sign-in: renew it as any command would, to tell.
      let renewal: 'ok' | 'ended' | string = 'ok';
      if (login.accessTokenExpiresAt - Date.now() <= 60_000) {
        try {
          await personToken(server);
          login = loadLogin(server) ?? login;
        } catch (err) {
          renewal = err instanceof NotSignedIn ? 'ended' : (err as Error).message;
        }
      }
      const view = whoamiView(login, renewal === 'ended');
      if (opts.json) {
        printJson(view);
      } else {
        const access =
          view.accessTokenExpired && renewal !== 'ended'
            ? t`expired at ${view.accessTokenExpiresAt}; could not renew it now (${renewal})`
            : view.accessTokenExpired
              ? t`expired at ${view.accessTokenExpiresAt}`
              : t`valid until ${view.accessTokenExpiresAt} (${minutesLeft(login.accessTokenExpiresAt)})`;
        const signIn = view.signedIn
          ? view.refreshable
            ? t`active; the access token is renewed automatically until the server ends the sign-in`
            : t`active until the access token expires (no refresh token)`
          : t`expired — run \`ferry login --server ${server}\``;
        out(t`User:          ${view.userName}
Server:        ${view.server}
Groups:        ${view.groups.join(', ') || '(none)'}
Signed in at:  ${view.signedInAt} (${view.amr.join('+') || 'unknown'})
Access token:  ${access}
Sign-in:       ${signIn}
`);
      }
      if (!view.signedIn) process.exitCode = 1;
    });
}

function minutesLeft(at: number): string {
  const minutes = Math.max(0, Math.round((at - Date.now()) / 60_000));
  return minutes >= 120 ? `${Math.round(minutes / 60)} h left` : `${minutes} min left`;
}

function whoamiView(login: StoredLogin, ended = false) {
  const accessTokenExpired = login.accessTokenExpiresAt <= Date.now();
  return {
    userName: login.userName,
    subject: login.subject,
    server: login.server,
    groups: login.groups,
    amr: login.amr,
    signedInAt: login.signedInAt,
    accessTokenExpiresAt: new Date(login.accessTokenExpiresAt).toISOString(),
    refreshable: Boolean(login.refreshToken),
    accessTokenExpired,
    /** false once the sign-in is over (refresh refused, or no refresh token and the access token gone) */
    signedIn: !ended && !(accessTokenExpired && !login.refreshToken),
  };
}

/** `--user`: password (and a one-time code when the account has one) approve the device code. */
async function approveWithPassword(server: string, userCode: string, userName: string): Promise<void> {
  const prompter = new Prompter();
  const client = new FerryClient({ server });
  const password = await prompter.ask(t`Password for ${userName}: `, { secret: true });
  let otp: string | undefined;
  for (;;) {
    try {
      await client.request('POST', '/api/v1/signin/device', {
        userCode,
        userName,
        password,
        ...(otp ? { otp } : {}),
      });
      return;
    } catch (err) {
      const type = err instanceof ApiError ? (err.problem?.type ?? '') : '';
      if (!otp && type.endsWith('/mfa-required')) {
        otp = (await prompter.ask(t`One-time code: `)).trim();
        continue;
      }
      throw err;
    }
  }
}
