import { createHash, createHmac, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { addMs, type Clock, iso } from '../../clock.js';
import { NotFound } from '../../errors.js';
import type { Engine, Store } from '../../store/open.js';
import type { Database, RiskDetectionsTable } from '../../store/schema.js';
import type { RiskLevel } from '../sessions.js';
import { isCommonPassword } from './common-passwords.js';

export type DetectionKind =
  | 'brute-force'
  | 'password-spray'
  | 'leaked-password'
  | 'unfamiliar-source'
  | 'impossible-travel'
  | 'token-reuse';

export interface RiskDetection {
  id: string;
  userId: string | null;
  subject: string;
  kind: DetectionKind;
  level: 'low' | 'medium' | 'high';
  ip: string | null;
  detail: Record<string, unknown>;
  state: 'open' | 'confirmed' | 'dismissed';
  createdAt: string;
  resolvedAt: string | null;
  resolvedBy: string | null;
}

/** Thresholds of the detections; the defaults suit a company directory. */
export interface ProtectionOptions {
  /** failed passwords for one account within the window that make a brute force */
  bruteForceFailures: number;
  bruteForceWindowMs: number;
  /** accounts one address failed against, with at most `sprayMaxPasswords` distinct passwords */
  sprayAccounts: number;
  sprayMaxPasswords: number;
  sprayWindowMs: number;
  /** a sign-in from another country sooner than this after the last one is impossible travel */
  travelWindowMs: number;
  /** how far back familiar sources are remembered */
  historyMs: number;
}

export const DEFAULT_PROTECTION: ProtectionOptions = {
  bruteForceFailures: 5,
  bruteForceWindowMs: 15 * 60_000,
  sprayAccounts: 5,
  sprayMaxPasswords: 2,
  sprayWindowMs: 30 * 60_000,
  travelWindowMs: 2 * 3600_000,
  historyMs: 90 * 86_400_000,
};

const ORDER: RiskLevel[] = ['none', 'low', 'medium', 'high'];
const max = (a: RiskLevel, b: RiskLevel): RiskLevel => (ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b);

/** The network an address belongs to for "have we seen this source": its /24 (IPv4) or /48 (IPv6). */
export function networkOf(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1]! : ip;
  if (isIP(addr) === 4) return `${addr.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIP(addr) === 6) return `${addr.split(':').slice(0, 3).join(':')}::/48`;
  return addr;
}

const fromRow = (r: RiskDetectionsTable): RiskDetection => ({
  id: r.id,
  userId: r.user_id,
  subject: r.subject,
  kind: r.kind as DetectionKind,
  level: r.level,
  ip: r.ip,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
  state: r.state,
  createdAt: r.created_at,
  resolvedAt: r.resolved_at,
  resolvedBy: r.resolved_by,
});

/**
 * Identity protection: every password sign-in attempt is remembered (address, country, and for a
 * failure a keyed hash of the password, never the password), and detections read that history in
 * the sign-in's own transaction. A detection raises the sign-in's risk (on the session) and the
 * user's risk (until an admin dismisses it), writes `risk.detected` to the audit trail, and
 * conditional access policies act on both levels.
 */
export class IdentityProtection {
  readonly #pepper: Buffer;
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    pepper: Buffer,
    private readonly country: (ip: string) => string | null,
    private readonly options: ProtectionOptions = DEFAULT_PROTECTION,
  ) {
    this.#pepper = pepper;
  }

  private get engine(): Engine {
    return this.store.engine;
  }

  /** A failed password: remember it, then look for brute force on the account and spray from the address. */
  async failedPassword(
    trx: Kysely<Database>,
    a: {
      userKey: string;
      userId: string | null;
      userName: string;
      ip: string;
      password: string;
      country: string | null;
    },
  ): Promise<void> {
    const now = this.clock.now();
    await trx
      .insertInto('signin_history')
      .values({
        id: randomUUID(),
        user_id: a.userId,
        user_key: a.userKey,
        ip: a.ip,
        country: a.country,
        outcome: 'failure',
        password_fp: createHmac('sha256', this.#pepper).update(a.password).digest('base64url').slice(0, 22),
        at: iso(now),
      })
      .execute();
    if (a.userId) {
      const since = iso(addMs(now, -this.options.bruteForceWindowMs));
      const { n } = await trx
        .selectFrom('signin_history')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_key', '=', a.userKey)
        .where('outcome', '=', 'failure')
        .where('at', '>', since)
        .executeTakeFirstOrThrow();
      if (
        Number(n) >= this.options.bruteForceFailures &&
        !(await this.recent(trx, 'brute-force', { userId: a.userId }, since))
      )
        await this.detect(trx, {
          kind: 'brute-force',
          level: 'medium',
          userId: a.userId,
          subject: a.userName,
          ip: a.ip,
          detail: { failures: Number(n), windowMinutes: this.options.bruteForceWindowMs / 60_000 },
        });
    }
    const since = iso(addMs(now, -this.options.sprayWindowMs));
    const rows = await trx
      .selectFrom('signin_history')
      .select(['user_key', 'password_fp'])
      .where('ip', '=', a.ip)
      .where('outcome', '=', 'failure')
      .where('at', '>', since)
      .execute();
    const accounts = new Set(rows.map((r) => r.user_key)).size;
    const passwords = new Set(rows.map((r) => r.password_fp)).size;
    if (
      accounts >= this.options.sprayAccounts &&
      passwords <= this.options.sprayMaxPasswords &&
      !(await this.recent(trx, 'password-spray', { ip: a.ip }, since))
    )
      await this.detect(trx, {
        kind: 'password-spray',
        level: 'high',
        userId: null,
        subject: a.ip,
        ip: a.ip,
        detail: {
          accounts,
          distinctPasswords: passwords,
          windowMinutes: this.options.sprayWindowMs / 60_000,
        },
      });
  }

  /**
   * A correct password: remember the source and return the sign-in's risk from a leaked password,
   * an unfamiliar source, impossible travel, or an address caught spraying.
   */
  async successfulPassword(
    trx: Kysely<Database>,
    a: {
      userKey: string;
      userId: string;
      userName: string;
      ip: string;
      password: string;
      country: string | null;
    },
  ): Promise<RiskLevel> {
    const now = this.clock.now();
    const country = a.country;
    const previous = await trx
      .selectFrom('signin_history')
      .select(['ip', 'country', 'at'])
      .where('user_id', '=', a.userId)
      .where('outcome', '=', 'success')
      .where('at', '>', iso(addMs(now, -this.options.historyMs)))
      .orderBy('at', 'desc')
      .execute();
    await trx
      .insertInto('signin_history')
      .values({
        id: randomUUID(),
        user_id: a.userId,
        user_key: a.userKey,
        ip: a.ip,
        country,
        outcome: 'success',
        password_fp: null,
        at: iso(now),
      })
      .execute();
    let risk: RiskLevel = 'none';
    const base = { userId: a.userId, subject: a.userName, ip: a.ip };

    if (
      isCommonPassword(a.password) &&
      !(await this.recent(trx, 'leaked-password', { userId: a.userId }, null))
    ) {
      await this.detect(trx, {
        ...base,
        kind: 'leaked-password',
        level: 'high',
        detail: { list: 'zxcvbn-ts common passwords' },
      });
      risk = max(risk, 'medium');
    }
    const last = previous[0];
    if (
      last?.country &&
      country &&
      last.country !== country &&
      now.getTime() - Date.parse(last.at) < this.options.travelWindowMs
    ) {
      await this.detect(trx, {
        ...base,
        kind: 'impossible-travel',
        level: 'high',
        detail: {
          from: last.country,
          to: country,
          previousIp: last.ip,
          minutesApart: Math.round((now.getTime() - Date.parse(last.at)) / 60_000),
        },
      });
      risk = max(risk, 'high');
    } else if (previous.length > 0) {
      const network = networkOf(a.ip);
      const seenNetwork = previous.some((p) => networkOf(p.ip) === network);
      const seenCountry = country === null || previous.some((p) => p.country === country);
      if (!seenNetwork && !seenCountry) {
        await this.detect(trx, {
          ...base,
          kind: 'unfamiliar-source',
          level: 'medium',
          detail: {
            network,
            country,
            knownCountries: [...new Set(previous.map((p) => p.country).filter(Boolean))],
          },
        });
        risk = max(risk, 'medium');
      }
    }
    const spraying = await this.recent(
      trx,
      'password-spray',
      { ip: a.ip },
      iso(addMs(now, -this.options.sprayWindowMs)),
    );
    if (spraying) risk = max(risk, 'high');
    return risk;
  }

  /**
   * A `ferry login` token used: the first use of its grant pins the source network; a use from another
   * network is token reuse from a new source (a copied token), high sign-in risk for that request.
   */
  async tokenUsed(grantId: string, user: { id: string; userName: string }, ip: string): Promise<RiskLevel> {
    const grantHash = createHash('sha256').update(grantId).digest('hex');
    const network = ip ? networkOf(ip) : null;
    // Without a source address (a caller that could not tell it) there is nothing to compare.
    if (!network) return 'none';
    const { db } = this.store;
    const seen = await db
      .selectFrom('token_sources')
      .selectAll()
      .where('grant_hash', '=', grantHash)
      .executeTakeFirst();
    if (!seen) {
      await db
        .insertInto('token_sources')
        .values({
          grant_hash: grantHash,
          user_id: user.id,
          network,
          ip,
          first_seen_at: iso(this.clock.now()),
        })
        .onConflict((oc) => oc.column('grant_hash').doNothing())
        .execute();
      return 'none';
    }
    if (seen.network === network) return 'none';
    await db.transaction().execute(async (trx) => {
      const already = await trx
        .selectFrom('risk_detections')
        .select('detail')
        .where('kind', '=', 'token-reuse')
        .where('user_id', '=', user.id)
        .where('ip', '=', ip)
        .execute();
      if (already.some((d) => (JSON.parse(d.detail) as { grant?: string }).grant === grantHash.slice(0, 16)))
        return;
      await this.detect(trx, {
        kind: 'token-reuse',
        level: 'high',
        userId: user.id,
        subject: user.userName,
        ip,
        detail: { grant: grantHash.slice(0, 16), firstNetwork: seen.network, network },
      });
    });
    return 'high';
  }

  async list(filter: { userId?: string; state?: RiskDetection['state'] } = {}): Promise<RiskDetection[]> {
    let q = this.store.db.selectFrom('risk_detections').selectAll();
    if (filter.userId) q = q.where('user_id', '=', filter.userId);
    if (filter.state) q = q.where('state', '=', filter.state);
    return (await q.orderBy('created_at', 'desc').limit(1000).execute()).map(fromRow);
  }

  /** An admin's verdict: confirmed (the account is compromised: user risk high) or dismissed (no longer counts). */
  async resolve(ctx: AuditContext, id: string, verdict: 'confirmed' | 'dismissed'): Promise<RiskDetection> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('risk_detections').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFound('risk detection', id);
      const now = iso(this.clock.now());
      const by = ctx.actor.type === 'anonymous' ? 'anonymous' : (ctx.actor.name ?? ctx.actor.type);
      const level = verdict === 'confirmed' ? 'high' : row.level;
      await trx
        .updateTable('risk_detections')
        .set({ state: verdict, level, resolved_at: now, resolved_by: by })
        .where('id', '=', id)
        .execute();
      await appendAudit(trx, this.engine, this.clock, {
        type: `risk.${verdict}`,
        outcome: 'success',
        actor: ctx.actor,
        subject: row.subject,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { detectionId: id, kind: row.kind, previousState: row.state },
      });
      return fromRow({ ...row, state: verdict, level, resolved_at: now, resolved_by: by });
    });
  }

  /** The address's country; look it up before opening a transaction (the first lookup loads the database). */
  countryOf(ip: string): string | null {
    return this.safeCountry(ip);
  }

  private safeCountry(ip: string): string | null {
    try {
      return this.country(ip);
    } catch {
      return null;
    }
  }

  private async recent(
    trx: Kysely<Database>,
    kind: DetectionKind,
    who: { userId?: string; ip?: string },
    since: string | null,
  ): Promise<boolean> {
    let q = trx
      .selectFrom('risk_detections')
      .select('id')
      .where('kind', '=', kind)
      .where('state', '!=', 'dismissed');
    if (who.userId) q = q.where('user_id', '=', who.userId);
    if (who.ip) q = q.where('ip', '=', who.ip);
    if (since) q = q.where('created_at', '>', since);
    return (await q.executeTakeFirst()) !== undefined;
  }

  private async detect(
    trx: Kysely<Database>,
    d: {
      kind: DetectionKind;
      level: 'low' | 'medium' | 'high';
      userId: string | null;
      subject: string;
      ip: string;
      detail: Record<string, unknown>;
    },
  ): Promise<void> {
    const row: RiskDetectionsTable = {
      id: randomUUID(),
      user_id: d.userId,
      subject: d.subject,
      kind: d.kind,
      level: d.level,
      ip: d.ip,
      detail: JSON.stringify(d.detail),
      state: 'open',
      created_at: iso(this.clock.now()),
      resolved_at: null,
      resolved_by: null,
    };
    await trx.insertInto('risk_detections').values(row).execute();
    await appendAudit(trx, this.engine, this.clock, {
      type: 'risk.detected',
      outcome: 'success',
      actor: { type: 'system', name: 'identity-protection' },
      subject: d.subject,
      ip: d.ip,
      data: { detectionId: row.id, kind: d.kind, level: d.level, ...d.detail },
    });
  }
}
