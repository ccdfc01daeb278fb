import type { Kysely } from 'kysely';
import { anonymous } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { addMs, type Clock, iso } from '../clock.js';
import type { Engine } from '../store/open.js';
import type { Database, SigninThrottleTable } from '../store/schema.js';
import { canonicalUserName } from './users.js';

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

/**
 * The account's counter, keyed on its canonical name (NFKC, case-folded): the user id, another case
 * or a Unicode variant of the name all reach the same counter (see docs/decisions/0018).
 */
export const accountKey = (userName: string): string => `account:${canonicalUserName(userName)}`;
export const addressKey = (ip: string): string => `address:${ip}`;

/** The answer to "may this attempt be evaluated?", given before any password is hashed. */
export type Reservation = { granted: true; keys: string[] } | { granted: false; lockedKeys: string[] };

type Row = Pick<SigninThrottleTable, 'key' | 'failures' | 'window_started_at' | 'locked_until' | 'refused'>;

/**
 * Failure counters live in the database, so every instance behind a load balancer sees the same
 * count and a lockout on one holds on all.
 *
 * An attempt is reserved before its password is hashed: the reservation counts it as a failure in
 * the same locked read-modify-write that checks the threshold, so however many attempts arrive at
 * once, at most the threshold of them per window are ever evaluated. A success gives its
 * reservation back. Refusals are counted on the row, not audited one by one; one summary event per
 * key and lock records how many there were.
 *
 * Lock order, to keep PostgreSQL free of deadlocks: throttle rows in key order, then the audit head.
 */
export class SigninThrottle {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly policy: ThrottlePolicy,
  ) {}

  private max(key: string): number {
    return key.startsWith('account:') ? this.policy.accountMaxFailures : this.policy.addressMaxFailures;
  }

  /** The rows of `keys`, created when missing and locked for this transaction, in key order. */
  private async lockRows(trx: Kysely<Database>, keys: string[]): Promise<Row[]> {
    const now = iso(this.clock.now());
    const rows: Row[] = [];
    for (const key of [...new Set(keys)].sort()) {
      // Concurrent first attempts for one key must not collide on insert, and concurrent updates
      // must not lose counts: make the row exist, then lock it (SQLite transactions are IMMEDIATE).
      await trx
        .insertInto('signin_throttle')
        .values({ key, failures: 0, window_started_at: now, locked_until: null, refused: 0 })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      let select = trx
        .selectFrom('signin_throttle')
        .select(['key', 'failures', 'window_started_at', 'locked_until', 'refused'])
        .where('key', '=', key);
      if (this.engine === 'postgres') select = select.forUpdate();
      const row = await select.executeTakeFirstOrThrow();
      rows.push({ ...row, failures: Number(row.failures), refused: Number(row.refused) });
    }
    return rows;
  }

  /** A lock that has run out, or a window that has, starts the count again (after summarising refusals). */
  private async renewIfEnded(trx: Kysely<Database>, row: Row): Promise<Row> {
    const nowDate = this.clock.now();
    const now = iso(nowDate);
    const lockEnded = row.locked_until !== null && row.locked_until <= now;
    const windowEnded =
      row.locked_until === null && row.window_started_at < iso(addMs(nowDate, -this.policy.windowMs));
    if (!lockEnded && !windowEnded) return row;
    await this.summarise(trx, row);
    return { ...row, failures: 0, window_started_at: now, locked_until: null, refused: 0 };
  }

  /** One audit event per key and lock (or window) with the number of attempts refused unevaluated. */
  private async summarise(trx: Kysely<Database>, row: Row): Promise<void> {
    if (row.refused <= 0) return;
    const account = row.key.startsWith('account:');
    await appendAudit(trx, this.engine, this.clock, {
      type: 'signin.refusals',
      outcome: 'failure',
      actor: anonymous,
      subject: account ? row.key.slice('account:'.length) : null,
      ip: account ? null : row.key.slice('address:'.length),
      data: {
        counter: account ? 'account' : 'address',
        refused: row.refused,
        windowStartedAt: row.window_started_at,
        lockedUntil: row.locked_until,
      },
    });
  }

  /**
   * Reserves one attempt on every key, atomically, before anything is evaluated. Refused when any
   * key is locked or already has the threshold of attempts in this window (evaluated or in flight);
   * a refusal is counted on the locked keys.
   */
  async reserve(keys: string[]): Promise<Reservation> {
    const now = iso(this.clock.now());
    return this.db.transaction().execute(async (trx): Promise<Reservation> => {
      const rows: Row[] = [];
      for (const row of await this.lockRows(trx, keys)) rows.push(await this.renewIfEnded(trx, row));
      const lockedKeys = rows
        .filter((r) => (r.locked_until !== null && r.locked_until > now) || r.failures >= this.max(r.key))
        .map((r) => r.key);
      for (const r of rows) {
        const refused = lockedKeys.includes(r.key);
        await trx
          .updateTable('signin_throttle')
          .set({
            failures: lockedKeys.length === 0 ? r.failures + 1 : r.failures,
            window_started_at: r.window_started_at,
            locked_until: r.locked_until,
            refused: refused ? r.refused + 1 : r.refused,
          })
          .where('key', '=', r.key)
          .execute();
      }
      return lockedKeys.length > 0 ? { granted: false, lockedKeys } : { granted: true, keys: rows.map((r) => r.key) };
    });
  }

  /**
   * Settles failed attempts: a reserved one is already counted; an unreserved one (a step that
   * reserved nothing, such as an expired pending sign-in) is counted now. Locks the keys that
   * reached their threshold; returns the keys this failure locked.
   */
  async recordFailure(trx: Kysely<Database>, keys: string[], reserved = false): Promise<string[]> {
    const nowDate = this.clock.now();
    const lockedUntil = iso(addMs(nowDate, this.policy.lockoutMs));
    const newlyLocked: string[] = [];
    for (let row of await this.lockRows(trx, keys)) {
      if (!reserved) {
        row = await this.renewIfEnded(trx, row);
        row = { ...row, failures: row.failures + 1 };
      }
      const locked = row.locked_until !== null && row.locked_until > iso(nowDate);
      const locks = !locked && row.failures >= this.max(row.key);
      if (locks) newlyLocked.push(row.key);
      await trx
        .updateTable('signin_throttle')
        .set({
          failures: row.failures,
          window_started_at: row.window_started_at,
          locked_until: locks ? lockedUntil : row.locked_until,
          refused: row.refused,
        })
        .where('key', '=', row.key)
        .execute();
    }
    return newlyLocked;
  }

  /**
   * A successful step gives its reservations back: the account's counter is cleared, the
   * address's reservation returned (one good sign-in must not launder a spray from that address).
   * Call it before anything else in the transaction that locks rows (see the lock order above).
   */
  async recordSuccess(trx: Kysely<Database>, keys: string[], reserved = true): Promise<void> {
    for (const row of await this.lockRows(trx, keys)) {
      if (row.key.startsWith('account:')) {
        await this.summarise(trx, row);
        await trx.deleteFrom('signin_throttle').where('key', '=', row.key).execute();
      } else if (reserved) {
        await trx
          .updateTable('signin_throttle')
          .set({ failures: Math.max(0, row.failures - 1) })
          .where('key', '=', row.key)
          .execute();
      }
    }
  }

  /**
   * Writes the summary of every lock or window that has ended with refusals nobody summarised yet
   * (the background worker calls this; a later attempt on the key would do it too).
   */
  async summariseEnded(): Promise<number> {
    const nowDate = this.clock.now();
    const now = iso(nowDate);
    const windowStart = iso(addMs(nowDate, -this.policy.windowMs));
    const due = await this.db
      .selectFrom('signin_throttle')
      .select('key')
      .where('refused', '>', 0)
      .where((eb) =>
        eb.or([
          eb('locked_until', '<=', now),
          eb.and([eb('locked_until', 'is', null), eb('window_started_at', '<', windowStart)]),
        ]),
      )
      .limit(500)
      .execute();
    let n = 0;
    for (const { key } of due) {
      await this.db.transaction().execute(async (trx) => {
        const [row] = await this.lockRows(trx, [key]);
        const renewed = await this.renewIfEnded(trx, row!);
        if (renewed === row) return;
        n += 1;
        await trx
          .updateTable('signin_throttle')
          .set({
            failures: renewed.failures,
            window_started_at: renewed.window_started_at,
            locked_until: renewed.locked_until,
            refused: renewed.refused,
          })
          .where('key', '=', key)
          .execute();
      });
    }
    return n;
  }

  /** Lets an administrator lift a lockout early. */
  async clear(trx: Kysely<Database>, key: string): Promise<void> {
    const [row] = await this.lockRows(trx, [key]);
    await this.summarise(trx, row!);
    await trx.deleteFrom('signin_throttle').where('key', '=', key).execute();
  }
}
