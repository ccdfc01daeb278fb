import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { hasMfa } from '../authn/amr.js';
import { Problem } from '../problem.js';
import type { Database } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import type { TotpEnrollment, TotpFactors } from './mfa.js';
import type { RecoveryCodes } from './recovery-codes.js';
import type { SigninThrottle } from './throttle.js';
import { accountKey } from './throttle.js';
import type { UserDirectory } from './users.js';
import { type WebAuthnCredentialView, type WebAuthnFactors, WebAuthnRejected } from './webauthn.js';

/** The person acting on their own account: who, and how their session proved it. */
export interface AccountHolder {
  userId: string;
  /** the session's RFC 8176 methods */
  amr: readonly string[];
  /** when the session last authenticated (signed in, or proved a factor at a step-up); null: unknown */
  authTime: string | null;
}

export interface AccountSecurityStatus {
  /** a password Ferry checks (a local account); people who sign in through Entra ID have none */
  hasPassword: boolean;
  totp: { enrolled: boolean };
  passkeys: WebAuthnCredentialView[];
  recoveryCodesRemaining: number;
  /** sign-in policy: everyone needs a second factor, so the last one cannot be removed */
  mfaRequired: boolean;
  /** whether this session proved a second factor (needed to change factors once there is one) */
  sessionHasMfa: boolean;
  /** whether a change needs a step-up first: no second factor proved, or the last authentication is too old */
  stepUpRequired: boolean;
  /** null when security keys are not offered */
  webauthn: { rpId: string; origin: string } | null;
  /** where this session proves its second factor and comes back */
  stepUpUrl: string;
}

/**
 * The step-up page that gives this session a second factor and comes back to the Account page: the
 * code page for someone with an authenticator app, the security-key page for someone with only keys.
 */
export const accountStepUpUrl = (has: { totp: number; keys: number }): string =>
  `/signin/step-up?require=${has.totp + has.keys === 0 ? 'reauthentication' : has.totp > 0 ? 'mfa' : 'phishing-resistant-mfa'}&return_to=%2Fportal%2Faccount`;

/** A change to sign-in methods from a session that has not proved the second factor the person has. */
export class MfaStepUpRequired extends Problem {
  constructor(stepUp: string) {
    super(
      403,
      'step-up-required',
      'Verify it is you first',
      'changing how you sign in needs a recent verification with your second factor (or, without one, a recent sign-in): verify (the stepUp link), then try again',
      { stepUp },
    );
  }
}

/** Removing the only second factor while the sign-in policy requires one. */
export class LastMfaMethod extends Problem {
  constructor() {
    super(
      409,
      'last-mfa-method',
      'Your last second factor',
      'your organisation requires a second factor at sign-in and this is your only one: add another (an authenticator app or a passkey) before removing it',
    );
  }
}

/**
 * A person managing their own sign-in methods (the web console's Account page, /api/v1/me): an
 * authenticator app, passkeys and security keys, recovery codes and their password. The domain
 * parts are the ones the sign-in pages use (TotpFactors, WebAuthnFactors, RecoveryCodes,
 * UserDirectory.setPassword); this adds the rules for changing them from a signed-in session,
 * matching the security-key page's: once a person has a second factor, adding or removing one needs
 * a session that proved it; a new password needs the current one; and the last factor stays while
 * the sign-in policy requires MFA. docs/decisions/0037-account-self-service.md.
 */
export class AccountSecurity {
  constructor(
    private readonly deps: IdentityDeps,
    private readonly parts: {
      users: UserDirectory;
      totp: TotpFactors;
      webauthn?: WebAuthnFactors;
      recoveryCodes?: RecoveryCodes;
      throttle: SigninThrottle;
      /** the sign-in policy's "every user needs a second factor" */
      requireMfa: boolean;
      /** how recent the session's last authentication must be for a change (signin.accountChangeMaxAge) */
      changeMaxAgeMs: number;
    },
  ) {}

  private async factorCount(db: Kysely<Database>, userId: string): Promise<{ totp: number; keys: number }> {
    const totp = await db
      .selectFrom('totp_factors')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .executeTakeFirstOrThrow();
    const keys = await db
      .selectFrom('webauthn_credentials')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return { totp: Number(totp.n), keys: Number(keys.n) };
  }

  /**
   * Serialises changes to one person's factors: counting them and removing one must not interleave with
   * another removal (two at once could each see two factors and leave none while the policy requires one).
   * SQLite's transactions already take the write lock at BEGIN; PostgreSQL locks the person's row.
   */
  private async lockFactors(trx: Kysely<Database>, userId: string): Promise<void> {
    if (this.deps.store.engine !== 'postgres') return;
    await trx.selectFrom('users').select('id').where('id', '=', userId).forUpdate().executeTakeFirst();
  }

  /**
   * Whether this session may change sign-in methods now: it authenticated recently (a stolen or
   * forgotten-open session must not add the thief's factor or remove the owner's), and once the person
   * has a second factor, it proved one. Keycloak's "maximum authentication age" and GitHub's sudo mode
   * work the same way.
   */
  private mayChange(me: AccountHolder, n: { totp: number; keys: number }): boolean {
    const at = me.authTime ? Date.parse(me.authTime) : Number.NaN;
    const recent = Number.isFinite(at) && this.deps.clock.now().getTime() - at <= this.parts.changeMaxAgeMs;
    return recent && (n.totp + n.keys === 0 || hasMfa(me.amr));
  }

  private async requireProvedFactor(me: AccountHolder): Promise<void> {
    const n = await this.factorCount(this.deps.store.db, me.userId);
    if (!this.mayChange(me, n)) throw new MfaStepUpRequired(accountStepUpUrl(n));
  }

  private webauthn(): WebAuthnFactors {
    if (!this.parts.webauthn)
      throw new Problem(
        409,
        'webauthn-unavailable',
        'Passkeys are not offered',
        'this Ferry offers no security keys',
      );
    return this.parts.webauthn;
  }

  async status(me: AccountHolder): Promise<AccountSecurityStatus> {
    const { db } = this.deps.store;
    const user = await this.parts.users.get(me.userId);
    const n = await this.factorCount(db, me.userId);
    return {
      hasPassword: user.hasPassword,
      totp: { enrolled: n.totp > 0 },
      passkeys: this.parts.webauthn ? await this.parts.webauthn.list(me.userId) : [],
      recoveryCodesRemaining: this.parts.recoveryCodes
        ? await this.parts.recoveryCodes.remaining(me.userId)
        : 0,
      mfaRequired: this.parts.requireMfa,
      sessionHasMfa: hasMfa(me.amr),
      stepUpRequired: !this.mayChange(me, n),
      webauthn: this.parts.webauthn ? this.parts.webauthn.relyingParty() : null,
      stepUpUrl: accountStepUpUrl(n),
    };
  }

  /** Starts adding an authenticator app: the secret to scan, confirmed by `confirmTotp`. */
  async startTotp(ctx: AuditContext, me: AccountHolder): Promise<TotpEnrollment> {
    const { store } = this.deps;
    await this.requireProvedFactor(me);
    const user = await this.parts.totp.requireUser(store.db, me.userId);
    if ((await this.factorCount(store.db, me.userId)).totp > 0)
      throw new Problem(
        409,
        'totp-already-enrolled',
        'You already have an authenticator app',
        'remove the one you have before adding another',
      );
    return store.db.transaction().execute((trx) => this.parts.totp.enroll(trx, ctx, user));
  }

  /** Confirms the pending authenticator app with a code it shows (as the enrollment page does). */
  async confirmTotp(ctx: AuditContext, me: AccountHolder, code: string): Promise<void> {
    const { store, clock } = this.deps;
    await this.requireProvedFactor(me);
    const user = await this.parts.totp.requireUser(store.db, me.userId);
    if (!(await this.parts.totp.pending(store.db, user)))
      throw new Problem(
        409,
        'no-pending-totp',
        'Nothing to confirm',
        'start adding an authenticator app first',
      );
    const factorId = await store.db.transaction().execute(async (trx) => {
      const id = await this.parts.totp.verify(trx, user.id, code.slice(0, 16), true);
      if (!id) return null;
      await trx
        .updateTable('users')
        .set({ mfa_registration_required: 0 })
        .where('id', '=', user.id)
        .execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.totp.enrolled',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { factorId: id, via: 'account' },
      });
      return id;
    });
    if (!factorId)
      throw new Problem(
        400,
        'totp-code-invalid',
        'That code did not match',
        'that code did not match: check the key in your app and enter the code it shows now',
        { field: 'code' },
      );
  }

  /** Removes the authenticator app (refused when it is the last factor the policy requires). */
  async removeTotp(ctx: AuditContext, me: AccountHolder): Promise<void> {
    const { store, clock } = this.deps;
    await this.requireProvedFactor(me);
    const user = await this.parts.totp.requireUser(store.db, me.userId);
    await store.db.transaction().execute(async (trx) => {
      await this.lockFactors(trx, user.id);
      const n = await this.factorCount(trx, user.id);
      if (n.totp === 0) throw new Problem(404, 'not-found', 'Not Found', 'you have no authenticator app');
      if (this.parts.requireMfa && n.keys === 0) throw new LastMfaMethod();
      const removed = await this.parts.totp.removeConfirmed(trx, user.id);
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.totp.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { factorsRemoved: removed, via: 'account' },
      });
    });
  }

  /** The options for the browser's navigator.credentials.create() (a new passkey or security key). */
  async passkeyOptions(me: AccountHolder) {
    const webauthn = this.webauthn();
    await this.requireProvedFactor(me);
    const user = await this.parts.users.get(me.userId);
    return webauthn.registrationOptions({
      id: user.id,
      userName: user.userName,
      displayName: user.displayName,
    });
  }

  /** Verifies and stores a new passkey (WebAuthnFactors.register audits it). */
  async registerPasskey(
    ctx: AuditContext,
    me: AccountHolder,
    response: RegistrationResponseJSON,
    name: string,
  ): Promise<string> {
    const webauthn = this.webauthn();
    await this.requireProvedFactor(me);
    const user = await this.parts.users.get(me.userId);
    try {
      const id = await webauthn.register(ctx, user, response, name.trim() || 'Passkey');
      await this.deps.store.db
        .updateTable('users')
        .set({ mfa_registration_required: 0 })
        .where('id', '=', user.id)
        .execute();
      return id;
    } catch (err) {
      if (err instanceof WebAuthnRejected)
        throw new Problem(400, 'webauthn-rejected', 'The passkey was not accepted', err.message);
      throw err;
    }
  }

  /** Removes one passkey (refused when it is the last factor the policy requires). */
  async removePasskey(ctx: AuditContext, me: AccountHolder, credentialId: string): Promise<void> {
    const webauthn = this.webauthn();
    const { store, clock } = this.deps;
    await this.requireProvedFactor(me);
    const user = await this.parts.users.get(me.userId);
    await store.db.transaction().execute(async (trx) => {
      await this.lockFactors(trx, user.id);
      const n = await this.factorCount(trx, user.id);
      const mine = await trx
        .selectFrom('webauthn_credentials')
        .select('id')
        .where('id', '=', credentialId)
        .where('user_id', '=', user.id)
        .executeTakeFirst();
      if (!mine) throw new Problem(404, 'not-found', 'Not Found', 'you have no such passkey');
      if (this.parts.requireMfa && n.totp + n.keys <= 1) throw new LastMfaMethod();
      await webauthn.remove(trx, user.id, credentialId);
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.webauthn.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { credentialId, via: 'account' },
      });
    });
  }

  /** Ten new recovery codes, shown once (the earlier ones stop working). */
  async newRecoveryCodes(ctx: AuditContext, me: AccountHolder): Promise<string[]> {
    if (!this.parts.recoveryCodes)
      throw new Problem(
        409,
        'recovery-codes-unavailable',
        'No recovery codes',
        'this Ferry offers no recovery codes',
      );
    await this.requireProvedFactor(me);
    const user = await this.parts.users.get(me.userId);
    return this.parts.recoveryCodes.generate(ctx, user);
  }

  /**
   * A local account's new password, given the current one. A wrong current password counts against
   * the account like a failed sign-in (a stolen session cannot guess it at leisure). The new password
   * is set by UserDirectory.setPassword: the policy is checked there, and every session ends.
   */
  async changePassword(ctx: AuditContext, me: AccountHolder, current: string, next: string): Promise<void> {
    const { store, clock, hasher } = this.deps;
    const row = await store.db
      .selectFrom('users')
      .select(['id', 'user_name', 'password_hash'])
      .where('id', '=', me.userId)
      .executeTakeFirstOrThrow();
    if (!row.password_hash)
      throw new Problem(
        409,
        'no-local-password',
        'No password to change',
        'you sign in through your organisation’s identity provider; change your password there',
      );
    await this.requireProvedFactor(me);
    const { throttle } = this.parts;
    const keys = [accountKey(row.user_name)];
    if (!(await throttle.reserve(keys)).granted)
      throw new Problem(
        429,
        'too-many-attempts',
        'Too many attempts',
        'too many wrong passwords: try again later',
      );
    const ok = await hasher.verify(row.password_hash, current.slice(0, 1024));
    if (!ok) {
      await store.db.transaction().execute(async (trx) => {
        await throttle.recordFailure(trx, keys, true);
        await appendAudit(trx, store.engine, clock, {
          type: 'user.password-changed',
          outcome: 'failure',
          actor: ctx.actor,
          subject: row.user_name,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: { reason: 'wrong-current-password' },
        });
      });
      throw new Problem(
        400,
        'current-password-wrong',
        'Wrong current password',
        'that is not your current password',
        {
          field: 'currentPassword',
        },
      );
    }
    await store.db.transaction().execute((trx) => throttle.recordSuccess(trx, keys));
    await this.parts.users.setPassword(ctx, row.id, next);
  }
}
