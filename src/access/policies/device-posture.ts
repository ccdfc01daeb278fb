import { createPublicKey, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { Clock } from '../../clock.js';

/** What a verified device posture assertion says. */
export interface DevicePosture {
  deviceId: string;
  compliant: boolean;
}

export type PostureResult = { ok: true; posture: DevicePosture } | { ok: false; problem: string };

/**
 * Device posture assertions: a short-lived JWT an MDM or device agent signs (`iss` the configured
 * issuer, `sub` the device id, `compliant` true/false, `upn` the person it was issued for). Ferry
 * holds only the issuer's public key, so it trusts no claim it can't verify.
 */
export class DevicePostureVerifier {
  readonly #key: KeyObject;
  constructor(
    private readonly issuer: string,
    publicKeyPem: string,
    private readonly clock: Clock,
  ) {
    this.#key = createPublicKey(publicKeyPem);
  }

  async verify(assertion: string, userName: string): Promise<PostureResult> {
    if (assertion.length > 8192) return { ok: false, problem: 'the device assertion is too long' };
    try {
      const { payload } = await jwtVerify(assertion, this.#key, {
        issuer: this.issuer,
        currentDate: this.clock.now(),
        requiredClaims: ['exp', 'sub'],
        maxTokenAge: '1h',
        clockTolerance: 30,
      });
      const upn = typeof payload.upn === 'string' ? payload.upn : null;
      if (upn !== null && upn.toLowerCase() !== userName.toLowerCase())
        return { ok: false, problem: `the device assertion was issued for ${upn}, not ${userName}` };
      return { ok: true, posture: { deviceId: String(payload.sub), compliant: payload.compliant === true } };
    } catch (err) {
      return { ok: false, problem: `the device assertion is not valid (${(err as Error).message})` };
    }
  }
}
