import { randomBytes } from 'node:crypto';
import type { AdapterPayload, ClientMetadata } from 'oidc-provider';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import { sha256Hex } from '../../identity/secrets.js';
import type { Store } from '../../store/open.js';
import type { OidcClientsTable } from '../../store/schema.js';

/** The `ferry` command line: a public native client (device flow, code + PKCE on loopback, refresh). */
export const CLI_CLIENT_ID = 'ferry-cli';

export const CLI_CLIENT: ClientMetadata = {
  client_id: CLI_CLIENT_ID,
  client_name: 'Ferry command line',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
  response_types: ['code'],
  // RFC 8252 loopback redirect: oidc-provider ignores the port for native clients.
  redirect_uris: ['http://127.0.0.1/callback'],
  id_token_signed_response_alg: 'ES256',
};

/** The account a workload's tokens are filed under, so removing the workload removes its tokens. */
export const workloadAccount = (clientId: string) => `workload:${clientId}`;

export type OidcClientKind = 'relying-party' | 'workload';

/** The grants an operator may allow a relying party, by their short names (RFC 6749, RFC 8628). */
export const RELYING_PARTY_GRANTS = ['authorization_code', 'refresh_token', 'device_code'] as const;
export type RelyingPartyGrant = (typeof RELYING_PARTY_GRANTS)[number];
/** What a relying party gets when it is registered without a choice: code + PKCE, with refresh. */
export const DEFAULT_RELYING_PARTY_GRANTS: RelyingPartyGrant[] = ['authorization_code', 'refresh_token'];
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Ferry's short grant name → the grant_type oidc-provider (and the token request) uses. */
export const grantTypeOf = (grant: string): string => (grant === 'device_code' ? DEVICE_CODE_GRANT : grant);
/** The reverse: what an operator calls the grant. */
export const grantNameOf = (grantType: string): string =>
  grantType === DEVICE_CODE_GRANT ? 'device_code' : grantType;

/**
 * Client metadata of Ferry's own (registered in the provider's extraClientMetadata): `false` lets a
 * confidential client use the code flow without PKCE. Public clients always need PKCE (RFC 9700 §2.1.1).
 */
export const REQUIRE_PKCE_METADATA = 'ferry_require_pkce';
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

export interface OidcClient {
  clientId: string;
  name: string;
  kind: OidcClientKind;
  authMethod: ClientAuthMethod;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  idTokenSigningAlg: 'ES256' | 'RS256';
  /** authorization_code, refresh_token, device_code for a relying party; client_credentials for a workload */
  grantTypes: string[];
  /** whether the code flow needs PKCE (always for public clients) */
  requirePkce: boolean;
  active: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface OidcClientInput {
  name: string;
  kind: OidcClientKind;
  authMethod?: ClientAuthMethod;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  /** public keys for private_key_jwt (a JWKS) */
  jwks?: { keys: unknown[] };
  idTokenSigningAlg?: 'ES256' | 'RS256';
  /** a relying party's grants (default authorization_code + refresh_token) */
  grantTypes?: RelyingPartyGrant[];
  /** false lets a confidential relying party leave PKCE out (default true) */
  requirePkce?: boolean;
}

/** What may change on a registered client. */
export interface OidcClientUpdate {
  grantTypes?: RelyingPartyGrant[];
  requirePkce?: boolean;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
}

const fromRow = (r: OidcClientsTable): OidcClient => {
  const m = JSON.parse(r.metadata) as ClientMetadata;
  return {
    clientId: r.id,
    name: r.name,
    kind: r.kind,
    authMethod: (m.token_endpoint_auth_method ?? 'client_secret_basic') as ClientAuthMethod,
    redirectUris: (m.redirect_uris as string[] | undefined) ?? [],
    postLogoutRedirectUris: (m.post_logout_redirect_uris as string[] | undefined) ?? [],
    idTokenSigningAlg: (m.id_token_signed_response_alg ?? 'ES256') as 'ES256' | 'RS256',
    grantTypes: ((m.grant_types as string[] | undefined) ?? []).map(grantNameOf),
    requirePkce: m.token_endpoint_auth_method === 'none' || m[REQUIRE_PKCE_METADATA] !== false,
    active: r.active === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
};

function checkRedirectUri(uri: string, field: string): void {
  const url = URL.parse(uri);
  if (!url || url.hash || !/^https?:$/.test(url.protocol)) {
    throw new InvalidInput(`${uri} is not an absolute http(s) URL without a fragment`, field);
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.protocol === 'http:' && !loopback) {
    throw new InvalidInput(`${uri}: redirect URIs must use https (http only on loopback)`, field);
  }
}

/**
 * The grant part of a relying party's metadata, checked: known grants, once each; refresh only beside
 * a grant that signs a person in; redirect URIs exactly when the code flow is allowed.
 */
function relyingPartyGrants(
  grants: readonly string[],
  authMethod: ClientAuthMethod,
  requirePkce: boolean,
  redirectUris: string[],
  postLogoutRedirectUris: string[],
): Record<string, unknown> {
  const unknown = grants.filter((g) => !(RELYING_PARTY_GRANTS as readonly string[]).includes(g));
  if (unknown.length)
    throw new InvalidInput(
      `unknown grant ${unknown.join(', ')}: a relying party may use ${RELYING_PARTY_GRANTS.join(', ')}`,
      'grantTypes',
    );
  if (new Set(grants).size !== grants.length) throw new InvalidInput('a grant is listed twice', 'grantTypes');
  if (!grants.includes('authorization_code') && !grants.includes('device_code'))
    throw new InvalidInput(
      'a relying party needs authorization_code or device_code (refresh_token alone signs nobody in)',
      'grantTypes',
    );
  const code = grants.includes('authorization_code');
  if (code && redirectUris.length === 0)
    throw new InvalidInput('authorization_code needs at least one redirect URI', 'redirectUris');
  if (!code && (redirectUris.length || postLogoutRedirectUris.length))
    throw new InvalidInput(
      'redirect URIs are for the authorization_code grant, which is not allowed',
      'redirectUris',
    );
  if (!requirePkce && authMethod === 'none')
    throw new InvalidInput('a public client (auth none) always needs PKCE', 'requirePkce');
  return {
    grant_types: grants.map(grantTypeOf),
    response_types: code ? ['code'] : [],
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    ...(requirePkce ? {} : { [REQUIRE_PKCE_METADATA]: false }),
  };
}

/**
 * The relying parties and workload identities allowed to use Ferry's OpenID provider. Secrets are
 * generated here, shown once, and kept only as their SHA-256 (compared in constant time).
 */
/** How long this instance reuses a client's metadata (the token endpoint reads it on every grant). */
const METADATA_CACHE_MS = 5_000;

export class OidcClients {
  readonly #cache = new Map<string, { at: number; metadata: AdapterPayload | undefined }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(
    ctx: AuditContext,
    input: OidcClientInput,
  ): Promise<{ client: OidcClient; secret: string | null }> {
    const name = input.name.trim();
    if (!/^[\w .@-]{1,64}$/.test(name))
      throw new InvalidInput('name must be 1-64 letters, digits, spaces or . _ @ -', 'name');
    const authMethod: ClientAuthMethod =
      input.authMethod ?? (input.jwks ? 'private_key_jwt' : 'client_secret_basic');
    if (authMethod === 'private_key_jwt' && !input.jwks?.keys?.length) {
      throw new InvalidInput('private_key_jwt needs the public keys (jwks) the client signs with', 'jwks');
    }
    if (authMethod === 'none' && input.kind === 'workload') {
      throw new InvalidInput('a workload must authenticate: use a secret or private_key_jwt', 'authMethod');
    }
    const redirectUris = input.redirectUris ?? [];
    for (const u of redirectUris) checkRedirectUri(u, 'redirectUris');
    for (const u of input.postLogoutRedirectUris ?? []) checkRedirectUri(u, 'postLogoutRedirectUris');
    if (input.kind === 'workload' && (input.grantTypes || input.requirePkce !== undefined))
      throw new InvalidInput(
        'a workload uses client_credentials only: grants are for relying parties',
        'grantTypes',
      );
    const clientId = `${input.kind === 'workload' ? 'wl' : 'rp'}-${randomBytes(10).toString('hex')}`;
    const secret =
      authMethod === 'client_secret_basic' || authMethod === 'client_secret_post'
        ? randomBytes(32).toString('base64url')
        : null;
    const metadata: Omit<ClientMetadata, 'client_id'> = {
      client_name: name,
      token_endpoint_auth_method: authMethod,
      id_token_signed_response_alg: input.idTokenSigningAlg ?? 'ES256',
      ...(input.kind === 'workload'
        ? { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }
        : relyingPartyGrants(
            input.grantTypes ?? DEFAULT_RELYING_PARTY_GRANTS,
            authMethod,
            input.requirePkce ?? true,
            redirectUris,
            input.postLogoutRedirectUris ?? [],
          )),
      ...(secret ? { client_secret: sha256Hex(secret) } : {}),
      ...(input.jwks ? { jwks: input.jwks as ClientMetadata['jwks'] } : {}),
    };
    const now = iso(this.clock.now());
    const row: OidcClientsTable = {
      id: clientId,
      name,
      kind: input.kind,
      metadata: JSON.stringify(metadata),
      active: 1,
      created_at: now,
      updated_at: now,
    };
    await this.store.db.transaction().execute(async (trx) => {
      const clash = await trx
        .selectFrom('oidc_clients')
        .select('id')
        .where('name', '=', name)
        .executeTakeFirst();
      if (clash) throw new Conflict(`an OpenID client named ${name} already exists (${clash.id})`);
      await trx.insertInto('oidc_clients').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'oidc-client.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: clientId,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          name,
          kind: input.kind,
          authMethod,
          redirectUris,
          grantTypes: fromRow(row).grantTypes,
          requirePkce: fromRow(row).requirePkce,
        },
      });
    });
    return { client: fromRow(row), secret };
  }

  /** Changes a relying party's grants, PKCE rule or redirect URIs; checked like a new registration. */
  async update(ctx: AuditContext, ref: string, change: OidcClientUpdate): Promise<OidcClient> {
    const client = await this.get(ref);
    if (client.kind !== 'relying-party')
      throw new InvalidInput(
        'a workload uses client_credentials only: grants are for relying parties',
        'grantTypes',
      );
    for (const u of change.redirectUris ?? []) checkRedirectUri(u, 'redirectUris');
    for (const u of change.postLogoutRedirectUris ?? []) checkRedirectUri(u, 'postLogoutRedirectUris');
    const grants = relyingPartyGrants(
      change.grantTypes ?? (client.grantTypes as RelyingPartyGrant[]),
      client.authMethod,
      change.requirePkce ?? client.requirePkce,
      change.redirectUris ?? client.redirectUris,
      change.postLogoutRedirectUris ?? client.postLogoutRedirectUris,
    );
    const updated = await this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('oidc_clients')
        .selectAll()
        .where('id', '=', client.clientId)
        .executeTakeFirstOrThrow();
      const { [REQUIRE_PKCE_METADATA]: _old, ...metadata } = JSON.parse(row.metadata) as Record<
        string,
        unknown
      >;
      const next: OidcClientsTable = {
        ...row,
        metadata: JSON.stringify({ ...metadata, ...grants }),
        updated_at: iso(this.clock.now()),
      };
      await trx
        .updateTable('oidc_clients')
        .set({ metadata: next.metadata, updated_at: next.updated_at })
        .where('id', '=', client.clientId)
        .execute();
      const after = fromRow(next);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'oidc-client.updated',
        outcome: 'success',
        actor: ctx.actor,
        subject: client.clientId,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          name: client.name,
          grantTypes: after.grantTypes,
          requirePkce: after.requirePkce,
          redirectUris: after.redirectUris,
          postLogoutRedirectUris: after.postLogoutRedirectUris,
        },
      });
      return after;
    });
    this.#cache.delete(client.clientId);
    return updated;
  }

  async list(kind?: OidcClientKind): Promise<OidcClient[]> {
    let q = this.store.db.selectFrom('oidc_clients').selectAll();
    if (kind) q = q.where('kind', '=', kind);
    return (await q.orderBy('name').execute()).map(fromRow);
  }

  /** By client id or by name. */
  async get(ref: string): Promise<OidcClient> {
    const row = await this.store.db
      .selectFrom('oidc_clients')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
      .executeTakeFirst();
    if (!row) throw new NotFound('OpenID client', ref);
    return fromRow(row);
  }

  /** Deletes the client and every token it holds. */
  async remove(ctx: AuditContext, ref: string): Promise<void> {
    const client = await this.get(ref);
    this.#cache.delete(client.clientId);
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('oidc_clients').where('id', '=', client.clientId).execute();
      await trx
        .deleteFrom('assignments')
        .where('principal_type', '=', 'workload')
        .where('principal_id', '=', client.clientId)
        .execute();
      // Workload tokens carry the client as their account (see adapter.ts); users' tokens for a
      // relying party stop working with the client itself (the caller check looks the client up).
      await trx
        .deleteFrom('oidc_artifacts')
        .where('account_id', '=', workloadAccount(client.clientId))
        .execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'oidc-client.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: client.clientId,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { name: client.name, kind: client.kind },
      });
    });
  }

  /**
   * What oidc-provider's Client adapter returns: the stored metadata of an active client. Reused for a
   * few seconds; a removal takes effect at once here and within that time on other instances (their
   * tokens are deleted with the client in any case).
   */
  async metadata(clientId: string): Promise<AdapterPayload | undefined> {
    if (clientId === CLI_CLIENT_ID) return undefined; // static, from the configuration
    const now = this.clock.now().getTime();
    const hit = this.#cache.get(clientId);
    if (hit && now - hit.at < METADATA_CACHE_MS) return hit.metadata;
    const metadata = await this.#load(clientId);
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(clientId, { at: now, metadata });
    return metadata;
  }

  async #load(clientId: string): Promise<AdapterPayload | undefined> {
    const row = await this.store.db
      .selectFrom('oidc_clients')
      .select(['metadata', 'active'])
      .where('id', '=', clientId)
      .executeTakeFirst();
    if (!row || row.active !== 1) return undefined;
    return { ...(JSON.parse(row.metadata) as AdapterPayload), client_id: clientId };
  }
}
