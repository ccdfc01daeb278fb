import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  configDir,
  normalizeServer,
  readJson,
  removeFile,
  serverSlug,
  writePrivateJson,
} from './config-dir.js';

export const CLI_CLIENT_ID = 'ferry-cli';
export const LOGIN_SCOPE = 'openid profile email groups offline_access';

/** What `ferry login` keeps per server (0600): the tokens, and enough metadata to refresh offline. */
export interface StoredLogin {
  server: string;
  issuer: string;
  tokenEndpoint: string;
  revocationEndpoint: string | null;
  accessToken: string;
  /** epoch milliseconds */
  accessTokenExpiresAt: number;
  refreshToken: string | null;
  idToken: string | null;
  userName: string;
  subject: string;
  groups: string[];
  amr: string[];
  signedInAt: string;
}

/** There is no usable sign-in for the server: the message says what to run. */
export class NotSignedIn extends Error {
  constructor(server: string, why = 'you are not signed in') {
    super(`${why} to ${server}: run \`ferry login --server ${server}\``);
    this.name = 'NotSignedIn';
  }
}

export const loginFile = (server: string) => join(configDir(), 'logins', `${serverSlug(server)}.json`);
export const credentialsDir = (server: string) => join(configDir(), 'credentials', serverSlug(server));

export function loadLogin(server: string): StoredLogin | null {
  const login = readJson<StoredLogin>(loginFile(server));
  return login && login.server === normalizeServer(server) ? login : null;
}

export function saveLogin(login: StoredLogin): void {
  writePrivateJson(loginFile(login.server), login);
}

/** Forgets the sign-in and every credential cached under it. */
export function forgetLogin(server: string): void {
  removeFile(loginFile(server));
  rmSync(credentialsDir(server), { recursive: true, force: true });
}

/** Seconds of validity an access token must have left to be used without a refresh. */
const ACCESS_TOKEN_MARGIN_MS = 60_000;

/**
 * A bearer token for the server's user-facing API:
 * - a workload (FERRY_CLIENT_ID and FERRY_CLIENT_SECRET set) gets one by client credentials;
 * - a person uses their `ferry login` access token, refreshed silently while the sign-in lasts.
 * Refreshes are serialized across processes (the AWS CLI may run several credential_process at
 * once): a second refresh with the same, already rotated refresh token would revoke the sign-in.
 */
export async function callerToken(server: string, now: () => number = Date.now): Promise<string> {
  const clientId = process.env.FERRY_CLIENT_ID;
  const clientSecret = process.env.FERRY_CLIENT_SECRET;
  if (clientId && clientSecret) return workloadToken(server, clientId, clientSecret);
  return personToken(server, now);
}

/** The signed-in person's access token, refreshed when it has less than a minute left. */
export async function personToken(server: string, now: () => number = Date.now): Promise<string> {
  const current = loadLogin(server);
  if (!current) throw new NotSignedIn(server);
  if (current.accessTokenExpiresAt - now() > ACCESS_TOKEN_MARGIN_MS) return current.accessToken;
  return withRefreshLock(server, async () => {
    const login = loadLogin(server);
    if (!login) throw new NotSignedIn(server);
    if (login.accessTokenExpiresAt - now() > ACCESS_TOKEN_MARGIN_MS) return login.accessToken;
    if (!login.refreshToken) throw new NotSignedIn(server, 'your sign-in has expired');
    const oidc = await import('openid-client');
    const config = new oidc.Configuration(
      { issuer: login.issuer, token_endpoint: login.tokenEndpoint },
      CLI_CLIENT_ID,
      // ferry-cli is registered for ES256 ID tokens (openid-client expects RS256 unless told).
      { id_token_signed_response_alg: 'ES256' },
      oidc.None(),
    );
    if (login.tokenEndpoint.startsWith('http:')) oidc.allowInsecureRequests(config);
    let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      tokens = await oidc.refreshTokenGrant(config, login.refreshToken);
    } catch (err) {
      if ((err as { error?: string }).error === 'invalid_grant') {
        forgetLogin(server);
        throw new NotSignedIn(server, 'your sign-in has ended (expired, signed out or revoked)');
      }
      throw err;
    }
    const refreshed: StoredLogin = {
      ...login,
      accessToken: tokens.access_token,
      accessTokenExpiresAt: now() + (tokens.expires_in ?? 300) * 1000,
      refreshToken: tokens.refresh_token ?? login.refreshToken,
      idToken: tokens.id_token ?? login.idToken,
    };
    saveLogin(refreshed);
    return refreshed.accessToken;
  });
}

async function workloadToken(server: string, clientId: string, clientSecret: string): Promise<string> {
  const oidc = await import('openid-client');
  const base = new URL(server);
  const config = await oidc.discovery(
    base,
    clientId,
    clientSecret,
    undefined,
    base.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
  );
  try {
    const tokens = await oidc.clientCredentialsGrant(config);
    return tokens.access_token;
  } catch (err) {
    const e = err as { error?: string; error_description?: string };
    if (e.error) {
      throw new Error(
        `workload ${clientId} could not get a token: ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`,
      );
    }
    throw err;
  }
}

/** A lock directory beside the login file; a holder that died is taken over after 30 s. */
async function withRefreshLock<T>(server: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${loginFile(server)}.lock`;
  const deadline = Date.now() + 35_000;
  for (;;) {
    try {
      mkdirSync(lock, { mode: 0o700 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let stale = false;
      try {
        stale = Date.now() - statSync(lock).mtimeMs > 30_000;
      } catch {
        continue; // released between our attempts
      }
      if (stale) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new Error(`another ferry process holds ${lock}; remove it if none runs`);
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
