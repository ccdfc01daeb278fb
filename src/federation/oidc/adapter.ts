import type { Adapter, AdapterPayload } from 'oidc-provider';
import { type Clock, iso } from '../../clock.js';
import type { Store } from '../../store/open.js';
import { workloadAccount } from './clients.js';

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
 * oidc-provider's storage in Ferry's database (SQLite or PostgreSQL): one table keyed by
 * (model, id), with the lookups the library needs (grant, user code, interaction uid) and the
 * account as columns. Nothing lives in process memory, so any instance can continue a flow another
 * one started. Expiry is enforced by oidc-provider on read; the purge worker deletes old rows.
 * Clients are not stored here: they come from the client registry (see clients.ts).
 */
export class StoreAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const row = {
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grant_id: this.model === 'Grant' ? id : GRANTABLE.has(this.model) ? (payload.grantId ?? null) : null,
      user_code: payload.userCode ?? null,
      uid: payload.uid ?? null,
      account_id:
        payload.accountId ??
        (this.model === 'ClientCredentials' && payload.clientId ? workloadAccount(payload.clientId) : null),
      expires_at: expiresIn ? iso(new Date(this.clock.now().getTime() + expiresIn * 1000)) : null,
      consumed_at: null,
    };
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
    return this.#one('id', id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#one('user_code', userCode);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#one('uid', uid);
  }

  async consume(id: string): Promise<void> {
    await this.store.db
      .updateTable('oidc_artifacts')
      .set({ consumed_at: iso(this.clock.now()) })
      .where('model', '=', this.model)
      .where('id', '=', id)
      .execute();
  }

  async destroy(id: string): Promise<void> {
    await this.store.db
      .deleteFrom('oidc_artifacts')
      .where('model', '=', this.model)
      .where('id', '=', id)
      .execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.db.deleteFrom('oidc_artifacts').where('grant_id', '=', grantId).execute();
  }

  async #one(column: 'id' | 'user_code' | 'uid', value: string): Promise<AdapterPayload | undefined> {
    if (typeof value !== 'string' || value.length === 0 || value.length > 512) return undefined;
    const row = await this.store.db
      .selectFrom('oidc_artifacts')
      .select(['payload', 'consumed_at'])
      .where('model', '=', this.model)
      .where(column, '=', value)
      .executeTakeFirst();
    if (!row) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (row.consumed_at) payload.consumed = Math.floor(Date.parse(row.consumed_at) / 1000);
    return payload;
  }
}

/** Deletes artifacts that expired more than a day ago (oidc-provider already refuses them). */
export async function purgeExpiredOidcArtifacts(store: Store, clock: Clock): Promise<number> {
  const cutoff = iso(new Date(clock.now().getTime() - 86_400_000));
  const result = await store.db
    .deleteFrom('oidc_artifacts')
    .where('expires_at', '<', cutoff)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
