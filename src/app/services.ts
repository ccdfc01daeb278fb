import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { AdminRoleAssignments } from '../access/admin-roles.js';
import { AppAssignments } from '../access/app-assignments.js';
import { Assignments } from '../access/assignments.js';
import { AwsAccounts } from '../access/aws-accounts.js';
import { AccessDecider } from '../access/decide.js';
import { postgresAwsRoleReads, postgresEntitlementReads } from '../access/decide-reads.js';
import { AwsOrganization } from '../access/organization.js';
import { PermissionSets, sessionSecondsOf } from '../access/permission-sets.js';
import { Activations } from '../access/pim/activations.js';
import { Eligibilities } from '../access/pim/eligibilities.js';
import { webhookNotifier } from '../access/pim/notifications.js';
import { DevicePostureVerifier } from '../access/policies/device-posture.js';
import { ConditionalAccessEngine } from '../access/policies/engine.js';
import { countryOf } from '../access/policies/geoip.js';
import { NamedLocations } from '../access/policies/named-locations.js';
import { ConditionalAccessPolicies } from '../access/policies/policies.js';
import { storePolicySource } from '../access/policies/store-source.js';
import { ReviewCampaigns } from '../access/reviews/campaigns.js';
import { SshLogins } from '../access/ssh-logins.js';
import { AlertDelivery } from '../activity/alerts/delivery.js';
import { AlertSinks } from '../activity/alerts/sinks.js';
import { detectionObserver } from '../activity/detections/observer.js';
import { Detections } from '../activity/detections/service.js';
import { detectionSettings } from '../activity/detections/settings.js';
import { CloudTrail, DEFAULT_KEEP_FIELDS } from '../activity/ingest.js';
import { LeastPrivilege } from '../activity/least-privilege.js';
import type { ActivityObserver } from '../activity/record.js';
import { ActivityViews } from '../activity/timeline.js';
import { systemActor } from '../audit/actor.js';
import { type ArchiveStore, fileArchive } from '../audit/archive.js';
import { ArchiveScheduler } from '../audit/archive-schedule.js';
import { fileDestination, HeadExporter, webhookDestination } from '../audit/export.js';
import { accountConnection, openAccountClients } from '../aws/account-clients.js';
import { s3Archive, s3HeadDestination } from '../aws/audit-heads-s3.js';
import { cloudTrailS3 } from '../aws/cloudtrail-s3.js';
import { AwsCredentialBroker } from '../aws/credentials.js';
import { PermissionSetLookup } from '../aws/identity-center/permission-set-lookup.js';
import { PermissionSetSync } from '../aws/identity-center/permission-set-sync.js';
import { PimAccountAssignments } from '../aws/identity-center/pim-assignments.js';
import { IdentityCenterPush } from '../aws/identity-center/service.js';
import {
  type IdentityCenterClients,
  type IdentityCenterConnection,
  openIdentityCenter,
} from '../aws/identity-center/sso-admin.js';
import { IdentityCenterTargets } from '../aws/identity-center/target.js';
import { rolePoliciesReader } from '../aws/role-policies.js';
import { SessionRevoker } from '../aws/session-revocation.js';
import type { Clock } from '../clock.js';
import { NotFound } from '../errors.js';
import { accessTokenCaller } from '../federation/oidc/access-token-caller.js';
import { OidcClients } from '../federation/oidc/clients.js';
import { OidcIssuer } from '../federation/oidc/provider.js';
import { proxyClientMetadata, proxyClientSecret } from '../federation/oidc/proxy-client.js';
import { AwsRoleAssertions } from '../federation/saml/aws-role-assertion.js';
import { ServiceProviders } from '../federation/saml/service-providers.js';
import { AccountSecurity } from '../identity/account-security.js';
import { ApiTokens } from '../identity/api-tokens.js';
import { anyCaller, browserSessionCaller, type CallerAuthenticator } from '../identity/caller.js';
import { CsrfTokens } from '../identity/csrf.js';
import type { IdentityDeps } from '../identity/deps.js';
import { GroupDirectory } from '../identity/groups.js';
import { TotpFactors } from '../identity/mfa.js';
import { HashQueue, PasswordHasher } from '../identity/passwords.js';
import { principalOf } from '../identity/principal-of.js';
import { RecoveryCodes } from '../identity/recovery-codes.js';
import { IdentityProtection } from '../identity/risk/protection.js';
import { ScimConnections } from '../identity/scim/connections.js';
import { SessionStore } from '../identity/sessions.js';
import { SigninService } from '../identity/signin.js';
import { SigninThrottle } from '../identity/throttle.js';
import { EntraSignin } from '../identity/upstream/entra-signin.js';
import { UserDirectory } from '../identity/users.js';
import { WebAuthnFactors } from '../identity/webauthn.js';
import { AuditSigningKeys } from '../keys/audit-signing-keys.js';
import type { MasterKey } from '../keys/master-key.js';
import { SigningKeys, type SigningKeysOptions } from '../keys/signing-keys.js';
import { SshCaKeys } from '../keys/ssh-ca-keys.js';
import type { TargetPolicy } from '../outbound/target-guard.js';
import { ProxyApps } from '../proxy/apps.js';
import { SshAuthority } from '../ssh/authority.js';
import { publicBlobOf, publicKeyLine } from '../ssh/public-key.js';
import type { Store } from '../store/open.js';
import type { Config } from './config.js';
import { Metrics } from './metrics.js';
import { entraOptionsOf } from './upstream.js';

/** Everything a running Ferry holds, built once from config, store, clock and master key. */
export interface Services {
  /**
   * This process's instance: its worker heartbeats under this id, and the leases it takes name it, so
   * another instance takes them over at once if it dies (store/leases.ts).
   */
  instanceId: string;
  config: Config;
  store: Store;
  clock: Clock;
  masterKey: MasterKey;
  /** where alert sinks, PIM webhooks and audit head webhooks may connect (alerts.allowPrivateTargets…) */
  outboundTargets: TargetPolicy;
  metrics: Metrics;
  users: UserDirectory;
  groups: GroupDirectory;
  sessions: SessionStore;
  totp: TotpFactors;
  /** security keys and passkeys */
  webauthn: WebAuthnFactors;
  /** single-use recovery codes (hashed) */
  recoveryCodes: RecoveryCodes;
  /** a person's own sign-in methods and password (the console's Account page) */
  accountSecurity: AccountSecurity;
  /** identity protection: detections, sign-in and user risk */
  protection: IdentityProtection;
  throttle: SigninThrottle;
  signin: SigninService;
  apiTokens: ApiTokens;
  /** SCIM provisioning connections (Entra ID, …) and their bearer tokens */
  scimConnections: ScimConnections;
  accounts: AwsAccounts;
  assignments: Assignments;
  /** standing admin roles (group or user → admin:<role>) */
  adminRoles: AdminRoleAssignments;
  /** IAM Identity Center permission sets and their assignments as declared (issue 19) */
  permissionSets: PermissionSets;
  /** AWS Organizations' OU tree as last discovered */
  organization: AwsOrganization;
  /** makes Identity Center match the declared permission sets */
  permissionSetSync: PermissionSetSync;
  /** how Ferry reaches Identity Center and Organizations (config aws.*) */
  identityCenterConnection: IdentityCenterConnection;
  /** the one set of Identity Center SDK clients (permission-set sync, PIM assignments); destroyed on stop */
  identityCenterClients: IdentityCenterClients;
  /** the one decide() every issuer asks */
  access: AccessDecider;
  /** conditional access policies and the named locations they use */
  policies: ConditionalAccessPolicies;
  namedLocations: NamedLocations;
  /** the policy step of decide(), also used by what-if */
  conditionalAccess: ConditionalAccessEngine;
  signingKeys: SigningKeys;
  serviceProviders: ServiceProviders;
  /** STS credentials for one role (`ferry creds`, workloads) */
  credentials: AwsCredentialBroker;
  oidcClients: OidcClients;
  /** the OpenID provider (built lazily; rebuilt when its keys rotate) */
  oidc: OidcIssuer;
  /** ends a person's live AWS sessions (offboarding, end of a PIM activation) */
  sessionRevoker: SessionRevoker;
  /** group → Linux login mappings decide() reads for ssh targets */
  sshLogins: SshLogins;
  /** the SSH certificate authority (user and host certificates, KRL) */
  ssh: SshAuthority;
  sshCaKeys: SshCaKeys;
  /** sign-in with Microsoft Entra ID, when `upstream.entra` is configured */
  entraSignin: EntraSignin | null;
  /** group → app assignments decide() reads for `app:` targets */
  appAssignments: AppAssignments;
  /** applications the identity-aware proxy serves */
  proxyApps: ProxyApps;
  /** PIM: who may activate which role, under which rules */
  eligibilities: Eligibilities;
  /** PIM: activation requests and their lifecycle */
  activations: Activations;
  /** access reviews over memberships and eligibilities */
  reviews: ReviewCampaigns;
  /** PIM for permission sets: the person's Identity Center account assignment while an activation lasts */
  pimAssignments: PimAccountAssignments;
  /** recognises a person or workload on user-facing routes (use with requireCaller) */
  authenticateCaller: CallerAuthenticator;
  /** the CSRF tokens bound to browser sessions, for API calls made with the cookie */
  csrf: CsrfTokens;
  /** SCIM push of users, groups and memberships to AWS IAM Identity Center */
  identityCenter: IdentityCenterPush;
  /** the Ed25519 key that signs audit tree heads (sealed under the master key) */
  auditKeys: AuditSigningKeys;
  /** publishes signed tree heads to the destinations in `audit.export` */
  auditExporter: HeadExporter;
  /** where audit.retention archives pruned segments (null: not configured) */
  auditArchive: ArchiveStore | null;
  /** the worker's scheduled archive, with backoff and status (null: audit.retention.archiveAfter not set) */
  auditArchiver: ArchiveScheduler | null;
  /**
   * Called with every batch of CloudTrail records ingestion stored (each record once). Detections push
   * their observer here before the first sync (the array is the one CloudTrail holds).
   */
  activityObservers: ActivityObserver[];
  /** CloudTrail ingestion from S3: sources, sync, retention */
  cloudtrail: CloudTrail;
  /** actions used vs allowed per role, and a narrower policy */
  leastPrivilege: LeastPrivilege;
  /** timelines joining the audit trail to CloudTrail */
  activity: ActivityViews;
  /** detections: spike counts, deduplication, suppression; raises alerts */
  detections: Detections;
  /** where alerts go (secrets sealed) */
  alertSinks: AlertSinks;
  /** carries alerts to sinks from the outbox; `ferry alerts test` */
  alertDelivery: AlertDelivery;
  /** the CloudTrail detections, for ingestion's observers */
  detectionObserver: ActivityObserver;
}

export function createServices(
  config: Config,
  store: Store,
  clock: Clock,
  masterKey: MasterKey,
  signingKeyOptions: SigningKeysOptions = {},
): Services {
  const instanceId = randomUUID();
  const hasher = new PasswordHasher(config.passwords);
  const deps: IdentityDeps = { store, clock, masterKey, hasher };
  const metrics = new Metrics();
  const sessions = new SessionStore(deps, {
    idleMs: config.sessions.idleTimeout,
    absoluteMs: config.sessions.absoluteTimeout,
    pendingMs: 10 * 60_000,
  });
  const totp = new TotpFactors(deps, 'Ferry');
  const throttle = new SigninThrottle(store.db, store.engine, clock, {
    accountMaxFailures: config.signin.accountMaxFailures,
    addressMaxFailures: config.signin.addressMaxFailures,
    windowMs: config.signin.failureWindow,
    lockoutMs: config.signin.lockout,
  });
  const webauthn = new WebAuthnFactors(deps, () => config.publicUrl);
  const recoveryCodes = new RecoveryCodes(deps);
  const protection = new IdentityProtection(
    store,
    clock,
    masterKey.derive('signin-password-fingerprint'),
    countryOf,
  );
  const signin = new SigninService(deps, sessions, totp, throttle, {
    // One attempt per core, and always fewer than the pool has connections (each uses at most one).
    hashQueue: new HashQueue(
      config.signin.hashConcurrency ??
        Math.max(1, Math.min(availableParallelism(), config.database.poolSize - 1)),
      config.signin.hashQueue,
    ),
    requireMfa: config.signin.requireMfa,
    webauthn,
    protection,
    recoveryCodes,
    onOutcome: (o) => metrics.signin(o),
  });
  const users = new UserDirectory(deps);
  const groups = new GroupDirectory(deps);
  const entraOptions = entraOptionsOf(config);
  const accounts = new AwsAccounts(store, clock);
  const organization = new AwsOrganization(store, clock);
  const permissionSets = new PermissionSets({ store, clock, accounts, organization });
  const identityCenterConnection: IdentityCenterConnection = {
    region: config.aws.region,
    ...(config.aws.endpoint ? { endpoint: config.aws.endpoint } : {}),
    ...(config.aws.accessKeyId && config.aws.secretAccessKey
      ? { credentials: { accessKeyId: config.aws.accessKeyId, secretAccessKey: config.aws.secretAccessKey } }
      : {}),
    ...(config.identityCenter.startUrl ? { startUrl: config.identityCenter.startUrl } : {}),
  };
  // One set of Identity Center clients for permission-set sync and PIM's account assignments
  // (constructing them does no I/O; the instance is looked up on first use).
  const identityCenterClients = openIdentityCenter(identityCenterConnection);
  const permissionSetSync = new PermissionSetSync({
    store,
    clock,
    permissionSets,
    principalName: async (type, id) => {
      const row =
        type === 'group'
          ? await store.db
              .selectFrom('groups')
              .select('display_name as name')
              .where('id', '=', id)
              .executeTakeFirst()
          : await store.db
              .selectFrom('users')
              .select('user_name as name')
              .where('id', '=', id)
              .executeTakeFirst();
      return row?.name ?? null;
    },
    identityCenter: () => identityCenterClients,
  });
  const appAssignments = new AppAssignments(store, clock);
  const proxyApps = new ProxyApps(store, clock, appAssignments);
  const signingKeys = new SigningKeys(store, clock, masterKey, signingKeyOptions);
  const oidcClients = new OidcClients(store, clock);
  const oidc = new OidcIssuer({
    issuer: () => config.publicUrl,
    store,
    clock,
    masterKey,
    signingKeys,
    clients: oidcClients,
    findUser: (id) => principalOf(store.db, id, null, clock.now()),
    ferrySession: (cookie) => sessions.resolve(cookie),
    endFerrySession: async (cookie) => {
      const session = await sessions.resolve(cookie);
      if (session)
        await sessions.revoke(
          { actor: systemActor('oidc-logout') },
          session.id,
          'signed out (OpenID logout)',
        );
    },
    sessionCookieName: config.sessions.cookieName,
    secureCookies: config.publicUrl.startsWith('https:'),
    proxyClient: async () => proxyClientMetadata(await proxyApps.origins(), proxyClientSecret(masterKey)),
    trustProxy: config.http.trustProxy !== false,
    lifetimes: {
      accessToken: Math.round(config.oidc.accessTokenLifetime / 1000),
      idToken: Math.round(config.oidc.idTokenLifetime / 1000),
      refreshToken: Math.round(config.oidc.refreshTokenLifetime / 1000),
      clientCredentials: Math.round(config.oidc.clientCredentialsLifetime / 1000),
      deviceCode: Math.round(config.oidc.deviceCodeLifetime / 1000),
      session: Math.round(config.sessions.absoluteTimeout / 1000),
    },
  });
  const assignments = new Assignments(store, clock, accounts);
  const sshLogins = new SshLogins(store, clock);
  // PIM for permission sets (0024): checked against, and carried out in, IAM Identity Center.
  let pimAssignments: PimAccountAssignments | undefined;
  const eligibilities = new Eligibilities(store, clock, accounts, {
    checkPermissionSet: (q) => pimAssignments!.checkPermissionSet(q),
    organization,
  });
  const activations = new Activations(store, clock, accounts, eligibilities, {
    answerWithin: config.pim.answerWithin,
    notify: webhookNotifier(clock, config.pim.webhooks),
    precheck: (target, person) => pimAssignments!.precheck(target, person),
  });
  pimAssignments = new PimAccountAssignments({
    store,
    // the client (and the SDK package) is created at the first call, not at start (ADR 0046)
    get sso() {
      return identityCenterClients.ssoAdmin;
    },
    lookup: new PermissionSetLookup(identityCenterClients),
    identityStore: identityCenterClients,
    declaredSessionSeconds: async (name) => {
      const spec = await permissionSets.find(store.db, name);
      return spec ? sessionSecondsOf(spec) : null;
    },
    activations,
    eligibilities,
  });
  const policies = new ConditionalAccessPolicies(store, clock, async (type, name) => {
    if (type === 'user') {
      const u = await users.get(name);
      return { id: u.id, name: u.userName };
    }
    if (type === 'group') {
      const g = await groups.get(name);
      return { id: g.id, name: g.displayName };
    }
    const c = await oidcClients.get(name);
    if (c.kind !== 'workload') throw new NotFound('workload', name);
    return { id: c.clientId, name: c.name };
  });
  const namedLocations = new NamedLocations(store, clock);
  const posture = config.conditionalAccess.devicePosture;
  const conditionalAccess = new ConditionalAccessEngine(
    storePolicySource(store, policies, namedLocations, countryOf, clock),
    clock,
    posture
      ? new DevicePostureVerifier(
          {
            issuer: posture.issuer,
            publicKeyPem: posture.publicKeyPem,
            audience: posture.audience ?? config.publicUrl.replace(/\/$/, ''),
            maxAgeSeconds: Math.round(posture.maxAge / 1000),
          },
          clock,
        )
      : null,
    (accountId) => organization.ancestorsOf(accountId),
  );
  const serviceProviders = new ServiceProviders(store, clock, appAssignments);
  const adminRoles = new AdminRoleAssignments(store, clock);
  const csrf = new CsrfTokens(masterKey);
  const access = new AccessDecider(accounts, assignments, sshLogins, {
    clock,
    adminRoles,
    adminRoleRequirements: config.adminRoles.builtInRequirements,
    sshMaxDuration: Math.round(config.ssh.certificateLifetime / 1000),
    appAssignments,
    appOpenness: [(name) => serviceProviders.openToAll(name), (name) => proxyApps.openToAll(name)],
    activations,
    policies: conditionalAccess,
    readForAwsRole: store.engine === 'postgres' ? postgresAwsRoleReads(store, clock) : undefined,
    readForEntitlements: store.engine === 'postgres' ? postgresEntitlementReads(store, clock) : undefined,
    permissionSets: {
      spec: (name) => permissionSets.find(store.db, name),
      forPrincipal: (userId, groupIds) => permissionSets.forPrincipal(userId, groupIds),
      ancestorsOf: (accountId) => organization.ancestorsOf(accountId),
      accountKnown: async (accountId) => (await accounts.find(store.db, accountId)) !== null,
    },
  });
  const sshCaKeys = new SshCaKeys(store, clock, masterKey, (k) => publicKeyLine(publicBlobOf(k), ''));
  const assertions = new AwsRoleAssertions(
    signingKeys,
    clock,
    () => `${config.publicUrl.replace(/\/$/, '')}/saml/metadata`,
    Math.round(config.saml.assertionLifetime / 1000),
  );
  const { aws } = config;
  const activityObservers: ActivityObserver[] = [];
  const awsKeys =
    aws.accessKeyId && aws.secretAccessKey
      ? { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey }
      : undefined;
  const cloudtrail = new CloudTrail(
    {
      store,
      clock,
      s3: cloudTrailS3({
        region: aws.region,
        endpoint: config.cloudtrail.endpoint ?? aws.endpoint ?? undefined,
        credentials: awsKeys,
      }),
      activityObservers,
      instanceId,
    },
    {
      batchSize: config.cloudtrail.batchSize,
      retentionMs: config.cloudtrail.retention,
      keepFields:
        config.cloudtrail.keepFields === 'all' ? null : (config.cloudtrail.keepFields ?? DEFAULT_KEEP_FIELDS),
      clockSkewMs: config.cloudtrail.clockSkew,
      leaseMs: 10 * 60_000,
    },
  );
  const sessionRevoker = new SessionRevoker(
    store,
    clock,
    accounts,
    (account) =>
      openAccountClients(
        accountConnection(account, {
          region: aws.region,
          endpoint: aws.endpoint ?? null,
          ...(aws.accessKeyId && aws.secretAccessKey
            ? { credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey } }
            : {}),
        }),
      ),
    { clockSkewSeconds: aws.revocationClockSkew / 1000 },
  );
  const alertTargets: TargetPolicy = {
    allowPrivate: config.alerts.allowPrivateTargets,
    allowNetworks: config.alerts.allowTargetNetworks,
  };
  const alertSinks = new AlertSinks(store, clock, masterKey, {
    targets: alertTargets,
    configNames: config.alerts.sinks.map((s) => s.name),
  });
  const auditKeys = new AuditSigningKeys(store, clock, masterKey);
  const auditArchive = auditArchiveOf(config, clock);
  const { retention } = config.audit;
  const detections = new Detections({
    store,
    clock,
    settings: detectionSettingsOf(config),
    sinks: (trx) => alertSinks.filters(trx),
    metrics,
  });
  // The CloudTrail detections watch every batch ingestion stores.
  const cloudTrailDetections = detectionObserver(
    { store, accounts, publicUrl: () => config.publicUrl },
    detections,
  );
  activityObservers.push(cloudTrailDetections);
  return {
    instanceId,
    detections,
    alertSinks,
    alertDelivery: new AlertDelivery(
      { store, clock, sinks: alertSinks, metrics, consoleUrl: () => config.publicUrl, targets: alertTargets },
      { maxPerSinkPerHour: config.alerts.maxPerSinkPerHour, maxAttempts: config.alerts.maxAttempts },
    ),
    detectionObserver: cloudTrailDetections,
    config,
    outboundTargets: alertTargets,
    store,
    clock,
    masterKey,
    metrics,
    users,
    groups,
    entraSignin: entraOptions
      ? new EntraSignin(deps, sessions, users, groups, entraOptions, (o) => metrics.signin(o))
      : null,
    sessions,
    totp,
    webauthn,
    protection,
    recoveryCodes,
    accountSecurity: new AccountSecurity(deps, {
      users,
      totp,
      webauthn,
      recoveryCodes,
      throttle,
      requireMfa: config.signin.requireMfa,
      changeMaxAgeMs: config.signin.accountChangeMaxAge,
    }),
    throttle,
    signin,
    apiTokens: new ApiTokens(store, clock, masterKey),
    scimConnections: new ScimConnections(store, clock, masterKey),
    accounts,
    assignments,
    adminRoles,
    permissionSets,
    organization,
    permissionSetSync,
    identityCenterConnection,
    identityCenterClients,
    access,
    policies,
    namedLocations,
    conditionalAccess,
    credentials: new AwsCredentialBroker(
      store,
      clock,
      accounts,
      access,
      assertions,
      config.aws.region,
      config.aws.endpoint ?? null,
    ),
    signingKeys,
    auditKeys,
    auditExporter: new HeadExporter(
      { store, clock },
      config.audit.export.destinations.map((d) =>
        d.type === 'file'
          ? fileDestination(d.directory)
          : d.type === 'webhook'
            ? webhookDestination(d.url, { targets: alertTargets })
            : s3HeadDestination(
                {
                  bucket: d.bucket,
                  prefix: d.prefix,
                  retainDays: d.retainDays,
                  region: d.region ?? config.aws.region,
                  endpoint: d.endpoint ?? config.aws.endpoint,
                  credentials:
                    config.aws.accessKeyId && config.aws.secretAccessKey
                      ? { accessKeyId: config.aws.accessKeyId, secretAccessKey: config.aws.secretAccessKey }
                      : undefined,
                },
                clock,
              ),
      ),
    ),
    auditArchive,
    auditArchiver:
      auditArchive && retention.archiveAfter !== null
        ? new ArchiveScheduler(
            { store, clock, keys: auditKeys, archive: auditArchive, instanceId },
            {
              archiveAfter: retention.archiveAfter,
              maxEventsPerSegment: retention.maxEventsPerSegment,
              intervalMs: retention.interval,
            },
          )
        : null,
    serviceProviders,
    oidcClients,
    oidc,
    sshLogins,
    sshCaKeys,
    ssh: new SshAuthority(store, clock, sshCaKeys, access, {
      hostCertificateLifetime: Math.round(config.ssh.hostCertificateLifetime / 1000),
      bindSourceAddress: config.ssh.bindSourceAddress,
    }),
    authenticateCaller: anyCaller(
      accessTokenCaller(store.db, oidc, oidcClients, (grantId, user, ip) =>
        protection.tokenUsed(grantId, user, ip),
      ),
      browserSessionCaller(store.db, sessions, config.sessions.cookieName, csrf),
    ),
    csrf,
    sessionRevoker,
    identityCenter: new IdentityCenterPush(
      store,
      clock,
      new IdentityCenterTargets(store, clock, masterKey),
      {
        retry: {
          maxAttempts: config.identityCenter.maxAttempts,
          baseDelayMs: config.identityCenter.baseBackoff,
          maxDelayMs: config.identityCenter.maxBackoff,
        },
        requestTimeoutMs: config.identityCenter.requestTimeout,
      },
      instanceId,
    ),
    appAssignments,
    proxyApps,
    eligibilities,
    activations,
    reviews: new ReviewCampaigns(store, clock),
    pimAssignments,
    activityObservers,
    cloudtrail,
    activity: new ActivityViews({
      store,
      clock,
      findUser: (ref) => users.get(ref),
      accountId: async (ref) => ((await accounts.find(store.db, ref)) ?? { id: ref }).id,
    }),
    leastPrivilege: new LeastPrivilege({
      store,
      clock,
      accounts,
      rolePolicies: rolePoliciesReader((account) =>
        accountConnection(account, {
          region: aws.region,
          endpoint: aws.endpoint ?? null,
          credentials: awsKeys,
        }),
      ),
    }),
  };
}

/** detections.* of the config file as the detection service reads it (durations in ms, dates parsed). */
export function detectionSettingsOf(config: Config) {
  const d = config.detections;
  return detectionSettings({
    rules: Object.fromEntries(
      Object.entries(d.rules).map(([rule, r]) => [
        rule,
        Object.fromEntries(
          Object.entries({
            enabled: r?.enabled,
            severity: r?.severity,
            dedupWindowMs: r?.dedupWindow,
            threshold: r?.threshold,
            windowMs: r?.window,
          }).filter(([, v]) => v !== undefined),
        ),
      ]),
    ),
    suppress: d.suppress.map((s) => ({
      rule: s.rule ?? null,
      subject: s.subject ?? null,
      account: s.account ?? null,
      from: new Date(s.from),
      until: new Date(s.until),
      reason: s.reason,
    })),
    ...(d.administratorRoles ? { administratorRoles: d.administratorRoles } : {}),
    ferryPrincipals: d.ferryPrincipals,
  });
}

/** The archive audit.retention names, built with the same S3 writer as the head export. */
export function auditArchiveOf(config: Config, clock: Clock): ArchiveStore | null {
  const d = config.audit.retention.destination;
  if (!d) return null;
  if (d.type === 'file') return fileArchive(d.directory);
  return s3Archive(
    {
      bucket: d.bucket,
      prefix: d.prefix,
      retainDays: d.retainDays,
      region: d.region ?? config.aws.region,
      endpoint: d.endpoint ?? config.aws.endpoint,
      credentials:
        config.aws.accessKeyId && config.aws.secretAccessKey
          ? { accessKeyId: config.aws.accessKeyId, secretAccessKey: config.aws.secretAccessKey }
          : undefined,
    },
    clock,
  );
}
