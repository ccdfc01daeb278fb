import type { Kysely } from 'kysely';
import { addMs, type Clock, iso } from '../clock.js';
import type { Engine } from '../store/open.js';
import type { Database } from '../store/schema.js';

export interface ThrottlePolicy {
  /** failures per account within the window before the account is locked */
  accountMaxFailures: number;
  /** failures per source address within the window before the address is locked */
  addressMaxFailures: number;
  windowMs: number;
  lockoutMs: number;
}

export const DEFAULT_THROTTLE: ThrottlePolicy = {
  accountMaxFailures: 5,
  addressMaxFailures: 20,
  windowMs: 15 * 60_000,
  lockoutMs: 15 * 60_000,
};

export const accountKey = (userNameKey: string): string => `account:${userNameKey}`;
export const addressKey = (ip: string): string => `address:${ip}`;

/**
 * Failure counters live in the database, so every instance behind a load balancer sees the same
 * count and a lockout on one holds on all.
 */
export class SigninThrottle {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly policy: ThrottlePolicy,
  ) {}

  /** The keys (of those given) that are locked right now. */
  async locked(keys: string[]): Promise<string[]> {
    const now = iso(this.clock.now());
    const rows = await this.db
      .selectFrom('signin_throttle')
      .select(['key', 'locked_until'])
      .where('key', 'in', keys)
      .execute();
    return rows.filter((r) => r.locked_until !== null && r.locked_until > now).map((r) => r.key);
  }

  /** Counts a failure against each key; returns the keys this failure locked. */
  async recordFailure(trx: Kysely<Database>, keys: string[]): Promise<string[]> {
    const nowDate = this.clock.now();
    const now = iso(nowDate);
    const windowStart = iso(addMs(nowDate, -this.policy.windowMs));
    const newlyLocked: string[] = [];
    for (const key of keys) {
      const max = key.startsWith('account:')
        ? this.policy.accountMaxFailures
        : this.policy.addressMaxFailures;
      // Concurrent first failures for one key (a parallel spray) must not collide on insert, and
      // concurrent updates must not lose counts: make the row exist, then lock it.
      await trx
        .insertInto('signin_throttle')
        .values({ key, failures: 0, window_started_at: now, locked_until: null })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      let select = trx.selectFrom('signin_throttle').selectAll().where('key', '=', key);
      if (this.engine === 'postgres') select = select.forUpdate();
      const row = await select.executeTakeFirstOrThrow();
      const fresh = row.window_started_at < windowStart;
      const failures = fresh ? 1 : Number(row.failures) + 1;
      const alreadyLocked = row.locked_until !== null && row.locked_until > now;
      const locks = failures >= max;
      if (locks && !alreadyLocked) newlyLocked.push(key);
      await trx
        .updateTable('signin_throttle')
        .set({
          failures: locks ? 0 : failures,
          window_started_at: fresh || locks ? now : row.window_started_at,
          locked_until: locks ? iso(addMs(nowDate, this.policy.lockoutMs)) : row.locked_until,
        })
        .where('key', '=', key)
        .execute();
    }
    return newlyLocked;
  }

  /** A successful sign-in clears the account's counter (not the address's: one good login shouldn't launder a spray). */
  async recordSuccess(trx: Kysely<Database>, account: string): Promise<void> {
    await trx.deleteFrom('signin_throttle').where('key', '=', account).execute();
  }

  /** Lets an administrator lift a lockout early. */
  async clear(trx: Kysely<Database>, key: string): Promise<void> {
    await trx.deleteFrom('signin_throttle').where('key', '=', key).execute();
  }
}
