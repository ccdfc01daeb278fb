import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { iso } from '../clock.js';
import type { MasterKey } from '../keys/master-key.js';
import type { Database } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import { storedSecret } from './secrets.js';

const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'; // no 0/o, 1/l/i: read off paper without doubt
const COUNT = 10;

/** A code's canonical form: lower case, no spaces or dashes. */
const canonical = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');
const hash = (masterKey: MasterKey, code: string) =>
  storedSecret(masterKey, 'recovery-code', `ferry-recovery:${canonical(code)}`);

function newCode(): string {
  const bytes = randomBytes(10);
  const chars = [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

/** Does this look like a recovery code (and not a 6-digit TOTP code)? */
export const looksLikeRecoveryCode = (code: string) => /^[a-z2-9]{5}-?[a-z2-9]{5}$/i.test(code.trim());

/**
 * Recovery codes: ten single-use codes for the day the authenticator is lost. Shown once; only their
 * keyed hash is stored (storedSecret: about 50 random bits each, so the key, not the hash, is what
 * keeps a copy of the database from finding them).
 */
export class RecoveryCodes {
  constructor(private readonly deps: IdentityDeps) {}

  /** Replaces the user's codes with ten new ones and returns them (the only time they are visible). */
  async generate(ctx: AuditContext, user: { id: string; userName: string }): Promise<string[]> {
    const { store, clock } = this.deps;
    const codes = Array.from({ length: COUNT }, newCode);
    await store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('recovery_codes').where('user_id', '=', user.id).execute();
      const now = iso(clock.now());
      await trx
        .insertInto('recovery_codes')
        .values(
          codes.map((c) => ({
            code_hash: hash(this.deps.masterKey, c),
            user_id: user.id,
            created_at: now,
            used_at: null,
          })),
        )
        .execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.recovery-codes.generated',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { count: COUNT },
      });
    });
    return codes;
  }

  async remaining(userId: string): Promise<number> {
    const { n } = await this.deps.store.db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  /** Uses one code in the caller's transaction; true when it was the user's and unused. */
  async use(trx: Kysely<Database>, userId: string, code: string): Promise<boolean> {
    const res = await trx
      .updateTable('recovery_codes')
      .set({ used_at: iso(this.deps.clock.now()) })
      .where('code_hash', '=', hash(this.deps.masterKey, code))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
