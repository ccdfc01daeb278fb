import type { Kysely } from 'kysely';
import type { CallerAuthenticator } from '../../identity/caller.js';
import { principalOf } from '../../identity/principal-of.js';
import type { Database } from '../../store/schema.js';
import { CLI_CLIENT_ID, type OidcClients } from './clients.js';
import type { OidcIssuer } from './provider.js';

/**
 * Recognises `Authorization: Bearer <access token>` issued by Ferry's OpenID provider:
 * - a person's token from `ferry login` (client ferry-cli): the person, with how they signed in;
 * - a workload's client-credentials token: the workload, by its client.
 * Tokens a relying party received for a user are refused here: Ferry's API is not their audience,
 * so an application a user signed in to can't obtain AWS credentials in their name.
 */
export function accessTokenCaller(
  db: Kysely<Database>,
  issuer: OidcIssuer,
  clients: OidcClients,
  /** identity protection: where each sign-in's tokens are used (token reuse from a new source) */
  tokenUsed?: (
    grantId: string,
    user: { id: string; userName: string },
    ip: string,
  ) => Promise<'none' | 'low' | 'medium' | 'high'>,
): CallerAuthenticator {
  return async (req) => {
    const m = /^Bearer\s+([\w.~+/-]{20,512}=*)$/i.exec(req.headers.authorization ?? '');
    if (!m || m[1]!.startsWith('ferry_at_')) return null;
    const value = m[1]!;
    const provider = await issuer.provider();
    const token = await provider.AccessToken.find(value);
    if (token) {
      if (token.clientId !== CLI_CLIENT_ID || !token.accountId || token.isExpired) return null;
      // Its grant must still exist: a refresh racing a session revocation could have stored a token
      // after the grant was deleted (identity/sessions.ts); such a token dies with the grant.
      if (!token.grantId || !(await provider.Grant.find(token.grantId))) return null;
      const extra = (token.extra ?? {}) as { amr?: string[]; auth_time?: number };
      const principal = await principalOf(db, token.accountId, {
        amr: Array.isArray(extra.amr) ? extra.amr : [],
        authTime: typeof extra.auth_time === 'number' ? new Date(extra.auth_time * 1000).toISOString() : null,
      }).catch(() => null);
      if (!principal?.active) return null;
      if (tokenUsed && token.grantId)
        principal.signInRisk = await tokenUsed(token.grantId, principal, req.ip);
      return { principal, via: 'access-token', sessionId: null, clientId: token.clientId };
    }
    const workloadToken = await provider.ClientCredentials.find(value);
    if (!workloadToken || workloadToken.isExpired || !workloadToken.clientId) return null;
    const client = await clients.get(workloadToken.clientId).catch(() => null);
    if (!client || client.kind !== 'workload' || !client.active) return null;
    return {
      principal: {
        kind: 'workload',
        id: client.clientId,
        userName: client.name,
        active: true,
        groups: [],
        attributes: {},
        emails: [],
        displayName: client.name,
        givenName: null,
        familyName: null,
        externalId: null,
        amr: [],
        authTime: null,
        signInRisk: 'none',
      },
      via: 'access-token',
      sessionId: null,
      clientId: client.clientId,
    };
  };
}
