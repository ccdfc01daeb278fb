import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { addMs, type Clock, iso } from '../clock.js';
import { NotFound } from '../errors.js';
import { enqueueEvent } from '../store/outbox.js';
import type { Database, SessionRow } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import { randomToken, storedSecret } from './secrets.js';

export interface SessionTimeouts {
  /** ends a session nobody used for this long */
  idleMs: number;
  /** ends every session this long after sign-in, however active */
  absoluteMs: number;
  /** how long a half-finished sign-in (password done, code not yet) stays valid */
  pendingMs: number;
}

export type SessionState = SessionRow['state'];

export interface Session {
  id: string;
  userId: string;
  state: SessionState;
  /** RFC 8176 authentication methods: pwd, otp, … */
  amr: string[];
  authTime: string | null;
  createdAt: string;
  lastSeenAt: string;
  idleExpiresAt: string;
  absoluteExpiresAt: string;
  revokedAt: string | null;
  revokedReason: string | null;
  ip: string | null;
  userAgent: string | null;
  /** identity protection's view of the sign-in: none | low | medium | high */
  signInRisk: RiskLevel;
}

export type RiskLevel = 'none' | 'low' | 'medium' | 'high';

export function sessionFromRow(row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    state: row.state,
    amr: JSON.parse(row.amr) as string[],
    authTime: row.auth_time,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
    ip: row.ip,
    userAgent: row.user_agent,
    signInRisk: (row.signin_risk ?? 'none') as RiskLevel,
  };
}

/** Writes of last_seen_at are skipped within this window: reads stay reads under load. */
const TOUCH_GRANULARITY_MS = 60_000;

export async function revokeUserSessions(
  trx: Kysely<Database>,
  clock: Clock,
  userId: string,
  reason: string,
): Promise<number> {
  const now = iso(clock.now());
  const revoked = await trx
    .updateTable('sessions')
    .set({ revoked_at: now, revoked_reason: reason })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('absolute_expires_at', '>', now)
    .returning('id')
    .execute();
  for (const r of revoked) {
    await enqueueEvent(trx, clock, { type: 'session.revoked', sessionId: r.id, userId, reason });
  }
  // And every OpenID grant, refresh and access token issued on the user's sign-ins (the CLI's too):
  // in the same transaction, so no token outlives the disablement that revoked it.
  await trx.deleteFrom('oidc_artifacts').where('account_id', '=', userId).execute();
  return revoked.length;
}

/**
 * Deletes the OpenID grants given under one sign-in session and every artifact issued on them (a
 * grant row's key is also its tokens' grant_id: federation/oidc/adapter.ts). In the caller's
 * transaction, so no token outlives the revocation. Returns how many grants ended.
 */
async function revokeSessionGrants(trx: Kysely<Database>, sessionId: string): Promise<number> {
  const grants = await trx
    .selectFrom('oidc_artifacts')
    .select('id')
    .where('model', '=', 'Grant')
    .where('session_id', '=', sessionId)
    .execute();
  if (grants.length === 0) return 0;
  await trx
    .deleteFrom('oidc_artifacts')
    .where(
      'grant_id',
      'in',
      grants.map((g) => g.id),
    )
    .execute();
  return grants.length;
}

export class SessionStore {
  constructor(
    private readonly deps: IdentityDeps,
    private readonly timeouts: SessionTimeouts,
  ) {}

  /** Starts a session and returns it with the cookie value (shown to the browser only, never stored). */
  async start(
    trx: Kysely<Database>,
    input: {
      userId: string;
      state: SessionState;
      amr: string[];
      ip?: string | null;
      userAgent?: string | null;
      signInRisk?: RiskLevel;
    },
  ): Promise<{ session: Session; token: string }> {
    const now = this.deps.clock.now();
    const token = randomToken();
    const pending = input.state !== 'active';
    const absolute = addMs(now, pending ? this.timeouts.pendingMs : this.timeouts.absoluteMs);
    const idle = addMs(now, pending ? this.timeouts.pendingMs : this.timeouts.idleMs);
    const row: SessionRow = {
      id: randomUUID(),
      token_hash: storedSecret(this.deps.masterKey, 'session', token),
      user_id: input.userId,
      state: input.state,
      amr: JSON.stringify(input.amr),
      auth_time: pending ? null : iso(now),
      created_at: iso(now),
      last_seen_at: iso(now),
      idle_expires_at: iso(new Date(Math.min(idle.getTime(), absolute.getTime()))),
      absolute_expires_at: iso(absolute),
      revoked_at: null,
      revoked_reason: null,
      ip: input.ip ?? null,
      user_agent: input.userAgent?.slice(0, 512) ?? null,
      signin_risk: input.signInRisk ?? 'none',
    };
    await trx.insertInto('sessions').values(row).execute();
    return { session: sessionFromRow(row), token };
  }

  /**
   * Completes a pending sign-in: the pending row is ended and a fresh active session with a new
   * cookie value replaces it, so a value seen before MFA is worthless after it (no fixation).
   */
  async promote(
    trx: Kysely<Database>,
    pending: Session,
    amr: string[],
  ): Promise<{ session: Session; token: string }> {
    await trx
      .updateTable('sessions')
      .set({ revoked_at: iso(this.deps.clock.now()), revoked_reason: 'sign-in completed' })
      .where('id', '=', pending.id)
      .execute();
    return this.start(trx, {
      userId: pending.userId,
      state: 'active',
      amr,
      ip: pending.ip,
      userAgent: pending.userAgent,
      signInRisk: pending.signInRisk,
    });
  }

  /** Looks up a cookie value; returns the session only while it is live, sliding its idle expiry. */
  async resolve(token: string, states: SessionState[] = ['active']): Promise<Session | null> {
    if (!token || token.length > 128) return null;
    const { db } = this.deps.store;
    const nowDate = this.deps.clock.now();
    const now = iso(nowDate);
    const row = await db
      .selectFrom('sessions')
      .selectAll()
      .where('token_hash', '=', storedSecret(this.deps.masterKey, 'session', token))
      .executeTakeFirst();
    if (!row || row.revoked_at !== null || !states.includes(row.state)) return null;
    if (row.idle_expires_at <= now || row.absolute_expires_at <= now) return null;
    const user = await db
      .selectFrom('users')
      .select('active')
      .where('id', '=', row.user_id)
      .executeTakeFirst();
    if (user?.active !== 1) return null;
    if (row.state === 'active' && nowDate.getTime() - Date.parse(row.last_seen_at) >= TOUCH_GRANULARITY_MS) {
      const idle = addMs(nowDate, this.timeouts.idleMs);
      row.last_seen_at = now;
      row.idle_expires_at = iso(
        idle.toISOString() < row.absolute_expires_at ? idle : new Date(row.absolute_expires_at),
      );
      await db
        .updateTable('sessions')
        .set({ last_seen_at: row.last_seen_at, idle_expires_at: row.idle_expires_at })
        .where('id', '=', row.id)
        .where('revoked_at', 'is', null)
        .execute();
    }
    return sessionFromRow(row);
  }

  /** Live sessions of one user, newest first. */
  async listForUser(userId: string): Promise<Session[]> {
    const now = iso(this.deps.clock.now());
    const rows = await this.deps.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('state', '=', 'active')
      .where('revoked_at', 'is', null)
      .where('idle_expires_at', '>', now)
      .where('absolute_expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map(sessionFromRow);
  }

  async get(id: string): Promise<Session> {
    const row = await this.deps.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFound('session', id);
    return sessionFromRow(row);
  }

  /**
   * Ends one session, with every OpenID grant given under it and every code and token issued on those
   * (the relying parties' and the CLI's: the next `ferry creds` is refused). `onlyUserId` limits a
   * user's self-service revocation to their own sessions; `endAwsSessions` also ends the person's live
   * AWS sessions (the per-person deny, through the outbox, as offboarding does).
   */
  async revoke(
    ctx: AuditContext,
    id: string,
    reason: string,
    onlyUserId?: string,
    options: { endAwsSessions?: boolean } = {},
  ): Promise<Session> {
    const { store, clock } = this.deps;
    return store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || (onlyUserId !== undefined && row.user_id !== onlyUserId)) throw new NotFound('session', id);
      if (row.revoked_at === null) {
        const now = iso(clock.now());
        await trx
          .updateTable('sessions')
          .set({ revoked_at: now, revoked_reason: reason })
          .where('id', '=', id)
          .execute();
        row.revoked_at = now;
        row.revoked_reason = reason;
        const grantsRevoked = await revokeSessionGrants(trx, id);
        const user = await trx
          .selectFrom('users')
          .select('user_name')
          .where('id', '=', row.user_id)
          .executeTakeFirst();
        await enqueueEvent(trx, clock, {
          type: 'session.revoked',
          sessionId: id,
          userId: row.user_id,
          reason,
          ...(options.endAwsSessions
            ? { endAwsSessions: true, userName: user?.user_name ?? row.user_id }
            : {}),
        });
        await appendAudit(trx, store.engine, clock, {
          type: 'session.revoked',
          outcome: 'success',
          actor: ctx.actor,
          subject: user?.user_name ?? row.user_id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: { sessionId: id, reason, grantsRevoked, endAwsSessions: options.endAwsSessions === true },
        });
      }
      return sessionFromRow(row);
    });
  }

  /** Removes sessions that ended more than a day ago (run by a background worker). */
  async purgeEnded(): Promise<number> {
    const cutoff = iso(addMs(this.deps.clock.now(), -86_400_000));
    const res = await this.deps.store.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('absolute_expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
