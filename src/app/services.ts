import { Assignments } from '../access/assignments.js';
import { AwsAccounts } from '../access/aws-accounts.js';
import { AccessDecider } from '../access/decide.js';
import { SshLogins } from '../access/ssh-logins.js';
import type { Clock } from '../clock.js';
import { ServiceProviders } from '../federation/saml/service-providers.js';
import { ApiTokens } from '../identity/api-tokens.js';
import { anyCaller, browserSessionCaller, type CallerAuthenticator } from '../identity/caller.js';
import type { IdentityDeps } from '../identity/deps.js';
import { GroupDirectory } from '../identity/groups.js';
import { TotpFactors } from '../identity/mfa.js';
import { PasswordHasher } from '../identity/passwords.js';
import { SessionStore } from '../identity/sessions.js';
import { SigninService } from '../identity/signin.js';
import { SigninThrottle } from '../identity/throttle.js';
import { UserDirectory } from '../identity/users.js';
import type { MasterKey } from '../keys/master-key.js';
import { SigningKeys, type SigningKeysOptions } from '../keys/signing-keys.js';
import { SshCaKeys } from '../keys/ssh-ca-keys.js';
import { SshAuthority } from '../ssh/authority.js';
import { publicBlobOf, publicKeyLine } from '../ssh/public-key.js';
import type { Store } from '../store/open.js';
import type { Config } from './config.js';
import { Metrics } from './metrics.js';

/** Everything a running Ferry holds, built once from config, store, clock and master key. */
export interface Services {
  config: Config;
  store: Store;
  clock: Clock;
  masterKey: MasterKey;
  metrics: Metrics;
  users: UserDirectory;
  groups: GroupDirectory;
  sessions: SessionStore;
  totp: TotpFactors;
  throttle: SigninThrottle;
  signin: SigninService;
  apiTokens: ApiTokens;
  accounts: AwsAccounts;
  assignments: Assignments;
  /** the one decide() every issuer asks */
  access: AccessDecider;
  signingKeys: SigningKeys;
  serviceProviders: ServiceProviders;
  /** group → Linux login mappings decide() reads for ssh targets */
  sshLogins: SshLogins;
  /** the SSH certificate authority (user and host certificates, KRL) */
  ssh: SshAuthority;
  sshCaKeys: SshCaKeys;
  /** recognises a person or workload on user-facing routes (use with requireCaller) */
  authenticateCaller: CallerAuthenticator;
}

export function createServices(
  config: Config,
  store: Store,
  clock: Clock,
  masterKey: MasterKey,
  signingKeyOptions: SigningKeysOptions = {},
): Services {
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
  const signin = new SigninService(deps, sessions, totp, throttle, {
    requireMfa: config.signin.requireMfa,
    onOutcome: (o) => metrics.signin(o),
  });
  const accounts = new AwsAccounts(store, clock);
  const assignments = new Assignments(store, clock, accounts);
  const sshLogins = new SshLogins(store, clock);
  const access = new AccessDecider(accounts, assignments, sshLogins, {
    sshMaxDuration: Math.round(config.ssh.certificateLifetime / 1000),
  });
  const sshCaKeys = new SshCaKeys(store, clock, masterKey, (k) => publicKeyLine(publicBlobOf(k), ''));
  return {
    config,
    store,
    clock,
    masterKey,
    metrics,
    users: new UserDirectory(deps),
    groups: new GroupDirectory(deps),
    sessions,
    totp,
    throttle,
    signin,
    apiTokens: new ApiTokens(store, clock),
    accounts,
    assignments,
    access,
    signingKeys: new SigningKeys(store, clock, masterKey, signingKeyOptions),
    serviceProviders: new ServiceProviders(store, clock),
    sshLogins,
    sshCaKeys,
    ssh: new SshAuthority(store, clock, sshCaKeys, access, {
      hostCertificateLifetime: Math.round(config.ssh.hostCertificateLifetime / 1000),
      bindSourceAddress: config.ssh.bindSourceAddress,
    }),
    authenticateCaller: anyCaller(browserSessionCaller(store.db, sessions, config.sessions.cookieName)),
  };
}
