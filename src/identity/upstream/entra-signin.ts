import * as oidc from 'openid-client';
import { type Actor, anonymous, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { isUniqueViolation } from '../../store/errors.js';
import type { IdentityDeps } from '../deps.js';
import type { GroupDirectory } from '../groups.js';
import { DEFAULT_LANDING } from '../landing.js';
import { secretsEqual } from '../secrets.js';
import type { Session, SessionStore } from '../sessions.js';
import type { SigninRequest } from '../signin.js';
import type { UserDirectory } from '../users.js';
import { UpstreamAccounts } from './accounts.js';
import { type EntraIdentity, entraIdentityOf } from './claims.js';
import { EntraClient, entraErrorText } from './entra-client.js';
import { UpstreamSigninError } from './errors.js';
import { memberGroupIds } from './graph.js';
import type { EntraOptions } from './options.js';
import { PendingSignins } from './signin-requests.js';

export const ENTRA_PROVIDER = 'entra';

export type UpstreamResult =
  | { status: 'signed-in'; token: string; session: Session; returnTo: string }
  | { status: 'failed'; error: UpstreamSigninError; returnTo: string };

/** Callback query parameters as they arrive (strings, or absent). */
export type CallbackQuery = Record<string, string | undefined>;

/**
 * Sign-in with Microsoft Entra ID: authorization code + PKCE + state + nonce, the ID token verified by
 * openid-client, the person mapped to a Ferry user, and a Ferry session whose amr is the one Entra
 * reported (so an MFA done in Entra counts). Every outcome is audited.
 */
export class EntraSignin {
  private readonly client: EntraClient;
  private readonly pending: PendingSignins;
  private readonly accounts: UpstreamAccounts;

  constructor(
    private readonly deps: IdentityDeps,
    private readonly sessions: SessionStore,
    users: UserDirectory,
    groups: GroupDirectory,
    readonly options: EntraOptions,
    private readonly onOutcome?: (outcome: 'success' | 'failure') => void,
  ) {
    this.client = new EntraClient(options);
    this.pending = new PendingSignins(deps.store.db, deps.clock, deps.masterKey, options.requestLifetimeMs);
    this.accounts = new UpstreamAccounts(deps, users, groups, {
      provider: ENTRA_PROVIDER,
      userMapping: options.userMapping,
      syncGroups: options.syncGroups,
    });
  }

  /** Starts a sign-in: returns where to send the browser and the state to bind to it (a cookie). */
  async begin(
    returnTo: string,
    req: SigninRequest,
  ): Promise<{ url: string; state: string } | UpstreamSigninError> {
    const checks = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    };
    try {
      const url = await this.client.authorizationUrl(checks);
      await this.pending.save({ provider: ENTRA_PROVIDER, ...checks, returnTo });
      return { url, state: checks.state };
    } catch (err) {
      if (!(err instanceof UpstreamSigninError)) throw err;
      await this.auditFailure(err, null, req);
      return err;
    }
  }

  /**
   * Finishes a sign-in from the callback. `browserState` is the state cookie: a state that came back
   * to another browser than the one that started the sign-in is refused (login CSRF).
   */
  async finish(
    query: CallbackQuery,
    callbackUrl: URL,
    browserState: string | undefined,
    req: SigninRequest,
  ): Promise<UpstreamResult> {
    let identity: EntraIdentity | null = null;
    let returnTo = DEFAULT_LANDING;
    try {
      // Taken first, so a state is spent even when the answer is an error.
      const pending = query.state ? await this.pending.take(ENTRA_PROVIDER, query.state) : null;
      if (pending) returnTo = pending.returnTo;
      const bound = pending !== null && !!browserState && secretsEqual(browserState, pending.state);
      if (query.error) {
        const text = entraErrorText(query.error.slice(0, 100), query.error_description);
        // Entra's words are shown only on an answer to this browser's own sign-in: anyone can craft
        // a callback link, and Ferry's page must not repeat a stranger's text.
        throw new UpstreamSigninError(
          'idp-error',
          `authorization response: ${text}`,
          bound ? `(${text})` : undefined,
        );
      }
      if (!pending) throw new UpstreamSigninError('state-invalid', 'unknown, expired or already used state');
      if (!bound) throw new UpstreamSigninError('state-invalid', 'state was not issued to this browser');
      const { claims, accessToken } = await this.client.exchange(callbackUrl, pending);
      identity = entraIdentityOf(claims);
      if (!this.options.allowedTenants.includes(identity.tenantId)) {
        throw new UpstreamSigninError('tenant-not-allowed', `tenant ${identity.tenantId} is not allowed`);
      }
      const groupIds =
        identity.groupsOverage && this.options.syncGroups
          ? await memberGroupIds(this.options.graphUrl, accessToken)
          : identity.groups;
      const person = identity;
      const signedIn = await this.complete(person, groupIds, req).catch((err: unknown) => {
        // Two first sign-ins of one person at once: the loser's insert collides; the retry finds the link.
        if (isUniqueViolation(err)) return this.complete(person, groupIds, req);
        throw err;
      });
      this.onOutcome?.('success');
      return { status: 'signed-in', ...signedIn, returnTo };
    } catch (err) {
      // Anything else (the database gone) is the server's own failure, answered by its error handler.
      if (!(err instanceof UpstreamSigninError)) throw err;
      await this.auditFailure(err, identity, req);
      this.onOutcome?.('failure');
      return { status: 'failed', error: err, returnTo };
    }
  }

  private complete(identity: EntraIdentity, groupIds: string[] | null, req: SigninRequest) {
    const { store, clock } = this.deps;
    const amr = identity.amr.length > 0 ? identity.amr : ['fed'];
    return store.db.transaction().execute(async (trx) => {
      const changes = {
        actor: systemActor(`upstream:${ENTRA_PROVIDER}`),
        ip: req.ip,
        requestId: req.requestId,
      };
      const account = await this.accounts.resolveIn(trx, changes, identity, groupIds);
      const { user } = account;
      const { token, session } = await this.sessions.start(trx, {
        userId: user.id,
        state: 'active',
        amr,
        ip: req.ip,
        userAgent: req.userAgent ?? null,
      });
      const actor: Actor = { type: 'user', id: user.id, name: user.user_name };
      await appendAudit(trx, store.engine, clock, {
        type: 'signin',
        outcome: 'success',
        actor,
        subject: user.user_name,
        ip: req.ip,
        requestId: req.requestId,
        data: {
          step: 'upstream',
          provider: ENTRA_PROVIDER,
          sessionId: session.id,
          amr,
          tenantId: identity.tenantId,
          objectId: identity.objectId,
          userCreated: account.created,
          groupsAdded: account.groupsAdded,
          groupsRemoved: account.groupsRemoved,
          groupsFrom: identity.groupsOverage ? 'graph' : identity.groups ? 'token' : 'none',
          userAgent: req.userAgent?.slice(0, 200) ?? null,
        },
      });
      return { token, session };
    });
  }

  private async auditFailure(error: UpstreamSigninError, identity: EntraIdentity | null, req: SigninRequest) {
    const { store, clock } = this.deps;
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'signin',
        outcome: 'failure',
        actor: anonymous,
        subject: identity?.userName ?? null,
        ip: req.ip,
        requestId: req.requestId,
        data: {
          step: 'upstream',
          provider: ENTRA_PROVIDER,
          reason: error.reason,
          detail: error.detail,
          ...(identity ? { tenantId: identity.tenantId, objectId: identity.objectId } : {}),
          userAgent: req.userAgent?.slice(0, 200) ?? null,
        },
      }),
    );
  }

  /** Removes sign-ins that never came back. */
  purgeExpired(): Promise<number> {
    return this.pending.purgeExpired();
  }
}
