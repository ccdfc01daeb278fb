import { proxyClientSecret, proxyTokenCaller } from '../federation/oidc/proxy-client.js';
import { AuditSampler } from '../proxy/audit-sampler.js';
import { IdentityHeaderSigner } from '../proxy/identity-header.js';
import { IdentityAwareProxy, type ProxyLog } from '../proxy/server.js';
import { ProxySignin } from '../proxy/signin.js';
import { timeoutsOf } from './server.js';
import type { Services } from './services.js';

/** Builds the identity-aware proxy on the services of this process (it listens separately). */
export function createProxy(services: Services, log: ProxyLog): IdentityAwareProxy {
  const { config, store, clock, masterKey } = services;
  const issuer = () => services.oidc.issuer;
  return new IdentityAwareProxy({
    apps: services.proxyApps,
    access: services.access,
    authenticateBearer: services.authenticateCaller,
    sessionCaller: (token) => proxyTokenCaller(store.db, services.oidc, token),
    signin: new ProxySignin(masterKey, clock, issuer, proxyClientSecret(masterKey)),
    signer: new IdentityHeaderSigner(
      () => services.signingKeys.current('oidc-es256'),
      issuer,
      clock,
      Math.round(config.proxy.identityHeaderLifetime / 1000),
    ),
    sampler: new AuditSampler(config.proxy.auditSampleRate),
    store,
    clock,
    // every ferry_* cookie is stripped too; a renamed session cookie is named here
    ferryCookies: [config.sessions.cookieName],
    trustProxy: config.http.trustProxy,
    log,
    timeouts: timeoutsOf(config.proxy),
  });
}
