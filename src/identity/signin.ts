import { availableParallelism } from 'node:os';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import { type Actor, anonymous } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { hasMfa } from '../authn/amr.js';
import type { Database } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import type { TotpEnrollment, TotpFactors } from './mfa.js';
import { HashQueue, SigninBusy } from './passwords.js';
import { looksLikeRecoveryCode, type RecoveryCodes } from './recovery-codes.js';
import type { IdentityProtection } from './risk/protection.js';
import type { Session, SessionStore } from './sessions.js';
import { accountKey, addressKey, type SigninThrottle } from './throttle.js';
import { findUserRow, userNameKey } from './users.js';
import { type WebAuthnFactors, WebAuthnRejected } from './webauthn.js';

/** Why a sign-in step failed: recorded in the audit trail, never shown to the person signing in. */
export type SigninFailure =
  | 'unknown-user'
  | 'bad-password'
  | 'no-password'
  | 'disabled'
  | 'locked'
  | 'bad-code'
  | 'expired';

export type SigninOutcome = 'success' | 'failure' | 'locked' | 'second-factor-required' | 'busy';

export type SigninResult =
  | { status: 'failed'; reason: SigninFailure }
  | { status: 'second-factor-required'; token: string; methods: SecondFactor[] }
  | { status: 'enrollment-required'; token: string; enrollment: TotpEnrollment }
  | { status: 'signed-in'; token: string; session: Session };

export type SecondFactor = 'totp' | 'webauthn';

/** What the security-key page does for a session: prove a registered key, or register one. */
export type SecurityKeyCeremony =
  | { mode: 'authenticate'; options: PublicKeyCredentialRequestOptionsJSON }
  | { mode: 'register'; options: PublicKeyCredentialCreationOptionsJSON }
  | { mode: 'needs-mfa-first' };

export interface SigninRequest {
  ip: string;
  userAgent?: string | null;
  requestId?: string | null;
}

export interface SigninOptions {
  /** when true, a user without an authenticator must enroll one before the session starts */
  requireMfa: boolean;
  /** security keys and passkeys; without it only TOTP is offered */
  webauthn?: WebAuthnFactors;
  /** identity protection's detections, run in every password step */
  protection?: IdentityProtection;
  /** single-use codes accepted in place of a one-time code */
  recoveryCodes?: RecoveryCodes;
  onOutcome?: (outcome: SigninOutcome) => void;
  /** bounds the password attempts anonymous callers can start (default: one per core, 64 waiting) */
  hashQueue?: HashQueue;
}

/**
 * Local sign-in: password, then a one-time code when the user has an authenticator (or must enroll
 * one). Every failure looks the same to the caller; the audit trail keeps the real reason.
 */
export class SigninService {
  constructor(
    private readonly deps: IdentityDeps,
    private readonly sessions: SessionStore,
    private readonly totp: TotpFactors,
    private readonly throttle: SigninThrottle,
    private readonly options: SigninOptions,
  ) {
    this.hashQueue = options.hashQueue ?? new HashQueue(availableParallelism(), 64);
  }

  private readonly hashQueue: HashQueue;

  async password(userName: string, password: string, req: SigninRequest): Promise<SigninResult> {
    // Admission first: when the hashing queue is full the answer costs no query and no hash.
    const ticket = this.hashQueue.tryAdmit();
    if (!ticket) {
      this.options.onOutcome?.('busy');
      throw new SigninBusy();
    }
    // The whole attempt runs in its slot: its queries as well as its hash, so sign-ins never hold
    // more pool connections than there are slots, whatever the burst (waiters wait in memory).
    return ticket.run(() => this.passwordAdmitted(userName, password, req));
  }

  private async passwordAdmitted(
    userName: string,
    password: string,
    req: SigninRequest,
  ): Promise<SigninResult> {
    const { store, hasher } = this.deps;
    const name = userName.trim().slice(0, 256);
    const row = name ? await findUserRow(store.db, name) : undefined;
    // Keyed on the account the name resolves to (its user id and every spelling of its name meet).
    const keys = [accountKey(row?.user_name ?? name), addressKey(req.ip)];
    // Reserve before hashing: a burst can never have more than the threshold evaluated.
    const reservation = await this.throttle.reserve(keys);
    if (!reservation.granted) return this.refused();
    const candidate = password.slice(0, 1024);
    const passwordOk = await hasher.verify(row?.password_hash ?? null, candidate);
    const protection = this.options.protection;
    const attempt = {
      userKey: userNameKey(name),
      userId: row?.id ?? null,
      userName: row?.user_name ?? name,
      ip: req.ip,
      password: candidate,
      country: protection ? protection.countryOf(req.ip) : null,
    };
    const remember = protection
      ? (trx: Kysely<Database>) => protection.failedPassword(trx, attempt)
      : undefined;
    const reserved = { reserved: true, remember };
    if (!row) return this.fail(keys, name, 'unknown-user', 'password', req, reserved);
    if (!row.password_hash) return this.fail(keys, row.user_name, 'no-password', 'password', req, reserved);
    if (!passwordOk) return this.fail(keys, row.user_name, 'bad-password', 'password', req, reserved);
    if (row.active !== 1)
      return this.fail(keys, row.user_name, 'disabled', 'password', req, { reserved: true });

    const user = { id: row.id, userName: row.user_name };
    const actor: Actor = { type: 'user', id: row.id, name: row.user_name };
    return store.db.transaction().execute(async (trx): Promise<SigninResult> => {
      const methods = await this.factorsOf(trx, row.id);
      const needsMore =
        methods.length > 0 || this.options.requireMfa || Number(row.mfa_registration_required) === 1;
      // Throttle rows first (lock order), the reservation given back; the account's counter is
      // cleared only when a session starts: a second-factor step still counts against it.
      await this.throttle.recordSuccess(trx, keys, !needsMore);
      const signInRisk = protection
        ? await protection.successfulPassword(trx, { ...attempt, userId: row.id })
        : 'none';
      const meta = { ip: req.ip, userAgent: req.userAgent ?? null, signInRisk };
      if (methods.length > 0) {
        const { token } = await this.sessions.start(trx, {
          userId: row.id,
          state: 'pending_mfa',
          amr: ['pwd'],
          ...meta,
        });
        await this.audit(trx, actor, row.user_name, 'success', req, {
          step: 'password',
          next: methods.join('|'),
          signInRisk,
        });
        this.options.onOutcome?.('second-factor-required');
        return { status: 'second-factor-required', token, methods };
      }
      if (this.options.requireMfa || Number(row.mfa_registration_required) === 1) {
        const { token } = await this.sessions.start(trx, {
          userId: row.id,
          state: 'pending_enrollment',
          amr: ['pwd'],
          ...meta,
        });
        const enrollment = await this.totp.enroll(trx, { actor, ip: req.ip, requestId: req.requestId }, user);
        await this.audit(trx, actor, row.user_name, 'success', req, {
          step: 'password',
          next: 'totp-enrollment',
          signInRisk,
        });
        this.options.onOutcome?.('second-factor-required');
        return { status: 'enrollment-required', token, enrollment };
      }
      const { token, session } = await this.sessions.start(trx, {
        userId: row.id,
        state: 'active',
        amr: ['pwd'],
        ...meta,
      });
      await this.audit(trx, actor, row.user_name, 'success', req, {
        step: 'password',
        sessionId: session.id,
        amr: ['pwd'],
        signInRisk,
      });
      this.options.onOutcome?.('success');
      return { status: 'signed-in', token, session };
    });
  }

  /** The second factors a user has registered. */
  async factorsOf(db: Kysely<Database>, userId: string): Promise<SecondFactor[]> {
    const out: SecondFactor[] = [];
    if (await this.totp.hasConfirmed(db, userId)) out.push('totp');
    if (this.options.webauthn && (await this.options.webauthn.has(db, userId))) out.push('webauthn');
    return out;
  }

  /** Factors of the user behind a pending sign-in (to offer the right page), or null. */
  async pendingFactors(pendingToken: string): Promise<SecondFactor[] | null> {
    const pending = await this.sessions.resolve(pendingToken, ['pending_mfa']);
    return pending ? this.factorsOf(this.deps.store.db, pending.userId) : null;
  }

  /**
   * Starts a security-key ceremony for a sign-in waiting for its second factor, or for a signed-in
   * session stepping up. Registering a new key needs a session that already proved a second factor,
   * unless the person has none yet (then the key is their first, as a TOTP enrollment would be).
   */
  async securityKeyCeremony(token: string): Promise<SecurityKeyCeremony | null> {
    const webauthn = this.options.webauthn;
    const session = await this.sessions.resolve(token, ['pending_mfa', 'active']);
    if (!webauthn || !session) return null;
    const { db } = this.deps.store;
    const factors = await this.factorsOf(db, session.userId);
    if (factors.includes('webauthn'))
      return { mode: 'authenticate', options: await webauthn.authenticationOptions(session.userId) };
    if (session.state !== 'active') return { mode: 'needs-mfa-first' };
    const proved = hasMfa(session.amr);
    if (!proved && factors.length > 0) return { mode: 'needs-mfa-first' };
    const user = await db
      .selectFrom('users')
      .select(['id', 'user_name', 'display_name'])
      .where('id', '=', session.userId)
      .executeTakeFirstOrThrow();
    return {
      mode: 'register',
      options: await webauthn.registrationOptions({
        id: user.id,
        userName: user.user_name,
        displayName: user.display_name,
      }),
    };
  }

  /**
   * Finishes a security-key ceremony: the session is replaced by one whose amr says a hardware-bound
   * key was used (hwk), which phishing-resistant policies and the MfaMethod=webauthn tag look for.
   */
  async securityKeyFinish(token: string, response: unknown, req: SigninRequest): Promise<SigninResult> {
    const webauthn = this.options.webauthn;
    const session = await this.sessions.resolve(token, ['pending_mfa', 'active']);
    if (!webauthn || !session) return this.fail([addressKey(req.ip)], null, 'expired', 'webauthn', req);
    const { store } = this.deps;
    const row = await store.db
      .selectFrom('users')
      .select(['id', 'user_name', 'user_name_key'])
      .where('id', '=', session.userId)
      .executeTakeFirstOrThrow();
    const keys = [accountKey(row.user_name), addressKey(req.ip)];
    if (!(await this.throttle.reserve(keys)).granted) return this.refused();
    const actor: Actor = { type: 'user', id: row.id, name: row.user_name };
    const registering = !(await webauthn.has(store.db, row.id));
    if (registering && (await this.securityKeyCeremony(token))?.mode !== 'register')
      return this.fail(keys, row.user_name, 'bad-code', 'webauthn', req, { reserved: true });
    try {
      if (registering) {
        const body = response as { response: RegistrationResponseJSON; name?: string };
        await webauthn.register(
          { actor, ip: req.ip, requestId: req.requestId },
          { id: row.id, userName: row.user_name },
          body.response,
          String(body.name ?? 'Security key'),
        );
      }
      return await store.db.transaction().execute(async (trx): Promise<SigninResult> => {
        if (!registering)
          await webauthn.authenticate(
            trx,
            row.id,
            (response as { response: AuthenticationResponseJSON }).response,
          );
        else
          await trx
            .updateTable('users')
            .set({ mfa_registration_required: 0 })
            .where('id', '=', row.id)
            .execute();
        await this.throttle.recordSuccess(trx, keys);
        const amr = [...new Set([...session.amr, 'hwk', 'mfa'])];
        const { token: newToken, session: upgraded } = await this.sessions.promote(trx, session, amr);
        await this.audit(trx, actor, row.user_name, 'success', req, {
          step: registering ? 'webauthn-registration' : 'webauthn',
          ...(session.state === 'active' ? { previousSessionId: session.id } : {}),
          sessionId: upgraded.id,
          amr,
        });
        this.options.onOutcome?.('success');
        return { status: 'signed-in', token: newToken, session: upgraded };
      });
    } catch (err) {
      if (err instanceof WebAuthnRejected)
        return this.fail(keys, row.user_name, 'bad-code', 'webauthn', req, {
          reserved: true,
          detail: err.message,
        });
      throw err;
    }
  }

  /** The one-time code step; `pendingToken` is the cookie value from the password step. */
  async secondFactor(pendingToken: string, code: string, req: SigninRequest): Promise<SigninResult> {
    return this.codeStep(pendingToken, code, req, 'pending_mfa');
  }

  /** Finishes a forced enrollment: the first valid code confirms the new authenticator and signs in. */
  async confirmEnrollment(pendingToken: string, code: string, req: SigninRequest): Promise<SigninResult> {
    return this.codeStep(pendingToken, code, req, 'pending_enrollment');
  }

  /** The enrollment a pending session must finish (to show its secret again). */
  async pendingEnrollment(pendingToken: string): Promise<TotpEnrollment | null> {
    const pending = await this.sessions.resolve(pendingToken, ['pending_enrollment']);
    if (!pending) return null;
    const user = await this.totp.requireUser(this.deps.store.db, pending.userId);
    return this.totp.pending(this.deps.store.db, user);
  }

  /**
   * Step-up for a signed-in person whose session lacks MFA: the TOTP enrollment to finish (started
   * here when they have no authenticator yet), or null when they have one and need only a code.
   */
  async stepUpEnrollment(
    sessionToken: string,
    req: SigninRequest,
  ): Promise<TotpEnrollment | null | 'no-session'> {
    const { store } = this.deps;
    const session = await this.sessions.resolve(sessionToken);
    if (!session) return 'no-session';
    if (await this.totp.hasConfirmed(store.db, session.userId)) return null;
    const user = await this.totp.requireUser(store.db, session.userId);
    const existing = await this.totp.pending(store.db, user);
    if (existing) return existing;
    const actor: Actor = { type: 'user', id: user.id, name: user.userName };
    return store.db
      .transaction()
      .execute((trx) => this.totp.enroll(trx, { actor, ip: req.ip, requestId: req.requestId }, user));
  }

  /**
   * Completes a step-up with a one-time code (confirming a new authenticator when one is pending):
   * the session is replaced by one whose amr includes the second factor, with a new cookie value.
   */
  async stepUp(sessionToken: string, code: string, req: SigninRequest): Promise<SigninResult> {
    const { store } = this.deps;
    const session = await this.sessions.resolve(sessionToken);
    if (!session) return this.fail([addressKey(req.ip)], null, 'expired', 'totp', req);
    const row = await store.db
      .selectFrom('users')
      .select(['id', 'user_name', 'user_name_key'])
      .where('id', '=', session.userId)
      .executeTakeFirstOrThrow();
    const keys = [accountKey(row.user_name), addressKey(req.ip)];
    if (!(await this.throttle.reserve(keys)).granted) return this.refused();
    const actor: Actor = { type: 'user', id: row.id, name: row.user_name };
    const enrolling = !(await this.totp.hasConfirmed(store.db, row.id));
    const result = await store.db.transaction().execute(async (trx): Promise<SigninResult | null> => {
      const factorId = await this.totp.verify(trx, row.id, code.slice(0, 16), enrolling);
      if (!factorId) return null;
      await this.throttle.recordSuccess(trx, keys);
      const amr = [...new Set([...session.amr, 'otp', 'mfa'])];
      const { token, session: upgraded } = await this.sessions.promote(trx, session, amr);
      if (enrolling)
        await trx
          .updateTable('users')
          .set({ mfa_registration_required: 0 })
          .where('id', '=', row.id)
          .execute();
      if (enrolling)
        await this.audit(
          trx,
          actor,
          row.user_name,
          'success',
          req,
          { step: 'totp-enrollment', factorId },
          'mfa.totp.enrolled',
        );
      await this.audit(trx, actor, row.user_name, 'success', req, {
        step: 'step-up',
        previousSessionId: session.id,
        sessionId: upgraded.id,
        amr,
      });
      return { status: 'signed-in', token, session: upgraded };
    });
    if (!result) return this.fail(keys, row.user_name, 'bad-code', 'totp', req, { reserved: true });
    this.options.onOutcome?.('success');
    return result;
  }

  private async codeStep(
    pendingToken: string,
    code: string,
    req: SigninRequest,
    state: 'pending_mfa' | 'pending_enrollment',
  ): Promise<SigninResult> {
    const { store } = this.deps;
    const pending = await this.sessions.resolve(pendingToken, [state]);
    if (!pending) return this.fail([addressKey(req.ip)], null, 'expired', 'totp', req);
    const row = await store.db
      .selectFrom('users')
      .select(['id', 'user_name', 'user_name_key'])
      .where('id', '=', pending.userId)
      .executeTakeFirstOrThrow();
    const keys = [accountKey(row.user_name), addressKey(req.ip)];
    if (!(await this.throttle.reserve(keys)).granted) return this.refused();
    const actor: Actor = { type: 'user', id: row.id, name: row.user_name };
    const result = await store.db.transaction().execute(async (trx): Promise<SigninResult | null> => {
      const recovery =
        state === 'pending_mfa' && this.options.recoveryCodes !== undefined && looksLikeRecoveryCode(code);
      const factorId = recovery
        ? (await this.options.recoveryCodes!.use(trx, row.id, code.slice(0, 16)))
          ? 'recovery-code'
          : null
        : await this.totp.verify(trx, row.id, code.slice(0, 16), state === 'pending_enrollment');
      if (!factorId) return null;
      await this.throttle.recordSuccess(trx, keys);
      const amr = ['pwd', 'otp', 'mfa'];
      const { token, session } = await this.sessions.promote(trx, pending, amr);
      if (state === 'pending_enrollment') {
        // "Register MFA at next sign-in" is done once a factor is confirmed.
        await trx
          .updateTable('users')
          .set({ mfa_registration_required: 0 })
          .where('id', '=', row.id)
          .execute();
        await this.audit(
          trx,
          actor,
          row.user_name,
          'success',
          req,
          { step: 'totp-enrollment', factorId },
          'mfa.totp.enrolled',
        );
      }
      await this.audit(trx, actor, row.user_name, 'success', req, {
        step: recovery ? 'recovery-code' : 'totp',
        sessionId: session.id,
        amr,
      });
      return { status: 'signed-in', token, session };
    });
    if (!result) return this.fail(keys, row.user_name, 'bad-code', 'totp', req, { reserved: true });
    this.options.onOutcome?.('success');
    return result;
  }

  /**
   * An attempt refused unevaluated by an existing lock: counted on the throttle row (one summary
   * event per key and lock), not audited one by one, and answered like every other failure.
   */
  private refused(): SigninResult {
    this.options.onOutcome?.('locked');
    return { status: 'failed', reason: 'locked' };
  }

  private async fail(
    keys: string[],
    subject: string | null,
    reason: Exclude<SigninFailure, 'locked'>,
    step: 'password' | 'totp' | 'webauthn',
    req: SigninRequest,
    opts: {
      /** the attempt holds a reservation on `keys` (it is already counted) */
      reserved?: boolean;
      detail?: string;
      remember?: (trx: Kysely<Database>) => Promise<void>;
    } = {},
  ): Promise<SigninResult> {
    const { store } = this.deps;
    const locked = await store.db.transaction().execute(async (trx) => {
      // Throttle rows before anything that appends to the audit chain (the lock order).
      const newlyLocked = await this.throttle.recordFailure(trx, keys, opts.reserved ?? false);
      await opts.remember?.(trx);
      await this.audit(trx, anonymous, subject || null, 'failure', req, {
        step,
        reason,
        ...(opts.detail ? { detail: opts.detail.slice(0, 200) } : {}),
        ...(newlyLocked.length > 0 ? { locked: newlyLocked } : {}),
      });
      return newlyLocked;
    });
    this.options.onOutcome?.(locked.length > 0 ? 'locked' : 'failure');
    return { status: 'failed', reason };
  }

  private audit(
    trx: Kysely<Database>,
    actor: Actor,
    subject: string | null,
    outcome: 'success' | 'failure',
    req: SigninRequest,
    data: Record<string, unknown>,
    type = 'signin',
  ) {
    return appendAudit(trx, this.deps.store.engine, this.deps.clock, {
      type,
      outcome,
      actor,
      subject,
      ip: req.ip,
      requestId: req.requestId,
      data: { ...data, userAgent: req.userAgent?.slice(0, 200) ?? null },
    });
  }
}
