import { timingSafeEqual } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Account, Adapter, AdapterPayload, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { type AuditInput, appendAudit } from '../../audit/ledger.js';
import { ACR } from '../../authn/amr.js';
import { STS_AUDIENCE } from '../../aws/oidc-setup.js';
import type { Clock } from '../../clock.js';
import type { DirectoryPrincipal } from '../../identity/principal-of.js';
import { sha256Hex } from '../../identity/secrets.js';
import type { Session } from '../../identity/sessions.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { SigningKey, SigningKeyPurpose, SigningKeys } from '../../keys/signing-keys.js';
import { isDatabaseUnavailable, isStorageFull } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import {
  linkGrantToSession,
  requestTokenHandle,
  StoreAdapter,
  sessionOfGrant,
  takeDeferredArtifacts,
} from './adapter.js';
import { CLI_CLIENT, grantNameOf, type OidcClients, REQUIRE_PKCE_METADATA } from './clients.js';
import { IssuedWriter } from './issued-writer.js';
import { loadOidcProvider } from './library.js';
import { deviceSources, logoutSources, renderOidcError } from './pages.js';
import { PROXY_CLIENT_ID } from './proxy-client.js';

/** What counts as MFA is defined once (src/authn/amr.ts); the claims and device sign-in take acr from there. */
export { ACR, acrOf } from '../../authn/amr.js';

/** Where grant.success leaves its `oidc.token.issued` record for the response to write with the tokens. */
const ISSUED_AUDIT = Symbol('ferry.oidc.issuedAudit');
/** The error behind a server_error response, kept to tell an unavailable database from a fault. */
const SERVER_ERROR = Symbol('ferry.oidc.serverError');

/** The resource indicator (RFC 8707 wants an absolute URI) that asks for such a token. */
export const STS_RESOURCE = 'https://sts.amazonaws.com';

export const OIDC_SIGNING_PURPOSES: SigningKeyPurpose[] = ['oidc-es256', 'oidc-rs256'];

export interface OidcProviderOptions {
  /** Ferry's public URL, read when the provider is built (it may be known only after listening) */
  issuer: () => string;
  store: Store;
  clock: Clock;
  masterKey: MasterKey;
  signingKeys: SigningKeys;
  clients: OidcClients;
  /** the directory's view of a user, or null when unknown */
  findUser: (userId: string) => Promise<DirectoryPrincipal | null>;
  /** the Ferry sign-in session a browser presents (its cookie), or null */
  ferrySession: (cookieValue: string) => Promise<Session | null>;
  /** ends the Ferry sign-in behind a browser's cookie (RP-initiated logout signs out of Ferry too) */
  endFerrySession: (cookieValue: string) => Promise<void>;
  sessionCookieName: string;
  secureCookies: boolean;
  /** metadata of the identity-aware proxy's client (its redirect URIs follow the registered apps) */
  proxyClient?: () => Promise<AdapterPayload>;
  trustProxy: boolean;
  lifetimes: {
    accessToken: number;
    idToken: number;
    refreshToken: number;
    clientCredentials: number;
    deviceCode: number;
    session: number;
  };
}

/** How long a built provider trusts its key set before it looks for a rotation. */
const KEY_CHECK_MS = 30_000;

/**
 * Ferry's OpenID provider: panva's oidc-provider, configured to use Ferry's store, keys, clients and
 * sign-in. Keys come from `keys/` and rotate like the SAML key; when the published set changes the
 * provider is rebuilt (it holds nothing else: every artifact is in the database).
 */
export class OidcIssuer {
  readonly #options: OidcProviderOptions;
  #built: { provider: Provider; keyIds: string; checkedAt: number } | null = null;
  #building: Promise<Provider> | null = null;
  /** the token endpoint's writes, group-committed (one per instance, whatever provider is built) */
  readonly #issued: IssuedWriter;

  constructor(options: OidcProviderOptions) {
    this.#options = options;
    this.#issued = new IssuedWriter(options.store, options.clock);
  }

  /** failures of background bookkeeping (audit writes) go here; the server sets its logger */
  onError: (err: unknown, what: string) => void = () => {};

  get issuer(): string {
    return this.#options.issuer().replace(/\/+$/, '');
  }

  /** Ties a grant to the Ferry sign-in session it was given under: revoking the session ends it. */
  async linkGrant(grantId: string, sessionId: string): Promise<void> {
    await linkGrantToSession(this.#options.store, this.#options.masterKey, grantId, sessionId);
  }

  /** After a rotation on this instance: look at the keys on the next request (others notice within 30 s). */
  keysChanged(): void {
    if (this.#built) this.#built.checkedAt = Number.NEGATIVE_INFINITY;
  }

  /** The provider for the current keys (rebuilt when a rotation published or retired a key). */
  async provider(): Promise<Provider> {
    const now = this.#options.clock.now().getTime();
    const built = this.#built;
    if (built && now - built.checkedAt < KEY_CHECK_MS) return built.provider;
    this.#building ??= (async () => {
      try {
        const keys = await this.#publishedKeys();
        const keyIds = keys.map((k) => k.id).join(',');
        if (this.#built && this.#built.keyIds === keyIds) {
          this.#built.checkedAt = now;
          return this.#built.provider;
        }
        const provider = this.#build(keys, await loadOidcProvider());
        this.#built = { provider, keyIds, checkedAt: now };
        return provider;
      } finally {
        this.#building = null;
      }
    })();
    return this.#building;
  }

  async #publishedKeys(): Promise<SigningKey[]> {
    const sets = await Promise.all(OIDC_SIGNING_PURPOSES.map((p) => this.#options.signingKeys.published(p)));
    return sets.flat();
  }

  #build(
    keys: SigningKey[],
    { default: OidcProvider, interactionPolicy, errors: oidcErrors }: typeof import('oidc-provider'),
  ): Provider {
    const o = this.#options;
    const jwks = {
      // Current keys come first within each algorithm: oidc-provider signs with the first match.
      keys: keys.map((k) => ({
        ...(k.privateKey.export({ format: 'jwk' }) as Record<string, unknown>),
        kid: k.id,
        alg: k.algorithm === 'ecdsa-p256-sha256' ? 'ES256' : 'RS256',
        use: 'sig',
      })),
    };
    const policy = interactionPolicy.base();
    // One sign-in system: an OpenID session is only as good as the Ferry session behind it, so
    // signing out of Ferry (or being disabled) also ends single sign-on to relying parties.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check(
        'ferry_session',
        'the Ferry sign-in has ended',
        'login_required',
        async (ctx) => {
          const accountId = ctx.oidc.session?.accountId;
          if (!accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
          const cookie = ctx.cookies.get(o.sessionCookieName);
          const session = cookie ? await o.ferrySession(cookie) : null;
          return session?.userId === accountId
            ? interactionPolicy.Check.NO_NEED_TO_PROMPT
            : interactionPolicy.Check.REQUEST_PROMPT;
        },
      ),
      0,
    );

    const configuration: Configuration = {
      adapter: (name: string) =>
        name === 'Client'
          ? new ClientAdapter(o.clients, o.proxyClient)
          : new StoreAdapter(name, o.store, o.clock, o.masterKey),
      clients: [CLI_CLIENT],
      jwks: jwks as Configuration['jwks'],
      cookies: {
        keys: [o.masterKey.derive('oidc/cookies').toString('base64url')],
        long: { signed: true, httpOnly: true, sameSite: 'lax', secure: o.secureCookies },
        short: { signed: true, httpOnly: true, sameSite: 'lax', secure: o.secureCookies },
        names: { session: 'ferry_oidc', interaction: 'ferry_oidc_i', resume: 'ferry_oidc_r' },
      },
      routes: {
        authorization: '/oidc/auth',
        token: '/oidc/token',
        jwks: '/oidc/jwks',
        userinfo: '/oidc/me',
        device_authorization: '/oidc/device/auth',
        code_verification: '/oidc/device',
        end_session: '/oidc/session/end',
        revocation: '/oidc/token/revocation',
        introspection: '/oidc/token/introspection',
        pushed_authorization_request: '/oidc/request',
        backchannel_authentication: '/oidc/backchannel',
        registration: '/oidc/reg',
        challenge: '/oidc/challenge',
      },
      interactions: {
        policy,
        url: (_ctx, interaction) => `/oidc/interaction/${interaction.uid}`,
      },
      claims: {
        // How the person signed in travels with every ID token (relying parties can require MFA).
        openid: ['sub', 'acr', 'amr', 'auth_time'],
        profile: ['preferred_username', 'name', 'given_name', 'family_name'],
        email: ['email', 'email_verified'],
        groups: ['groups'],
      },
      scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
      acrValues: [ACR.singleFactor, ACR.mfa],
      // Ferry's tokens carry the claims the CLI and relying parties show; no second userinfo call.
      conformIdTokenClaims: false,
      findAccount: async (_ctx, sub) => {
        const user = await o.findUser(sub).catch(() => null);
        if (!user || !user.active) return undefined;
        return accountOf(user);
      },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: {
          enabled: true,
          charset: 'base-20',
          mask: '****-****',
          ...deviceSources,
        },
        clientCredentials: { enabled: true },
        introspection: {
          enabled: true,
          // Only a client may ask about its own tokens.
          allowedPolicy: async (ctx, client, token) =>
            !('clientId' in token) || token.clientId === undefined || token.clientId === client.clientId,
        },
        revocation: { enabled: true },
        rpInitiatedLogout: { enabled: true, ...logoutSources },
        registration: { enabled: false },
        // A workload may ask for a JWT addressed to AWS STS (resource=https://sts.amazonaws.com, aud
        // sts.amazonaws.com), the same shape
        // GitHub Actions sends, to call AssumeRoleWithWebIdentity against roles that trust Ferry's issuer.
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => undefined as unknown as string,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx, indicator, client) => {
            if (indicator !== STS_RESOURCE || !client.grantTypeAllowed('client_credentials')) {
              throw new oidcErrors.InvalidTarget(`${indicator} is not a resource Ferry issues tokens for`);
            }
            return {
              audience: STS_AUDIENCE,
              scope: 'sts',
              accessTokenFormat: 'jwt',
              accessTokenTTL: o.lifetimes.clientCredentials,
              // RS256: every AWS region verifies it.
              jwt: { sign: { alg: 'RS256' } },
            };
          },
        },
        userinfo: { enabled: true },
      },
      // PKCE for every code flow, unless an operator let one confidential client leave it out (its
      // registration says ferry_require_pkce: false); a public client can never opt out.
      pkce: {
        required: (_ctx, client) =>
          client.clientAuthMethod === 'none' || client.metadata()[REQUIRE_PKCE_METADATA] !== false,
      },
      extraClientMetadata: {
        properties: [REQUIRE_PKCE_METADATA],
        validator: (_ctx, key, value) => {
          if (key === REQUIRE_PKCE_METADATA && value !== undefined && typeof value !== 'boolean')
            throw new oidcErrors.InvalidClientMetadata(`${REQUIRE_PKCE_METADATA} must be a boolean`);
        },
      },
      responseTypes: ['code'],
      clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      enabledJWA: {
        idTokenSigningAlgValues: ['ES256', 'RS256'],
        userinfoSigningAlgValues: ['ES256', 'RS256'],
        introspectionSigningAlgValues: ['ES256', 'RS256'],
        authorizationSigningAlgValues: ['ES256', 'RS256'],
        clientAuthSigningAlgValues: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
        requestObjectSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      },
      ttl: {
        AccessToken: o.lifetimes.accessToken,
        AuthorizationCode: 60,
        ClientCredentials: o.lifetimes.clientCredentials,
        DeviceCode: o.lifetimes.deviceCode,
        IdToken: o.lifetimes.idToken,
        RefreshToken: o.lifetimes.refreshToken,
        Interaction: 600,
        Session: o.lifetimes.session,
        Grant: o.lifetimes.refreshToken,
      },
      // Every refresh returns a new refresh token; presenting a used one revokes the whole grant.
      rotateRefreshToken: true,
      // The CLI needs a refresh token without asking for offline_access: its sign-in lasts a working day.
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      expiresWithSession: async () => false,
      // Access tokens remember how the person signed in: `ferry creds` passes amr on to decide().
      extraTokenClaims: async (ctx) => {
        const source =
          ctx.oidc.entities.RefreshToken ??
          ctx.oidc.entities.DeviceCode ??
          ctx.oidc.entities.AuthorizationCode;
        if (!source?.accountId) return undefined;
        return { amr: source.amr ?? [], auth_time: source.authTime };
      },
      renderError: renderOidcError,
      // Registered clients are Ferry's own or an admin's: their consent is the assignment itself.
      // A grant belongs to the Ferry sign-in it was given under (revoking that sign-in ends it), so
      // one made under an earlier sign-in is not reused.
      loadExistingGrant: async (ctx) => {
        const cookie = ctx.cookies.get(o.sessionCookieName);
        const ferry = cookie ? await o.ferrySession(cookie) : null;
        const grantId =
          ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
        if (grantId) {
          const existing = await ctx.oidc.provider.Grant.find(grantId);
          if (existing && (await sessionOfGrant(o.store, o.masterKey, grantId)) === (ferry?.id ?? null))
            return existing;
        }
        const grant = new ctx.oidc.provider.Grant({
          accountId: ctx.oidc.session!.accountId,
          clientId: ctx.oidc.client!.clientId,
        });
        const scope = ctx.oidc.params?.scope;
        if (typeof scope === 'string') grant.addOIDCScope(scope);
        const saved = await grant.save();
        if (ferry) await linkGrantToSession(o.store, o.masterKey, saved, ferry.id);
        return grant;
      },
    };
    const provider = new OidcProvider(this.issuer, configuration);
    provider.proxy = o.trustProxy;
    provider.use(unauthorizedGrant);
    this.#observe(provider);
    // Client secrets are stored as their SHA-256: compare the hash of what was presented.
    provider.Client.prototype.compareClientSecret = function compareClientSecret(
      this: { clientSecret?: string },
      actual: string,
    ) {
      const stored = Buffer.from(this.clientSecret ?? '', 'utf8');
      const presented = Buffer.from(sha256Hex(actual), 'utf8');
      return stored.length === presented.length && timingSafeEqual(stored, presented);
    };
    return provider;
  }

  /** Audits what the token endpoint did, and signs the browser out of Ferry on RP-initiated logout. */
  #observe(provider: Provider): void {
    const o = this.#options;
    const audit = (input: Omit<AuditInput, 'actor'> & { actor?: AuditInput['actor'] }) =>
      o.store.db
        .transaction()
        .execute((trx) =>
          appendAudit(trx, o.store.engine, o.clock, { actor: { type: 'anonymous' }, ...input }),
        )
        .catch((err: unknown) => this.onError(err, `audit ${input.type}`));
    provider.use(async (ctx, next) => {
      await next();
      const state = ctx as unknown as Record<symbol, unknown>;
      const issued = state[ISSUED_AUDIT] as AuditInput | undefined;
      // A token response that failed after its tokens were made sends none: store none either, so a
      // token row exists exactly when its issuance record does.
      const made = takeDeferredArtifacts(ctx);
      const rows = !issued && ctx.status >= 400 ? [] : made;
      if (issued || rows.length > 0) {
        try {
          // The tokens and the event that records them, committed together (issued-writer.ts).
          await this.#issued.write(rows, issued ?? null);
        } catch (err) {
          // Every issued credential is recorded, or not issued: the token is neither stored nor sent.
          if (!isStorageFull(err)) this.onError(err, 'audit oidc.token.issued');
          ctx.status = 500;
          ctx.set('cache-control', 'no-store');
          ctx.body = {
            error: 'server_error',
            error_description: 'the token could not be recorded, so it was not issued',
          };
          state[SERVER_ERROR] = err;
        }
      }
      // The database is away or full: 503 with Retry-After (RFC 6749's temporarily_unavailable), as
      // every other endpoint answers, not a 500 that reads as a fault in Ferry.
      if (ctx.status === 500 && isDatabaseUnavailable(state[SERVER_ERROR])) {
        ctx.status = 503;
        ctx.set('retry-after', '5');
        const body = ctx.body as { error?: string } | undefined;
        if (body && typeof body === 'object' && body.error === 'server_error') {
          ctx.body = {
            error: 'temporarily_unavailable',
            error_description: isStorageFull(state[SERVER_ERROR])
              ? 'the database has no room to write; retry shortly'
              : 'the database is unreachable; retry shortly',
          };
        }
      }
    });
    provider.on('server_error', (ctx: KoaContextWithOIDC, err: unknown) => {
      (ctx as unknown as Record<symbol, unknown>)[SERVER_ERROR] = err;
    });
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const client = ctx.oidc.client?.clientId ?? null;
      const token = ctx.oidc.entities.AccessToken ?? ctx.oidc.entities.ClientCredentials;
      const accountId = ctx.oidc.entities.AccessToken?.accountId ?? null;
      // Written with the tokens before the response leaves (see the middleware above): a token whose
      // record did not commit is never sent.
      (ctx as unknown as Record<symbol, AuditInput>)[ISSUED_AUDIT] = {
        type: 'oidc.token.issued',
        outcome: 'success',
        actor: accountId
          ? { type: 'user', id: accountId, name: accountId }
          : { type: 'system', name: `oidc-client:${client}` },
        subject: accountId ?? `workload:${client}`,
        ip: ctx.ip,
        data: {
          clientId: client,
          grantType: ctx.oidc.params?.grant_type ?? null,
          grantId: token && 'grantId' in token ? (token.grantId ?? null) : null,
          // An opaque token's id (jti) IS the bearer value: the audit names it by a prefix of the key
          // it is stored under (oidc_artifacts.id), which finds the row and can't be presented anywhere.
          tokenHandle: token?.jti ? requestTokenHandle(ctx, o.masterKey, token.kind, token.jti) : null,
          scope: token?.scope ?? null,
        },
      };
    });
    provider.on(
      'grant.error',
      (ctx: KoaContextWithOIDC, error: Error & { error?: string; error_detail?: string }) => {
        void audit({
          type: 'oidc.token.refused',
          outcome: 'failure',
          subject: ctx.oidc.client?.clientId ?? 'unknown client',
          ip: ctx.ip,
          data: {
            clientId: ctx.oidc.client?.clientId ?? null,
            grantType: ctx.oidc.params?.grant_type ?? null,
            error: error.error ?? error.name,
            detail: error.error_detail ?? null,
          },
        });
      },
    );
    provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
      void audit({
        type: 'oidc.grant.revoked',
        outcome: 'success',
        subject: grantId,
        ip: ctx.ip,
        data: { clientId: ctx.oidc.client?.clientId ?? null, route: ctx.oidc.route },
      });
    });
    provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
      const cookie = ctx.cookies.get(o.sessionCookieName);
      if (!cookie) return;
      ctx.cookies.set(o.sessionCookieName, null, { path: '/' });
      void o.endFerrySession(cookie).catch((err: unknown) => this.onError(err, 'end the Ferry session'));
    });
  }
}

/**
 * A client asking for a grant its registration does not allow gets RFC 6749 §5.2's
 * `unauthorized_client`, naming the grant and what it may use (oidc-provider answers a generic
 * `invalid_request`), at the token and the device authorization endpoints alike.
 */
async function unauthorizedGrant(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  const route = ctx.oidc?.route;
  if (route !== 'token' && route !== 'device_authorization') return;
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (
    body?.error !== 'invalid_request' ||
    !/is not allowed for this client$/.test(body.error_description ?? '')
  )
    return;
  const client = ctx.oidc.client;
  if (!client) return;
  const asked =
    route === 'device_authorization' ? 'device_code' : grantNameOf(String(ctx.oidc.params?.grant_type ?? ''));
  const allowed = (client.grantTypes ?? []).map(grantNameOf);
  ctx.status = 400;
  ctx.body = {
    error: 'unauthorized_client',
    error_description: `client ${client.clientId} may not use the ${asked} grant (allowed: ${allowed.join(', ') || 'none'})`,
  };
}

/**
 * The OpenID view of a directory user: stable sub (the user id), UPN, e-mail, groups.
 * `email_verified` would be true only for an address whose ownership Ferry verified. Nothing in Ferry
 * verifies one: SCIM (RFC 7643 §4.1.2 has no verification attribute, and whatever a provisioning
 * client adds to an e-mail object is its say-so), the admin API and the tenant file all just state
 * addresses. So it is false, and a relying party that links accounts by e-mail must not rely on it.
 */
export function accountOf(user: DirectoryPrincipal): Account {
  const email = user.emails.find((e) => e.primary)?.value ?? user.emails[0]?.value;
  return {
    accountId: user.id,
    claims: async () => ({
      sub: user.id,
      preferred_username: user.userName,
      name: user.displayName ?? undefined,
      given_name: user.givenName ?? undefined,
      family_name: user.familyName ?? undefined,
      ...(email ? { email, email_verified: false } : {}),
      groups: user.groups.map((g) => g.name),
    }),
  };
}

/** Clients come from the registry (admin API), not from the artifact table; it is read-only here. */
class ClientAdapter implements Adapter {
  constructor(
    private readonly clients: OidcClients,
    private readonly proxyClient?: () => Promise<AdapterPayload>,
  ) {}
  find(id: string): Promise<AdapterPayload | undefined> {
    if (id === PROXY_CLIENT_ID) return this.proxyClient ? this.proxyClient() : Promise.resolve(undefined);
    return this.clients.metadata(id);
  }
  async upsert(): Promise<void> {
    throw new Error('clients are registered through the admin API');
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async consume(): Promise<void> {}
  async destroy(): Promise<void> {}
  async revokeByGrantId(): Promise<void> {}
}

export type { KoaContextWithOIDC };
