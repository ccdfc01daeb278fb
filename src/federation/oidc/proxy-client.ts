import type { Kysely } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';
import type { Caller } from '../../identity/caller.js';
import { principalOf } from '../../identity/principal-of.js';
import { sha256Hex } from '../../identity/secrets.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Database } from '../../store/schema.js';
import type { OidcIssuer } from './provider.js';

/**
 * The identity-aware proxy signs browsers in as this OpenID client (code + PKCE), one redirect URI
 * per proxied app's origin. It is confidential: its secret derives from the master key the proxy
 * shares with the server, so nothing has to be registered or copied.
 */
export const PROXY_CLIENT_ID = 'ferry-proxy';
export const PROXY_CALLBACK_PATH = '/.ferry/callback';

export function proxyClientSecret(masterKey: MasterKey): string {
  return masterKey.derive('proxy/oidc-client-secret').toString('base64url');
}

/** The client's metadata for oidc-provider, built from the apps registered right now. */
export function proxyClientMetadata(origins: string[], secret: string): AdapterPayload {
  return {
    client_id: PROXY_CLIENT_ID,
    client_name: 'Ferry identity-aware proxy',
    application_type: 'web',
    // Stored as its SHA-256 like every client secret (see compareClientSecret).
    client_secret: sha256Hex(secret),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: origins.map((o) => `${o}${PROXY_CALLBACK_PATH}`),
    id_token_signed_response_alg: 'ES256',
  };
}

/**
 * The person behind an access token the proxy's client received, or null when the token is
 * unknown, expired, another client's, or its person is disabled.
 */
export async function proxyTokenCaller(
  db: Kysely<Database>,
  issuer: OidcIssuer,
  value: string,
): Promise<Caller | null> {
  if (!/^[\w.~+/-]{20,512}=*$/.test(value)) return null;
  const provider = await issuer.provider();
  const token = await provider.AccessToken.find(value);
  if (!token || token.clientId !== PROXY_CLIENT_ID || !token.accountId || token.isExpired) return null;
  const extra = (token.extra ?? {}) as { amr?: string[]; auth_time?: number };
  const principal = await principalOf(db, token.accountId, {
    amr: Array.isArray(extra.amr) ? extra.amr : [],
    authTime: typeof extra.auth_time === 'number' ? new Date(extra.auth_time * 1000).toISOString() : null,
  }).catch(() => null);
  if (!principal?.active) return null;
  return { principal, via: 'access-token', sessionId: token.jti, clientId: PROXY_CLIENT_ID };
}
