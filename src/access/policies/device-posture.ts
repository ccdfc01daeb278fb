import { createPublicKey, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { Clock } from '../../clock.js';

/** What a verified device posture assertion says. */
export interface DevicePosture {
  deviceId: string;
  compliant: boolean;
}

export type PostureResult = { ok: true; posture: DevicePosture } | { ok: false; problem: string };

export interface DevicePostureOptions {
  /** the MDM or device agent that signs assertions (`iss`) */
  issuer: string;
  publicKeyPem: string;
  /** what `aud` must name: Ferry (its public URL unless configured) */
  audience: string;
  /** how old (`iat`) an assertion may be; a posture is a statement about now, not about this morning */
  maxAgeSeconds: number;
}

/** Whom the assertion is for: it must name this person (or workload) as its subject. */
export interface PostureSubject {
  id: string;
  userName: string;
}

const CLOCK_TOLERANCE_SECONDS = 30;

/**
 * Device posture assertions: a short-lived JWT an MDM or device agent signs with `iss` the configured
 * issuer, `aud` Ferry, `sub` the person (their user id or UPN), `iat` within the maximum age, `compliant`
 * true/false and `device_id` the device. Ferry holds only the issuer's public key, so it trusts no claim it
 * can't verify; an assertion bound to someone else, to another audience or from long ago counts for
 * nothing, with the reason shown in what-if. (Ferry has no device registry yet, so a device id alone as
 * `sub` can't be tied to a person and is refused.)
 */
export class DevicePostureVerifier {
  readonly #key: KeyObject;
  constructor(
    private readonly options: DevicePostureOptions,
    private readonly clock: Clock,
  ) {
    this.#key = createPublicKey(options.publicKeyPem);
  }

  async verify(assertion: string, subject: PostureSubject): Promise<PostureResult> {
    if (assertion.length > 8192) return { ok: false, problem: 'the device assertion is too long' };
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(assertion, this.#key, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        currentDate: this.clock.now(),
        requiredClaims: ['exp', 'iat', 'sub', 'aud'],
        maxTokenAge: this.options.maxAgeSeconds,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (err) {
      return { ok: false, problem: `the device assertion is not valid (${(err as Error).message})` };
    }
    const sub = String(payload['sub']);
    if (sub !== subject.id && sub.toLowerCase() !== subject.userName.toLowerCase())
      return {
        ok: false,
        problem: `the device assertion is about ${JSON.stringify(sub)}, not ${subject.userName} (its sub must name the person)`,
      };
    const upn = typeof payload['upn'] === 'string' ? payload['upn'] : null;
    if (upn !== null && upn.toLowerCase() !== subject.userName.toLowerCase())
      return { ok: false, problem: `the device assertion was issued for ${upn}, not ${subject.userName}` };
    const deviceId = typeof payload['device_id'] === 'string' ? payload['device_id'] : 'unnamed';
    return { ok: true, posture: { deviceId, compliant: payload['compliant'] === true } };
  }
}
