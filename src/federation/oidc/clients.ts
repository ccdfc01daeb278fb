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
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

export interface OidcClient {
  clientId: string;
  name: string;
  kind: OidcClientKind;
  authMethod: ClientAuthMethod;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  idTokenSigningAlg: 'ES256' | 'RS256';
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
    if (input.kind === 'relying-party' && redirectUris.length === 0) {
      throw new InvalidInput('a relying party needs at least one redirect URI', 'redirectUris');
    }
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
        : {
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            redirect_uris: redirectUris,
            post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
          }),
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
        data: { name, kind: input.kind, authMethod, redirectUris },
      });
    });
    return { client: fromRow(row), secret };
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
