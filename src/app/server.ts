import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import { PERMISSIONS, type Permission } from '../access/admin-roles.js';
import { myAccessApi } from '../access/my-access-routes.js';
import { pimPages } from '../access/pim/pages.js';
import { pimApi } from '../access/pim/routes.js';
import { policyApi } from '../access/policies/routes.js';
import { Reach } from '../access/reach.js';
import { reachApi } from '../access/reach-routes.js';
import { reviewsApi } from '../access/reviews/routes.js';
import { accessApi } from '../access/routes.js';
import { sshLoginsApi } from '../access/ssh-login-routes.js';
import { alertsApi } from '../activity/alerts/routes.js';
import { activityApi } from '../activity/routes.js';
import { auditApi } from '../audit/routes.js';
import { permissionSetApi } from '../aws/identity-center/permission-set-routes.js';
import { identityCenterApi } from '../aws/identity-center/routes.js';
import { awsCallerRoutes } from '../aws/routes.js';
import { InvalidInput, NotFound } from '../errors.js';
import { oidcAdminApi } from '../federation/oidc/admin-routes.js';
import { deviceSigninApi } from '../federation/oidc/device-signin.js';
import { oidcRoutes } from '../federation/oidc/routes.js';
import { samlAdminApi } from '../federation/saml/admin-routes.js';
import { samlRoutes } from '../federation/saml/routes.js';
import { auditContextOf } from '../identity/admin-auth.js';
import { browserSessionCaller, requireCaller } from '../identity/caller.js';
import { FormDestinations } from '../identity/pages/csp.js';
import { signinPages } from '../identity/pages/routes.js';
import { principalOf } from '../identity/principal-of.js';
import { riskApi } from '../identity/risk/routes.js';
import { directoryApi } from '../identity/routes.js';
import { scimAdminApi } from '../identity/scim/admin-routes.js';
import { scimRoutes } from '../identity/scim/routes.js';
import { selfServiceApi } from '../identity/self-service-routes.js';
import { ENTRA_SIGNIN_PATH, upstreamSigninRoutes } from '../identity/upstream/routes.js';
import { proxyAppsApi } from '../proxy/routes.js';
import { type ListenerTimeouts, listenerOptions } from '../proxy/server.js';
import { sshApi } from '../ssh/routes.js';
import { isStorageFull } from '../store/errors.js';
import { AdminAccess } from './admin-access.js';
import { AdminRefusals } from './admin-refusals.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { operationsRoutes } from './health.js';
import { LazySchemaCompilers } from './lazy-schemas.js';
import { recordRoutes } from './route-permissions.js';
import type { Services } from './services.js';
import { sessionApi } from './session-routes.js';
import { tenantApi } from './tenant-routes.js';
import { webConsole } from './web-console.js';

/** The configured timeouts of a listener, in the form node:http takes them. */
export const timeoutsOf = (t: {
  headersTimeout: number;
  bodyTimeout: number;
  idleTimeout: number;
}): ListenerTimeouts => ({
  headersTimeoutMs: t.headersTimeout,
  bodyTimeoutMs: t.bodyTimeout,
  idleTimeoutMs: t.idleTimeout,
});

export interface ServerOptions {
  /** a pino logger config, or false for none (tests) */
  logger?: FastifyServerOptions['logger'];
  /** routes only some deployments serve (the demo's stand-in AWS console) */
  extraRoutes?: FastifyPluginAsync;
  /** the demo only: where the AWS console SAML response is posted instead of AWS's sign-in endpoint */
  awsConsoleSigninUrl?: string;
}

/** Log what identifies a request, never what authenticates it (no headers, no query strings). */
export const logOptions = (level: string) => ({
  level,
  redact: {
    paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'],
    remove: true,
  },
  serializers: {
    req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
      method: req.method,
      path: req.url.split('?')[0],
      ip: req.ip,
    }),
  },
});

/** The certificate chain and key for `tls`; read at start and again on SIGHUP. */
export function readTlsFiles(tls: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Compiles every route schema not compiled yet (they compile on first use; ADR 0046). Tests call it. */
    compileAllSchemas(): number;
  }
}

export async function buildServer(services: Services, options: ServerOptions = {}): Promise<FastifyInstance> {
  const { config, metrics } = services;
  const schemas = new LazySchemaCompilers();
  const app = Fastify({
    // Slow clients are cut off: headers, the whole request, and idle keep-alive (docs/configuration.md),
    // over TLS as over plain HTTP.
    ...(config.tls
      ? { https: { ...readTlsFiles(config.tls), ...listenerOptions(timeoutsOf(config.http)) } }
      : { http: listenerOptions(timeoutsOf(config.http)) }),
    logger: options.logger ?? logOptions(config.log.level),
    bodyLimit: config.http.bodyLimit,
    requestTimeout: config.http.bodyTimeout,
    keepAliveTimeout: config.http.idleTimeout,
    trustProxy: config.http.trustProxy,
    // A proxy's x-request-id is kept when it looks like an id; anything else would let a client
    // write arbitrary text into every log line of its request.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // A userName may be 256 characters, more once percent-encoded; the default (100) answered 414.
    routerOptions: { maxParamLength: 2048 },
    // Router errors (a broken %-escape in the path) skip hooks and the error handler unless routed
    // here: they were bare JSON without a request id instead of problem details.
    frameworkErrors: (err, req, reply) => {
      reply.header('x-request-id', req.id);
      return errorHandler(err, req, reply);
    },
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
    // Validators and serializers compile on a route's first request, not all at start (ADR 0046). (The
    // typings of @fastify/ajv-compiler describe an older positional call; Fastify 5 passes one object.)
    schemaController: { compilersFactory: schemas.compilersFactory } as unknown as NonNullable<
      FastifyServerOptions['schemaController']
    >,
  });
  app.decorate('compileAllSchemas', () => schemas.compileAll());

  // Every route, as registered: the admin-route walk checks each declares a permission (0041).
  recordRoutes(app);
  app.decorateRequest('actor', null as never);
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (req, reply) => {
    req.actor = { type: 'anonymous' };
    reply.header('x-request-id', req.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  // SCIM requests Ferry answered with an error count towards the provisioning-errors detection
  // (a GET of an id that does not exist is how Entra ID checks for a user, not an error).
  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/scim/v2/') || reply.statusCode < 400) return;
    if (reply.statusCode === 404 && req.method === 'GET') return;
    if (req.actor?.type !== 'scim-connection') {
      // Without a valid bearer token: one aggregated signal, never a count per request (ADR 0040).
      if (reply.statusCode === 401)
        services.detections.scimAuthFailed({
          ip: req.ip ?? null,
          reason: /^Bearer\s+\S+$/i.test(String(req.headers.authorization ?? '')) ? 'invalid' : 'missing',
        });
      return;
    }
    const connection = req.actor.name;
    await services.detections
      .provisioningFailed({
        direction: 'inbound',
        connection,
        detail: `${req.method} ${req.url.split('?')[0]} answered ${reply.statusCode}`,
        evidence: req.id,
      })
      .catch((err) => {
        // Out of space is logged once by the store, not once per SCIM request it refuses.
        if (!isStorageFull(err)) req.log.warn({ err }, 'provisioning error not counted');
      });
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  await app.register(fastifyCookie);
  // One admin path for every admin route: a scoped API token, or a person whose admin role decide() allows.
  const browserPerson = browserSessionCaller(
    services.store.db,
    services.sessions,
    config.sessions.cookieName,
    services.csrf,
  );
  /** A person or group named in a request (an assignment, eligibility or review), as the routes record it. */
  const personOrGroup = async <T extends 'user' | 'group'>(type: T, ref: string) => {
    if (type === 'group') {
      const g = await services.groups.get(ref);
      return { type, id: g.id, name: g.displayName };
    }
    const u = await services.users.get(ref);
    return { type, id: u.id, name: u.userName };
  };
  const refusals = new AdminRefusals(services.store, services.clock, metrics.registry);
  const admin = new AdminAccess({
    apiTokens: services.apiTokens,
    person: browserPerson,
    access: services.access,
    refusals,
    principalOf: async (userId) =>
      principalOf(services.store.db, userId, null).catch((err: unknown) => {
        if (err instanceof NotFound) return null;
        throw err;
      }),
  });
  await app.register(fastifySwagger, {
    hideUntagged: true,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Ferry admin API',
        version: '1',
        description: 'Directory, sessions, tokens and audit. Errors are RFC 7807 problem details.',
      },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'an admin API token (admin routes), or an access token from `ferry login` or a workload client (your own access: /aws/credentials, /aws/entitlements)',
          },
        },
      },
    },
  });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs', staticCSP: true });

  await app.register(operationsRoutes, {
    store: services.store,
    metrics,
    metricsToken: config.metrics.token ?? null,
    auditExport: () => services.auditExporter.status(),
    auditArchive: async () => (services.auditArchiver ? services.auditArchiver.status() : null),
    detail: async () => {
      const shadowed = await services.alertSinks.shadowed();
      return shadowed.length ? { alertSinks: { ok: false, notAppliedFromConfig: shadowed } } : {};
    },
    // /readyz's full detail: an admin with audit:read; anything else (refused, database away) is not.
    // Asked without side effects: a monitor behind SSO probing /readyz is no audited refusal.
    detailAllowed: async (req) =>
      admin.holds(req, 'audit:read').then(
        (held) => held,
        () => false,
      ),
  });
  // Modules whose return paths end on another origin (OpenID interactions, SAML) register here; the
  // sign-in pages name that origin in their form-action (see identity/pages/csp.ts).
  const formDestinations = new FormDestinations();
  await app.register(signinPages, {
    formDestinations,
    signin: services.signin,
    sessions: services.sessions,
    users: services.users,
    groups: services.groups,
    cookieName: config.sessions.cookieName,
    secureCookies: config.publicUrl.startsWith('https:'),
    upstream: services.entraSignin
      ? [{ id: 'signin-entra', path: ENTRA_SIGNIN_PATH, label: services.entraSignin.options.label }]
      : [],
    recoveryCodes: services.recoveryCodes,
  });
  if (services.entraSignin) {
    await app.register(upstreamSigninRoutes, {
      entra: services.entraSignin,
      cookieName: config.sessions.cookieName,
      secureCookies: config.publicUrl.startsWith('https:'),
    });
  }
  await app.register(directoryApi, {
    prefix: '/api/v1',
    users: services.users,
    groups: services.groups,
    sessions: services.sessions,
    totp: services.totp,
    apiTokens: services.apiTokens,
    authenticate: admin.guard({ read: 'users:read', write: 'users:write' }),
    permissions: PERMISSIONS,
    permissionsOf: (req) => admin.permissionsOfRequest(req),
    tokenBounds: (req, wanted) => admin.tokenBounds(req, wanted as Permission[]),
    onTokenRefused: (req, beyond, detail) =>
      refusals.record(req, { permission: beyond.join(' '), reason: 'token-beyond-maker', detail }),
    authorizeMembership: async (req, reply, groupRef) => {
      const group = await services.groups.get(groupRef);
      if (await services.adminRoles.groupHoldsAdminRole(group.id))
        await admin.authorize(req, reply, 'admin-roles:write');
    },
  });
  await app.register(sessionApi, {
    prefix: '/api/v1',
    person: browserPerson,
    admin,
    csrf: services.csrf,
    cookieName: config.sessions.cookieName,
  });
  await app.register(accessApi, {
    prefix: '/api/v1',
    accounts: services.accounts,
    assignments: services.assignments,
    authenticate: admin.guard({ read: 'access:read', write: 'access:write' }),
    auditContext: auditContextOf,
    adminRoles: services.adminRoles,
    groupsOf: async (userId) =>
      (await principalOf(services.store.db, userId, null, services.clock.now())).groups,
    requirePermission: (req, reply, permission) => admin.authorize(req, reply, permission),
    resolvePrincipal: async (type, ref) => {
      if (type === 'workload') {
        const w = await services.oidcClients.get(ref);
        if (w.kind !== 'workload')
          throw new InvalidInput(`${ref} is a relying party, not a workload`, 'workload');
        return { type, id: w.clientId, name: w.name };
      }
      if (type === 'group') {
        const g = await services.groups.get(ref);
        return { type, id: g.id, name: g.displayName };
      }
      const u = await services.users.get(ref);
      return { type, id: u.id, name: u.userName };
    },
  });
  await app.register(reachApi, {
    prefix: '/api/v1',
    reach: new Reach({
      access: services.access,
      assignments: services.assignments,
      adminRoles: services.adminRoles,
      eligibilities: services.eligibilities,
      activations: services.activations,
      sshLogins: services.sshLogins,
      appAssignments: services.appAssignments,
      principal: (userId) => principalOf(services.store.db, userId, null, services.clock.now()),
      members: async (groupId) => (await services.groups.get(groupId)).members.map((m) => m.id),
      groupName: async (groupId) => (await services.groups.get(groupId)).displayName,
    }),
    authenticate: admin.guard({ read: 'access:read', write: 'access:write' }),
    userId: async (ref) => (await services.users.get(ref)).id,
  });
  await app.register(pimApi, {
    prefix: '/api/v1',
    eligibilities: services.eligibilities,
    activations: services.activations,
    authenticateCaller: requireCaller(services.authenticateCaller),
    authenticateAdmin: admin.guard({ read: 'pim:read', write: 'pim:write' }),
    auditContext: auditContextOf,
    requirePermission: (req, reply, permission) => admin.authorize(req, reply, permission),
    authorizeApprover: (req, named) => admin.authorizePersonOr(req, 'approvals:decide', named),
    onRefused: (req, detail) =>
      refusals.record(req, { permission: 'approvals:decide', reason: 'not-allowed-to-answer', detail }),
    groupHoldsAdminRole: (groupId) => services.adminRoles.groupHoldsAdminRole(groupId),
    resolvePrincipal: personOrGroup,
  });
  await app.register(reviewsApi, {
    prefix: '/api/v1',
    reviews: services.reviews,
    authenticateCaller: requireCaller(services.authenticateCaller),
    authenticateAdmin: admin.guard({ read: 'reviews:read', write: 'reviews:write' }),
    auditContext: auditContextOf,
    authorizeReviewer: (req, named) => admin.authorizePersonOr(req, 'approvals:decide', named),
    now: () => services.clock.now(),
    requirePermission: (req, reply, permission) => admin.authorize(req, reply, permission),
    resolvePrincipal: personOrGroup,
  });
  await app.register(pimPages, {
    activations: services.activations,
    authenticate: services.authenticateCaller,
    auditContext: auditContextOf,
    onRefused: (req, detail) =>
      refusals.record(req, { permission: 'approvals:decide', reason: 'not-allowed-to-answer', detail }),
    secureCookies: config.publicUrl.startsWith('https:'),
  });
  services.oidc.onError = (err, what) => app.log.warn({ err }, `oidc: ${what} failed`);
  await app.register(oidcRoutes, {
    issuer: services.oidc,
    formDestinations,
    ferrySession: async (req) => {
      const cookie = req.cookies[config.sessions.cookieName];
      return cookie ? services.sessions.resolve(cookie) : null;
    },
  });
  await app.register(oidcAdminApi, {
    prefix: '/api/v1',
    clients: services.oidcClients,
    signingKeys: services.signingKeys,
    keysChanged: () => services.oidc.keysChanged(),
    authenticate: admin.guard({ read: 'apps:read', write: 'apps:write' }),
    auditContext: auditContextOf,
  });
  await app.register(deviceSigninApi, { prefix: '/api/v1', issuer: services.oidc, signin: services.signin });
  await app.register(awsCallerRoutes, {
    prefix: '/api/v1',
    broker: services.credentials,
    access: services.access,
    accounts: services.accounts,
    authenticate: requireCaller(services.authenticateCaller),
    auditContext: auditContextOf,
    defaultEndpoint: config.aws.endpoint ?? null,
  });
  await app.register(samlRoutes, {
    store: services.store,
    clock: services.clock,
    masterKey: services.masterKey,
    signingKeys: services.signingKeys,
    serviceProviders: services.serviceProviders,
    accounts: services.accounts,
    access: services.access,
    sessions: services.sessions,
    cookieName: config.sessions.cookieName,
    publicUrl: config.publicUrl.replace(/\/$/, ''),
    assertionLifetimeSeconds: Math.round(config.saml.assertionLifetime / 1000),
    ...(options.awsConsoleSigninUrl ? { awsConsoleSigninUrl: options.awsConsoleSigninUrl } : {}),
  });
  await app.register(samlAdminApi, {
    prefix: '/api/v1',
    serviceProviders: services.serviceProviders,
    signingKeys: services.signingKeys,
    authenticate: admin.guard({ read: 'apps:read', write: 'apps:write' }),
    auditContext: auditContextOf,
    resolveGroup: async (ref) => {
      const g = await services.groups.get(ref);
      return { type: 'group', id: g.id, name: g.displayName };
    },
  });
  await app.register(sshLoginsApi, {
    prefix: '/api/v1',
    sshLogins: services.sshLogins,
    authenticate: admin.guard({ read: 'access:read', write: 'access:write' }),
    auditContext: auditContextOf,
    resolveGroup: async (ref) => {
      const g = await services.groups.get(ref);
      return { type: 'group', id: g.id, name: g.displayName };
    },
  });
  await app.register(sshApi, {
    prefix: '/api/v1',
    authority: services.ssh,
    caKeys: services.sshCaKeys,
    store: services.store,
    authenticateCaller: requireCaller(services.authenticateCaller),
    authenticateAdmin: admin.guard({ read: 'access:read', write: 'access:write' }),
    auditContext: auditContextOf,
  });
  await app.register(proxyAppsApi, {
    prefix: '/api/v1',
    apps: services.proxyApps,
    authenticate: admin.guard({ read: 'apps:read', write: 'apps:write' }),
    auditContext: auditContextOf,
    resolveGroup: async (ref) => {
      const g = await services.groups.get(ref);
      return { type: 'group', id: g.id, name: g.displayName };
    },
  });
  await app.register(tenantApi, {
    prefix: '/api/v1',
    services,
    authenticate: admin.guard({ read: 'tenant:write', write: 'tenant:write' }),
  });
  await app.register(scimAdminApi, {
    prefix: '/api/v1',
    connections: services.scimConnections,
    authenticate: admin.guard({ read: 'provisioning:read', write: 'provisioning:write' }),
  });
  await app.register(identityCenterApi, {
    prefix: '/api/v1',
    push: services.identityCenter,
    authenticate: admin.guard({ read: 'provisioning:read', write: 'provisioning:write' }),
    auditContext: auditContextOf,
  });
  await app.register(permissionSetApi, {
    prefix: '/api/v1',
    permissionSets: services.permissionSets,
    sync: services.permissionSetSync,
    cliProfiles: services.config.identityCenter.cliProfiles,
    organization: services.organization,
    accounts: services.accounts,
    access: services.access,
    connection: services.identityCenterConnection,
    authenticate: admin.guard({ read: 'access:read', write: 'access:write' }),
    authenticateCaller: requireCaller(services.authenticateCaller),
    signals: (req, caller) => ({
      ip: req.ip,
      client: caller.principal.kind === 'workload' ? 'workload' : 'cli',
      userAgent: req.headers['user-agent'] ?? null,
      deviceAssertion: String(req.headers['x-ferry-device-posture'] ?? '') || null,
    }),
    auditContext: auditContextOf,
    resolvePrincipal: personOrGroup,
  });
  await app.register(scimRoutes, {
    prefix: '/scim/v2',
    store: services.store,
    users: services.users,
    groups: services.groups,
    connections: services.scimConnections,
    publicUrl: () => config.publicUrl,
  });
  await app.register(auditApi, {
    prefix: '/api/v1',
    store: services.store,
    keys: services.auditKeys,
    archive: services.auditArchive,
    authenticate: admin.guard({ read: 'audit:read', write: 'audit:read' }),
  });
  await app.register(activityApi, {
    prefix: '/api/v1',
    cloudtrail: services.cloudtrail,
    views: services.activity,
    leastPrivilege: services.leastPrivilege,
    clock: services.clock,
    authenticate: admin.guard({ read: 'activity:read', write: 'activity:write' }),
    auditContext: auditContextOf,
  });
  await app.register(riskApi, {
    prefix: '/api/v1',
    protection: services.protection,
    authenticate: admin.guard({ read: 'policies:read', write: 'policies:write' }),
    auditContext: auditContextOf,
    userId: async (ref) => (await services.users.get(ref)).id,
  });
  await app.register(alertsApi, {
    prefix: '/api/v1',
    detections: services.detections,
    sinks: services.alertSinks,
    delivery: services.alertDelivery,
    authenticate: admin.guard({ read: 'alerts:read', write: 'alerts:write' }),
    auditContext: auditContextOf,
  });
  await app.register(policyApi, {
    prefix: '/api/v1',
    policies: services.policies,
    locations: services.namedLocations,
    access: services.access,
    clock: services.clock,
    authenticate: admin.guard({ read: 'policies:read', write: 'policies:write' }),
    auditContext: auditContextOf,
    principalFor: async (who, amr, authTime) => {
      if (who.workload) {
        const c = await services.oidcClients.get(who.workload);
        if (c.kind !== 'workload') throw new NotFound('workload', who.workload);
        return {
          kind: 'workload',
          id: c.clientId,
          userName: c.name,
          active: c.active,
          groups: [],
          attributes: {},
          amr: [],
          authTime: null,
        };
      }
      const user = await services.users.get(who.user!);
      return principalOf(services.store.db, user.id, { amr, authTime }, services.clock.now());
    },
  });
  await app.register(myAccessApi, {
    prefix: '/api/v1',
    access: services.access,
    sshLogins: services.sshLogins,
    authenticate: requireCaller(services.authenticateCaller),
    apps: async () => [
      ...(await services.proxyApps.list()).map((a) => ({
        kind: 'proxy' as const,
        name: a.name,
        label: a.name,
        launchUrl: a.url,
      })),
      ...(await services.serviceProviders.list()).map((sp) => ({
        kind: 'saml' as const,
        name: sp.entityId,
        label: sp.name,
        launchUrl: `/saml/launch?sp=${encodeURIComponent(sp.entityId)}`,
      })),
    ],
  });
  await app.register(selfServiceApi, {
    prefix: '/api/v1',
    sessions: services.sessions,
    authenticate: requireCaller(services.authenticateCaller),
    auditContext: auditContextOf,
    security: services.accountSecurity,
  });
  await app.register(webConsole, {
    signedIn: async (req) => {
      const cookie = req.cookies[config.sessions.cookieName];
      return cookie ? (await services.sessions.resolve(cookie)) !== null : false;
    },
  });
  if (options.extraRoutes) await app.register(options.extraRoutes);
  return app;
}
