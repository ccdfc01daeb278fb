import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { iso } from '../clock.js';
import { NotFound } from '../errors.js';
import type { Database } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import { generateTotpSecret, matchTotpStep, totpUri } from './totp.js';

export interface TotpEnrollment {
  factorId: string;
  /** base32 secret: shown once, at enrollment */
  secret: string;
  uri: string;
}

/** The sealed secret is bound to its factor id, so a copied ciphertext can't be reused on another row. */
const sealContext = (factorId: string): string => `totp:${factorId}`;

export class TotpFactors {
  constructor(
    private readonly deps: IdentityDeps,
    private readonly issuer: string,
  ) {}

  async hasConfirmed(db: Kysely<Database>, userId: string): Promise<boolean> {
    const row = await db
      .selectFrom('totp_factors')
      .select('id')
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Starts an enrollment (unconfirmed until the user proves a code), or with `confirmed` registers a
   * secret an administrator hands over (the demo tenant does this).
   */
  async enroll(
    trx: Kysely<Database>,
    ctx: AuditContext,
    user: { id: string; userName: string },
    options: { confirmed?: boolean; secret?: string } = {},
  ): Promise<TotpEnrollment> {
    const { masterKey, clock, store } = this.deps;
    const factorId = randomUUID();
    const secret = options.secret ?? generateTotpSecret();
    const now = iso(clock.now());
    // Only one pending enrollment at a time: a new one replaces an unconfirmed one.
    await trx
      .deleteFrom('totp_factors')
      .where('user_id', '=', user.id)
      .where('confirmed_at', 'is', null)
      .execute();
    await trx
      .insertInto('totp_factors')
      .values({
        id: factorId,
        user_id: user.id,
        secret_sealed: masterKey.seal(secret, sealContext(factorId)),
        label: 'Authenticator app',
        confirmed_at: options.confirmed ? now : null,
        last_used_step: 0,
        created_at: now,
      })
      .execute();
    if (options.confirmed) {
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.totp.enrolled',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { factorId },
      });
    }
    return { factorId, secret, uri: totpUri(secret, user.userName, this.issuer) };
  }

  /** The pending enrollment's details, to show the secret again on a reloaded page. */
  async pending(
    db: Kysely<Database>,
    user: { id: string; userName: string },
  ): Promise<TotpEnrollment | null> {
    const row = await db
      .selectFrom('totp_factors')
      .select(['id', 'secret_sealed'])
      .where('user_id', '=', user.id)
      .where('confirmed_at', 'is', null)
      .executeTakeFirst();
    if (!row) return null;
    const secret = this.deps.masterKey.unseal(row.secret_sealed, sealContext(row.id));
    return { factorId: row.id, secret, uri: totpUri(secret, user.userName, this.issuer) };
  }

  /**
   * Checks a code against the user's factors (confirmed ones, or the pending one when `pending`).
   * A code is accepted once: the step it belongs to must be later than the last one used, and the
   * update is conditional so two concurrent uses of one code can't both win.
   */
  async verify(trx: Kysely<Database>, userId: string, code: string, pending = false): Promise<string | null> {
    const at = this.deps.clock.now();
    const rows = await trx
      .selectFrom('totp_factors')
      .selectAll()
      .where('user_id', '=', userId)
      .where('confirmed_at', pending ? 'is' : 'is not', null)
      .execute();
    for (const row of rows) {
      const secret = this.deps.masterKey.unseal(row.secret_sealed, sealContext(row.id));
      const step = matchTotpStep(secret, code.trim(), at);
      if (step === null || step <= Number(row.last_used_step)) continue;
      const res = await trx
        .updateTable('totp_factors')
        .set({ last_used_step: step, ...(pending ? { confirmed_at: iso(at) } : {}) })
        .where('id', '=', row.id)
        .where('last_used_step', '<', step)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) return row.id;
    }
    return null;
  }

  /** Removes the user's confirmed authenticator apps in the caller's transaction (their own choice, on the Account page). */
  async removeConfirmed(trx: Kysely<Database>, userId: string): Promise<number> {
    const res = await trx
      .deleteFrom('totp_factors')
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Removes every factor of a user (an administrator's reset for a lost phone). */
  async reset(ctx: AuditContext, user: { id: string; userName: string }): Promise<number> {
    const { store, clock } = this.deps;
    return store.db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('totp_factors').where('user_id', '=', user.id).executeTakeFirst();
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.reset',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { factorsRemoved: Number(res.numDeletedRows) },
      });
      return Number(res.numDeletedRows);
    });
  }

  async requireUser(db: Kysely<Database>, userId: string): Promise<{ id: string; userName: string }> {
    const row = await db
      .selectFrom('users')
      .select(['id', 'user_name'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!row) throw new NotFound('user', userId);
    return { id: row.id, userName: row.user_name };
  }
}
