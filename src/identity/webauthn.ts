import { randomBytes } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  VerifiedAuthenticationResponse,
  VerifiedRegistrationResponse,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { addMs, iso } from '../clock.js';
import type { Database } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';

/** @simplewebauthn/server and its ASN.1 stack (≈400 ms to load) load at the first ceremony (ADR 0046). */
const webauthnLibrary = () => import('@simplewebauthn/server');

/** How long a ceremony's challenge is good for (the browser's own timeout is shorter). */
const CHALLENGE_TTL_MS = 5 * 60_000;

/** A registered security key or passkey. */
export interface WebAuthnCredentialView {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** Why a WebAuthn ceremony failed: audited, shown to nobody but the admin. */
export class WebAuthnRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebAuthnRejected';
  }
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/**
 * WebAuthn (security keys, passkeys): the phishing-resistant factor. The relying party is Ferry's
 * public URL (its host is the RP ID, its origin the only accepted origin); each challenge is
 * single-use, stored in the database so any instance can finish a ceremony another one started.
 */
export class WebAuthnFactors {
  constructor(
    private readonly deps: IdentityDeps,
    /** Ferry's public URL, read per ceremony (it may be known only after listening) */
    private readonly publicUrl: () => string,
  ) {}

  private rp() {
    const url = new URL(this.publicUrl());
    return { rpID: url.hostname, origin: url.origin };
  }

  async has(db: Kysely<Database>, userId: string): Promise<boolean> {
    const row = await db
      .selectFrom('webauthn_credentials')
      .select('id')
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async list(userId: string): Promise<WebAuthnCredentialView[]> {
    const rows = await this.deps.store.db
      .selectFrom('webauthn_credentials')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
  }

  /** Removes one of the user's credentials in the caller's transaction; false when it is not theirs. */
  async remove(trx: Kysely<Database>, userId: string, credentialId: string): Promise<boolean> {
    const res = await trx
      .deleteFrom('webauthn_credentials')
      .where('id', '=', credentialId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  /** The relying party ceremonies use: the RP ID (Ferry's host name) and the one accepted origin. */
  relyingParty(): { rpId: string; origin: string } {
    const { rpID, origin } = this.rp();
    return { rpId: rpID, origin };
  }

  async registrationOptions(user: {
    id: string;
    userName: string;
    displayName?: string | null;
  }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const { rpID } = this.rp();
    const existing = await this.deps.store.db
      .selectFrom('webauthn_credentials')
      .select(['id', 'transports'])
      .where('user_id', '=', user.id)
      .execute();
    const { generateRegistrationOptions } = await webauthnLibrary();
    const options = await generateRegistrationOptions({
      rpName: 'Ferry',
      rpID,
      userName: user.userName,
      userDisplayName: user.displayName ?? user.userName,
      userID: new TextEncoder().encode(user.id),
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({
        id: c.id,
        transports: JSON.parse(c.transports) as AuthenticatorTransport[],
      })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      challenge: randomBytes(32),
    });
    await this.remember(options.challenge, user.id, 'register');
    return options;
  }

  /** Verifies a registration and stores the credential; returns its id. Throws WebAuthnRejected. */
  async register(
    ctx: AuditContext,
    user: { id: string; userName: string },
    response: RegistrationResponseJSON,
    name: string,
  ): Promise<string> {
    const { rpID, origin } = this.rp();
    const { store, clock } = this.deps;
    const { verifyRegistrationResponse } = await webauthnLibrary();
    return store.db.transaction().execute(async (trx) => {
      let verified: VerifiedRegistrationResponse;
      try {
        verified = await verifyRegistrationResponse({
          response,
          expectedChallenge: (c) => this.consume(trx, c, user.id, 'register'),
          expectedOrigin: origin,
          expectedRPID: rpID,
          requireUserVerification: false,
        });
      } catch (err) {
        throw new WebAuthnRejected((err as Error).message);
      }
      if (!verified.verified) throw new WebAuthnRejected('the registration did not verify');
      const cred = verified.registrationInfo.credential;
      const now = iso(clock.now());
      await trx
        .insertInto('webauthn_credentials')
        .values({
          id: cred.id,
          user_id: user.id,
          public_key: b64url(cred.publicKey),
          counter: cred.counter,
          transports: JSON.stringify(cred.transports ?? []),
          name: name.slice(0, 64) || 'Security key',
          created_at: now,
          last_used_at: now,
        })
        .execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'mfa.webauthn.registered',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { credentialId: cred.id, deviceType: verified.registrationInfo.credentialDeviceType },
      });
      return cred.id;
    });
  }

  async authenticationOptions(userId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { rpID } = this.rp();
    const creds = await this.deps.store.db
      .selectFrom('webauthn_credentials')
      .select(['id', 'transports'])
      .where('user_id', '=', userId)
      .execute();
    const { generateAuthenticationOptions } = await webauthnLibrary();
    const options = await generateAuthenticationOptions({
      rpID,
      allowCredentials: creds.map((c) => ({
        id: c.id,
        transports: JSON.parse(c.transports) as AuthenticatorTransport[],
      })),
      userVerification: 'preferred',
      challenge: randomBytes(32),
    });
    await this.remember(options.challenge, userId, 'authenticate');
    return options;
  }

  /**
   * Verifies an assertion by one of the user's credentials, in the caller's transaction: the
   * challenge is consumed and the signature counter must move forward (a cloned key is refused).
   */
  async authenticate(
    trx: Kysely<Database>,
    userId: string,
    response: AuthenticationResponseJSON,
  ): Promise<string> {
    const { verifyAuthenticationResponse } = await webauthnLibrary();
    const { rpID, origin } = this.rp();
    const row = await trx
      .selectFrom('webauthn_credentials')
      .selectAll()
      .where('id', '=', String(response.id ?? ''))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (!row) throw new WebAuthnRejected('unknown credential for this user');
    let verified: VerifiedAuthenticationResponse;
    try {
      verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: (c) => this.consume(trx, c, userId, 'authenticate'),
        expectedOrigin: origin,
        expectedRPID: rpID,
        credential: {
          id: row.id,
          publicKey: new Uint8Array(Buffer.from(row.public_key, 'base64url')),
          counter: Number(row.counter),
          transports: JSON.parse(row.transports) as AuthenticatorTransport[],
        },
        requireUserVerification: false,
      });
    } catch (err) {
      throw new WebAuthnRejected((err as Error).message);
    }
    if (!verified.verified) throw new WebAuthnRejected('the assertion did not verify');
    await trx
      .updateTable('webauthn_credentials')
      .set({ counter: verified.authenticationInfo.newCounter, last_used_at: iso(this.deps.clock.now()) })
      .where('id', '=', row.id)
      .execute();
    return row.id;
  }

  private async remember(challenge: string, userId: string, purpose: 'register' | 'authenticate') {
    const { store, clock } = this.deps;
    const now = clock.now();
    await store.db.deleteFrom('webauthn_challenges').where('expires_at', '<', iso(now)).execute();
    await store.db
      .insertInto('webauthn_challenges')
      .values({ challenge, user_id: userId, purpose, expires_at: iso(addMs(now, CHALLENGE_TTL_MS)) })
      .execute();
  }

  /** True once for a live challenge issued to this user for this purpose; it is deleted either way. */
  private async consume(
    trx: Kysely<Database>,
    challenge: string,
    userId: string,
    purpose: string,
  ): Promise<boolean> {
    const row = await trx
      .selectFrom('webauthn_challenges')
      .selectAll()
      .where('challenge', '=', challenge)
      .executeTakeFirst();
    if (!row) return false;
    await trx.deleteFrom('webauthn_challenges').where('challenge', '=', challenge).execute();
    return row.user_id === userId && row.purpose === purpose && row.expires_at > iso(this.deps.clock.now());
  }
}
