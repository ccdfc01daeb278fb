import type { Insertable } from 'kysely';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { type Clock, iso } from '../../clock.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Store } from '../../store/open.js';
import type { OidcArtifactsTable } from '../../store/schema.js';
import { workloadAccount } from './clients.js';
import { loadedOidcProvider } from './library.js';

/** The models whose artifacts belong to one grant: revoking the grant removes them all. */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
]);

/**
 * The tokens the token endpoint issues. Their rows are not written when oidc-provider saves them but
 * kept on the request (DEFERRED) and written with the request's `oidc.token.issued` audit event, in
 * one statement on PostgreSQL (see issued-writer.ts, which also group-commits concurrent requests): a
 * token exists exactly when its record does, and a grant costs one round trip instead of four.
 */
const DEFERRABLE = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);
const DEFERRED = Symbol('ferry.oidc.deferredArtifacts');
/** The last token the request deferred, with its stored key: the audit names it without a second HMAC. */
const LAST_DEFERRED = Symbol('ferry.oidc.lastDeferred');

type ArtifactRow = Insertable<OidcArtifactsTable>;
type RequestContext = Record<symbol, unknown> & { oidc?: { route?: string } };

/** The token rows this request's token endpoint deferred (and forgets them). */
export function takeDeferredArtifacts(ctx: object): ArtifactRow[] {
  const c = ctx as RequestContext;
  const rows = (c[DEFERRED] as ArtifactRow[] | undefined) ?? [];
  c[DEFERRED] = undefined;
  return rows;
}

/** The stored key of an artifact's id (opaque tokens, codes and cookies are their own id). */
export function artifactKey(masterKey: MasterKey, model: string, id: string): string {
  return masterKey.lookupKey('oidc-artifact', `${model}:${id}`);
}

/**
 * How the audit trail names a token: the first 16 characters of its stored key. Not a credential
 * (a keyed hash can't be inverted or presented), yet an admin finds the row with `id LIKE 'handle%'`.
 */
export const tokenHandle = (masterKey: MasterKey, model: string, id: string) =>
  artifactKey(masterKey, model, id).slice(0, 16);

/**
 * tokenHandle of a token this request's token endpoint just deferred: its key was computed when it was
 * saved, so the handle reuses it (one HMAC per grant instead of two); any other token is keyed anew.
 */
export function requestTokenHandle(ctx: object, masterKey: MasterKey, model: string, id: string): string {
  const last = (ctx as RequestContext)[LAST_DEFERRED] as
    | { model: string; id: string; key: string }
    | undefined;
  if (last && last.model === model && last.id === id) return last.key.slice(0, 16);
  return tokenHandle(masterKey, model, id);
}

/** The stored key of a grant id: the Grant row's own key, which its tokens carry in grant_id. */
export const grantKey = (masterKey: MasterKey, grantId: string) => artifactKey(masterKey, 'Grant', grantId);

/**
 * oidc-provider's storage in Ferry's database (SQLite or PostgreSQL): one table keyed by
 * (model, id), with the lookups the library needs (grant, user code, interaction uid) and the
 * account as columns. Nothing lives in process memory, so any instance can continue a flow another
 * one started. Expiry is enforced by oidc-provider on read; the purge worker deletes old rows.
 * Clients are not stored here: they come from the client registry (see clients.ts).
 *
 * Nothing stored can be presented back (docs/decisions/0019): an opaque access or refresh token,
 * a code, a session cookie or an interaction uid IS the artifact's id, so every lookup column (id,
 * grant_id, user_code, uid) holds a keyed hash under the master key, and the payload (which repeats
 * the id as `jti`, and names the session cookie inside interactions) is sealed, bound to its row.
 */
export class StoreAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
  ) {}

  #key(id: string): string {
    return artifactKey(this.masterKey, this.model, id);
  }

  #userCodeKey(userCode: string): string {
    return this.masterKey.lookupKey('oidc-user-code', userCode);
  }

  #uidKey(uid: string): string {
    return this.masterKey.lookupKey('oidc-uid', `${this.model}:${uid}`);
  }

  #sealContext(key: string): string {
    return `oidc_artifacts:${this.model}:${key}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.#key(id);
    const grantId =
      this.model === 'Grant' ? id : GRANTABLE.has(this.model) ? (payload.grantId ?? null) : null;
    const row = {
      model: this.model,
      id: key,
      payload: this.masterKey.seal(JSON.stringify(payload), this.#sealContext(key)),
      grant_id: grantId ? grantKey(this.masterKey, grantId) : null,
      user_code: payload.userCode ? this.#userCodeKey(payload.userCode) : null,
      uid: payload.uid ? this.#uidKey(payload.uid) : null,
      account_id:
        payload.accountId ??
        (this.model === 'ClientCredentials' && payload.clientId ? workloadAccount(payload.clientId) : null),
      expires_at: expiresIn ? iso(new Date(this.clock.now().getTime() + expiresIn * 1000)) : null,
      consumed_at: null,
    };
    if (DEFERRABLE.has(this.model)) {
      const ctx = loadedOidcProvider()?.default.ctx as RequestContext | undefined;
      if (ctx?.oidc?.route === 'token') {
        let deferred = ctx[DEFERRED] as ArtifactRow[] | undefined;
        if (!deferred) {
          deferred = [];
          ctx[DEFERRED] = deferred;
        }
        deferred.push(row);
        ctx[LAST_DEFERRED] = { model: this.model, id, key };
        return;
      }
    }
    await this.store.db
      .insertInto('oidc_artifacts')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['model', 'id']).doUpdateSet({
          payload: row.payload,
          grant_id: row.grant_id,
          user_code: row.user_code,
          uid: row.uid,
          account_id: row.account_id,
          expires_at: row.expires_at,
        }),
      )
      .execute();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return valid(id) ? this.#one('id', this.#key(id)) : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return valid(userCode) ? this.#one('user_code', this.#userCodeKey(userCode)) : undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return valid(uid) ? this.#one('uid', this.#uidKey(uid)) : undefined;
  }

  async consume(id: string): Promise<void> {
    await this.store.db
      .updateTable('oidc_artifacts')
      .set({ consumed_at: iso(this.clock.now()) })
      .where('model', '=', this.model)
      .where('id', '=', this.#key(id))
      .execute();
  }

  async destroy(id: string): Promise<void> {
    await this.store.db
      .deleteFrom('oidc_artifacts')
      .where('model', '=', this.model)
      .where('id', '=', this.#key(id))
      .execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.db
      .deleteFrom('oidc_artifacts')
      .where('grant_id', '=', grantKey(this.masterKey, grantId))
      .execute();
  }

  async #one(column: 'id' | 'user_code' | 'uid', key: string): Promise<AdapterPayload | undefined> {
    const row = await this.store.db
      .selectFrom('oidc_artifacts')
      .select(['id', 'payload', 'consumed_at'])
      .where('model', '=', this.model)
      .where(column, '=', key)
      .executeTakeFirst();
    if (!row) return undefined;
    let json: string;
    try {
      json = this.masterKey.unseal(row.payload, this.#sealContext(row.id));
    } catch {
      // Sealed under another key, moved from another row, or written before 0013: not an artifact.
      return undefined;
    }
    const payload = JSON.parse(json) as AdapterPayload;
    if (row.consumed_at) payload.consumed = Math.floor(Date.parse(row.consumed_at) / 1000);
    return payload;
  }
}

const valid = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= 512;

/** Deletes artifacts that expired more than a day ago (oidc-provider already refuses them). */
export async function purgeExpiredOidcArtifacts(store: Store, clock: Clock): Promise<number> {
  const cutoff = iso(new Date(clock.now().getTime() - 86_400_000));
  const result = await store.db
    .deleteFrom('oidc_artifacts')
    .where('expires_at', '<', cutoff)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Records the Ferry sign-in session a grant was given under: revoking that session (the person, an
 * admin, signing out) deletes the grant and every code and token issued on it (identity/sessions.ts).
 */
export async function linkGrantToSession(
  store: Store,
  masterKey: MasterKey,
  grantId: string,
  sessionId: string,
): Promise<void> {
  await store.db
    .updateTable('oidc_artifacts')
    .set({ session_id: sessionId })
    .where('model', '=', 'Grant')
    .where('id', '=', grantKey(masterKey, grantId))
    .execute();
}

/** The Ferry sign-in session a grant was given under, or null (a workload's, or unknown). */
export async function sessionOfGrant(
  store: Store,
  masterKey: MasterKey,
  grantId: string,
): Promise<string | null> {
  const row = await store.db
    .selectFrom('oidc_artifacts')
    .select('session_id')
    .where('model', '=', 'Grant')
    .where('id', '=', grantKey(masterKey, grantId))
    .executeTakeFirst();
  return row?.session_id ?? null;
}
