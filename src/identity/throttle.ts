import type { ExpressionBuilder, Kysely } from 'kysely';
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
   * Reserves one attempt on every key before anything is evaluated. Refused when any key is locked
   * or already has the threshold of attempts in this window (evaluated or in flight); a refusal is
   * counted on the key that refused. Each step is one atomic statement (no transaction, no row lock
   * held across round trips), so a burst neither piles up on row locks nor holds pool connections.
   */
  async reserve(keys: string[]): Promise<Reservation> {
    const granted: string[] = [];
    for (const key of [...new Set(keys)].sort()) {
      if (await this.reserveOne(key)) {
        granted.push(key);
        continue;
      }
      // Each key's count stays within its threshold on its own; give back what this attempt took.
      for (const k of granted) await this.giveBack(this.db, k);
      return { granted: false, lockedKeys: [key] };
    }
    return { granted: true, keys: granted };
  }

  private async reserveOne(key: string): Promise<boolean> {
    const nowDate = this.clock.now();
    const now = iso(nowDate);
    const windowStart = iso(addMs(nowDate, -this.policy.windowMs));
    const max = this.max(key);
    for (let round = 0; round < 3; round++) {
      // Granted: the count rises, in one statement that checks the threshold on the locked row.
      const grantedRow = await this.db
        .insertInto('signin_throttle')
        .values({ key, failures: 1, window_started_at: now, locked_until: null, refused: 0 })
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet((eb) => ({ failures: eb(eb.ref('signin_throttle.failures'), '+', 1) }))
            .where((eb) =>
              eb.and([
                eb('signin_throttle.failures', '<', max),
                this.live(eb, now, windowStart),
                eb.or([
                  eb('signin_throttle.locked_until', 'is', null),
                  eb('signin_throttle.locked_until', '<=', now),
                ]),
              ]),
            ),
        )
        .returning('key')
        .executeTakeFirst();
      if (grantedRow) return true;
      // Refused by a live lock or a full window: counted, not evaluated.
      const refusedRow = await this.db
        .updateTable('signin_throttle')
        .set((eb) => ({ refused: eb(eb.ref('refused'), '+', 1) }))
        .where('key', '=', key)
        .where((eb) => this.live(eb, now, windowStart))
        .returning('key')
        .executeTakeFirst();
      if (refusedRow) return false;
      // The lock or window has ended: summarise it and start a new count, then try again.
      await this.db.transaction().execute(async (trx) => {
        const [row] = await this.lockRows(trx, [key]);
        const renewed = await this.renewIfEnded(trx, row!);
        if (renewed !== row) await this.write(trx, renewed);
      });
    }
    return false;
  }

  /** The row's lock, or its window when unlocked, has not ended. */
  private live(eb: ExpressionBuilder<Database, 'signin_throttle'>, now: string, windowStart: string) {
    return eb.or([
      eb('signin_throttle.locked_until', '>', now),
      eb.and([
        eb('signin_throttle.locked_until', 'is', null),
        eb('signin_throttle.window_started_at', '>=', windowStart),
      ]),
    ]);
  }

  private async giveBack(db: Kysely<Database>, key: string): Promise<void> {
    await db
      .updateTable('signin_throttle')
      .set((eb) => ({ failures: eb(eb.ref('failures'), '-', 1) }))
      .where('key', '=', key)
      .where('failures', '>', 0)
      .execute();
  }

  private async write(trx: Kysely<Database>, row: Row): Promise<void> {
    await trx
      .updateTable('signin_throttle')
      .set({
        failures: row.failures,
        window_started_at: row.window_started_at,
        locked_until: row.locked_until,
        refused: row.refused,
      })
      .where('key', '=', row.key)
      .execute();
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
    if (reserved) {
      // Already counted: lock the keys that have reached their threshold, in one statement each.
      for (const key of [...new Set(keys)].sort()) {
        const locked = await trx
          .updateTable('signin_throttle')
          .set({ locked_until: lockedUntil })
          .where('key', '=', key)
          .where('failures', '>=', this.max(key))
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', iso(nowDate))]))
          .returning('key')
          .executeTakeFirst();
        if (locked) newlyLocked.push(key);
      }
      return newlyLocked;
    }
    for (let row of await this.lockRows(trx, keys)) {
      row = await this.renewIfEnded(trx, row);
      row = { ...row, failures: row.failures + 1 };
      const locked = row.locked_until !== null && row.locked_until > iso(nowDate);
      const locks = !locked && row.failures >= this.max(row.key);
      if (locks) newlyLocked.push(row.key);
      await this.write(trx, { ...row, locked_until: locks ? lockedUntil : row.locked_until });
    }
    return newlyLocked;
  }

  /**
   * A successful step gives its reservations back: the account's counter is cleared, the
   * address's reservation returned (one good sign-in must not launder a spray from that address).
   * Call it before anything else in the transaction that locks rows (see the lock order above).
   */
  async recordSuccess(trx: Kysely<Database>, keys: string[], clearAccount = true): Promise<void> {
    for (const key of [...new Set(keys)].sort()) {
      if (clearAccount && key.startsWith('account:')) {
        const gone = await trx
          .deleteFrom('signin_throttle')
          .where('key', '=', key)
          .returning(['key', 'failures', 'window_started_at', 'locked_until', 'refused'])
          .executeTakeFirst();
        if (gone) await this.summarise(trx, { ...gone, refused: Number(gone.refused) });
      } else await this.giveBack(trx, key);
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
        await this.write(trx, renewed);
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
