/**
 * Domain errors every module may raise; the HTTP layer turns them into RFC 7807 problems.
 * Protocol modules (SAML, OAuth, SCIM) keep their own error classes named after their specs' codes.
 */
export class NotFound extends Error {
  constructor(
    readonly kind: string,
    readonly ref: string,
  ) {
    super(`${kind} ${ref} not found`);
    this.name = 'NotFound';
  }
}

export class Conflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Conflict';
  }
}

export class InvalidInput extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'InvalidInput';
  }
}
