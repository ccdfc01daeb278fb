import type { Kysely } from 'kysely';
import { addMs, type Clock, iso } from '../../clock.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Database } from '../../store/schema.js';
import { sha256Hex } from '../secrets.js';

export interface PendingSignin {
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

/**
 * Sign-ins sent to the identity provider, kept in the database (any instance can finish one) under the
 * hash of their state. Taking one deletes it: a state comes back once, a replay finds nothing.
 */
export class PendingSignins {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
    private readonly lifetimeMs: number,
  ) {}

  async save(signin: PendingSignin): Promise<void> {
    const now = this.clock.now();
    const stateHash = sha256Hex(signin.state);
    await this.db
      .insertInto('upstream_signin_requests')
      .values({
        state_hash: stateHash,
        provider: signin.provider,
        nonce: signin.nonce,
        code_verifier_sealed: this.masterKey.seal(signin.codeVerifier, `upstream-pkce:${stateHash}`),
        return_to: signin.returnTo,
        created_at: iso(now),
        expires_at: iso(addMs(now, this.lifetimeMs)),
      })
      .execute();
  }

  /** The live sign-in with this state, removed so it can't be used again; null when none. */
  async take(provider: string, state: string): Promise<PendingSignin | null> {
    if (!state || state.length > 256) return null;
    const stateHash = sha256Hex(state);
    const row = await this.db
      .deleteFrom('upstream_signin_requests')
      .where('state_hash', '=', stateHash)
      .where('provider', '=', provider)
      .returningAll()
      .executeTakeFirst();
    if (!row || row.expires_at <= iso(this.clock.now())) return null;
    return {
      provider,
      state,
      nonce: row.nonce,
      codeVerifier: this.masterKey.unseal(row.code_verifier_sealed, `upstream-pkce:${stateHash}`),
      returnTo: row.return_to,
    };
  }

  /** Removes sign-ins that never came back (run by a background worker). */
  async purgeExpired(): Promise<number> {
    const res = await this.db
      .deleteFrom('upstream_signin_requests')
      .where('expires_at', '<=', iso(this.clock.now()))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
