import { readFileSync } from 'node:fs';
import type { EntraOptions } from '../identity/upstream/options.js';
import { tenantOfIssuer } from '../identity/upstream/options.js';
import { type Config, ConfigInvalid } from './config.js';

/** Entra sign-in options from `upstream.entra`, or null when it is not configured. */
export function entraOptionsOf(config: Config, source = 'configuration'): EntraOptions | null {
  const entra = config.upstream.entra;
  if (!entra) return null;
  let secret = entra.clientSecret;
  if (!secret && entra.clientSecretFile) {
    try {
      secret = readFileSync(entra.clientSecretFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigInvalid(
        source,
        'upstream.entra.clientSecretFile',
        `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  if (!secret) {
    throw new ConfigInvalid(
      source,
      'upstream.entra.clientSecret',
      'a client secret is required (clientSecret, clientSecretFile or FERRY_ENTRA_CLIENT_SECRET)',
    );
  }
  const issuer = entra.issuer.replace(/\/$/, '');
  const named = tenantOfIssuer(issuer);
  const allowedTenants = entra.allowedTenants.map((t) => t.toLowerCase());
  if (allowedTenants.length === 0) {
    if (!named) {
      throw new ConfigInvalid(
        source,
        'upstream.entra.allowedTenants',
        'a multi-tenant issuer needs the tenant ids allowed to sign in',
      );
    }
    allowedTenants.push(named);
  }
  return {
    issuer,
    clientId: entra.clientId,
    clientSecret: secret,
    redirectUri: () => entra.redirectUri ?? `${config.publicUrl.replace(/\/$/, '')}/signin/entra/callback`,
    allowedTenants,
    userMapping: entra.userMapping,
    syncGroups: entra.syncGroups ?? entra.userMapping === 'jit',
    graphUrl: entra.graphUrl,
    ...(entra.loginEndpoint ? { loginEndpoint: entra.loginEndpoint } : {}),
    scopes: entra.scopes,
    clockToleranceSeconds: Math.round(entra.clockTolerance / 1000),
    requestLifetimeMs: entra.requestLifetime,
    label: entra.label,
  };
}
