import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Principal } from '../access/principal.js';
import type { Clock } from '../clock.js';
import type { SigningKey } from '../keys/signing-keys.js';

/** How long an identity header is valid: one request's trip to the upstream, with clock skew. */
export const IDENTITY_HEADER_SECONDS = 60;

/** The app's view of who is asking, signed so it verifies with Ferry's JWKS (/oidc/jwks). */
export interface IdentityClaims {
  sub: string;
  preferred_username: string;
  email?: string;
  name?: string;
  groups: string[];
  amr: string[];
  /** `user` or `workload` */
  ferry_kind: string;
}

/**
 * Signs the `X-Ferry-Identity` JWT: ES256 with the current OIDC key (kid in the header), iss = Ferry's
 * issuer, aud = the app's public URL, exp a minute away. The key is re-read at most once a minute.
 */
export class IdentityHeaderSigner {
  #key: { value: Promise<SigningKey>; readAt: number } | null = null;

  constructor(
    private readonly currentKey: () => Promise<SigningKey>,
    private readonly issuer: () => string,
    private readonly clock: Clock,
    private readonly lifetimeSeconds = IDENTITY_HEADER_SECONDS,
  ) {}

  async sign(
    principal: Principal & {
      emails?: Array<{ value: string; primary?: boolean }>;
      displayName?: string | null;
    },
    audience: string,
  ): Promise<string> {
    const key = await this.#currentKey();
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const email = principal.emails?.find((e) => e.primary)?.value ?? principal.emails?.[0]?.value;
    const claims: Omit<IdentityClaims, 'sub'> = {
      preferred_username: principal.userName,
      ...(email ? { email } : {}),
      ...(principal.displayName ? { name: principal.displayName } : {}),
      groups: principal.groups.map((g) => g.name),
      amr: principal.amr,
      ferry_kind: principal.kind,
    };
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: key.id, typ: 'JWT' })
      .setIssuer(this.issuer().replace(/\/+$/, ''))
      .setAudience(audience)
      .setSubject(principal.id)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + this.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  #currentKey(): Promise<SigningKey> {
    const now = this.clock.now().getTime();
    if (!this.#key || now - this.#key.readAt > 60_000) {
      const value = this.currentKey();
      value.catch(() => {
        this.#key = null;
      });
      this.#key = { value, readAt: now };
    }
    return this.#key.value;
  }
}
