import { authenticator } from 'otplib';

/** RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits, 30 s steps. */
export const TOTP_STEP_SECONDS = 30;

export function generateTotpSecret(): string {
  return authenticator.generateSecret(20); // 160 bits, as RFC 4226 recommends
}

export function totpUri(secret: string, account: string, issuer: string): string {
  return authenticator.keyuri(account, issuer, secret);
}

/** The code an authenticator shows at `at` (used by the demo and tests, like a phone would). */
export function totpCode(secret: string, at: Date): string {
  return authenticator.clone({ epoch: at.getTime() }).generate(secret);
}

/**
 * Returns the time step the code belongs to (one step of drift either way is accepted), or null
 * when it matches none. The caller refuses steps at or before the last one used.
 */
export function matchTotpStep(secret: string, code: string, at: Date): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = authenticator.clone({ epoch: at.getTime(), window: 1 }).checkDelta(code, secret);
  if (delta === null) return null;
  return Math.floor(at.getTime() / 1000 / TOTP_STEP_SECONDS) + delta;
}
