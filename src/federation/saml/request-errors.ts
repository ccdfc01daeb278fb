import { Problem } from '../../problem.js';

/** SAML 2.0 Core §3.2.2.2 status codes the SSO endpoint can answer with. */
export const SAML_STATUS = {
  requester: 'urn:oasis:names:tc:SAML:2.0:status:Requester',
  responder: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
  versionMismatch: 'urn:oasis:names:tc:SAML:2.0:status:VersionMismatch',
  requestDenied: 'urn:oasis:names:tc:SAML:2.0:status:RequestDenied',
  requestUnsupported: 'urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported',
  noPassive: 'urn:oasis:names:tc:SAML:2.0:status:NoPassive',
  noAuthnContext: 'urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext',
} as const;

/**
 * Something wrong with what a service provider sent (or with how it is registered). A Problem, so an
 * error that reaches the generic handler still renders as a 400 page whose text names what was
 * received and what would have been accepted. `samlStatus` is the top-level and (optional) second-level
 * status code for the rare case where a SAML error Response may be sent back: only once the SP and
 * its ACS URL are known to be registered — never to an ACS URL taken from an unverified request.
 */
export class SamlRequestError extends Problem {
  constructor(
    code: string,
    title: string,
    detail: string,
    readonly samlStatus: readonly [string, string?],
    extensions: Record<string, unknown> = {},
  ) {
    super(400, code, title, detail, extensions);
    this.name = 'SamlRequestError';
  }
}

/** The message is not a usable AuthnRequest: not base64, not XML, wrong element, a required part missing. */
export class InvalidAuthnRequest extends SamlRequestError {
  constructor(detail: string) {
    super('saml-invalid-request', 'Invalid SAML request', detail, [SAML_STATUS.requester]);
    this.name = 'InvalidAuthnRequest';
  }
}

/** Version is not 2.0 (SAML Core §3.2.2.2 VersionMismatch). */
export class VersionMismatch extends SamlRequestError {
  constructor(received: string) {
    super(
      'saml-version-mismatch',
      'Unsupported SAML version',
      `The AuthnRequest has Version="${received}"; Ferry speaks SAML 2.0 only (Version="2.0").`,
      [SAML_STATUS.versionMismatch],
      { received },
    );
    this.name = 'VersionMismatch';
  }
}

/** Well-formed, but asks for something Ferry does not do (a binding, an algorithm, an encoding). */
export class RequestUnsupported extends SamlRequestError {
  constructor(detail: string) {
    super('saml-request-unsupported', 'Unsupported SAML request', detail, [
      SAML_STATUS.requester,
      SAML_STATUS.requestUnsupported,
    ]);
    this.name = 'RequestUnsupported';
  }
}

/** Understood, and refused: forbidden XML constructs, stale or future IssueInstant, wrong Destination. */
export class RequestDenied extends SamlRequestError {
  constructor(detail: string, extensions: Record<string, unknown> = {}) {
    super(
      'saml-request-denied',
      'SAML request refused',
      detail,
      [SAML_STATUS.requester, SAML_STATUS.requestDenied],
      extensions,
    );
    this.name = 'RequestDenied';
  }
}

/** The encoded or inflated message is larger than Ferry reads (a zip bomb stops here). */
export class AuthnRequestTooLarge extends RequestDenied {
  constructor(detail: string) {
    super(detail);
    this.name = 'AuthnRequestTooLarge';
  }
}

/** The signature is missing where the SP requires one, malformed, wrapped, or does not verify. */
export class InvalidRequestSignature extends SamlRequestError {
  constructor(detail: string) {
    super('saml-invalid-signature', 'Invalid request signature', detail, [
      SAML_STATUS.requester,
      SAML_STATUS.requestDenied,
    ]);
    this.name = 'InvalidRequestSignature';
  }
}

/** An AuthnRequest ID the SP already used inside the request validity window: a replay. */
export class ReplayedAuthnRequest extends SamlRequestError {
  constructor(
    readonly issuer: string,
    readonly requestId: string,
  ) {
    super(
      'saml-request-replayed',
      'SAML request already used',
      `The AuthnRequest "${requestId}" from "${issuer}" was already received: each request may be used once. ` +
        'Start the sign-in again from the application (a reloaded or copied sign-in link replays the old request).',
      [SAML_STATUS.requester, SAML_STATUS.requestDenied],
      { issuer, requestId },
    );
    this.name = 'ReplayedAuthnRequest';
  }
}

/** The request's Issuer is not a registered service provider. */
export class UnknownServiceProvider extends SamlRequestError {
  constructor(
    readonly received: string,
    readonly registered: string[],
  ) {
    super(
      'saml-unknown-sp',
      'Unknown service provider',
      `No service provider with entity id "${received}" is registered in Ferry.${nearMatchHint(received, registered)} ` +
        `Registered entity ids: ${listOrNone(registered)}.`,
      [SAML_STATUS.requester, SAML_STATUS.requestDenied],
      { received, registered },
    );
    this.name = 'UnknownServiceProvider';
  }
}

/** The AssertionConsumerServiceURL / Index in the request is not one registered for the SP. */
export class UnregisteredAcs extends SamlRequestError {
  constructor(
    readonly entityId: string,
    readonly received: string,
    readonly registered: string[],
  ) {
    super(
      'saml-unregistered-acs',
      'Unregistered assertion consumer service',
      `The AuthnRequest from "${entityId}" asks for the assertion to be sent to ${received}, which is not ` +
        `registered for that service provider.${nearMatchHint(received, registered)} ` +
        `Registered: ${listOrNone(registered)}.`,
      [SAML_STATUS.requester, SAML_STATUS.requestDenied],
      { entityId, received, registered },
    );
    this.name = 'UnregisteredAcs';
  }
}

function listOrNone(values: string[]): string {
  return values.length === 0 ? '(none)' : values.map((v) => `"${v}"`).join(', ');
}

/**
 * Names the registered value the received one was probably meant to be: the usual misconfigurations
 * are a trailing slash, letter case, http vs https, and the several host names AWS uses for the same
 * IAM Identity Center endpoint (signin.aws, signin.aws.amazon.com, sso.signin.aws).
 */
export function nearMatchHint(received: string, registered: string[]): string {
  const loose = (s: string) =>
    s
      .trim()
      .toLowerCase()
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '');
  const hostless = (s: string) => {
    const m = /^https?:\/\/[^/]+(\/.*)$/i.exec(s.trim());
    return m?.[1] ? m[1].replace(/\/+$/, '') : undefined;
  };
  const exactish = registered.find((r) => r !== received && loose(r) === loose(received));
  if (exactish)
    return ` It differs from the registered "${exactish}" only in case, scheme or a trailing slash.`;
  const path = hostless(received);
  const sameRest = path ? registered.find((r) => r !== received && hostless(r) === path) : undefined;
  if (sameRest) return ` The registered "${sameRest}" has the same path on a different host.`;
  return '';
}
