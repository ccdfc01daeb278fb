import type { SamlAttribute } from './response.js';

/**
 * AWS's SAML attribute contract for console sign-in and AssumeRoleWithSAML:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_saml_assertions.html
 * Everything AWS would refuse is refused here first, with a message that says what and why, so a
 * broken assertion is never sent.
 */

import { type Partition, SIGNIN_ENDPOINTS } from '../../access/aws-accounts.js';
import { AWS_IDENTITY_PATTERN } from '../../access/aws-identity.js';

export const AWS_SAML_AUDIENCE = 'urn:amazon:webservices';

export type AwsPartition = Partition;

/** Where the console sign-in POST goes (the assertion's Destination and Recipient), per partition. */
export const AWS_SIGNIN_ENDPOINTS: Readonly<Record<AwsPartition, string>> = SIGNIN_ENDPOINTS;

export function awsSignInEndpoint(partition: AwsPartition): string {
  const url = AWS_SIGNIN_ENDPOINTS[partition];
  if (!url) throw new InvalidAwsAttribute('Partition', `unknown AWS partition ${JSON.stringify(partition)}`);
  return url;
}

const ATTR = 'https://aws.amazon.com/SAML/Attributes/';
export const AWS_ATTRIBUTE = {
  role: `${ATTR}Role`,
  roleSessionName: `${ATTR}RoleSessionName`,
  sourceIdentity: `${ATTR}SourceIdentity`,
  sessionDuration: `${ATTR}SessionDuration`,
  principalTagPrefix: `${ATTR}PrincipalTag:`,
  transitiveTagKeys: `${ATTR}TransitiveTagKeys`,
} as const;

const URI_NAME_FORMAT = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';

export const SESSION_DURATION_MIN = 900;
export const SESSION_DURATION_MAX = 43_200;
export const MAX_SESSION_TAGS = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;

/** A value AWS would reject. `attribute` names the AWS attribute (Role, RoleSessionName, …). */
export class InvalidAwsAttribute extends Error {
  constructor(
    readonly attribute: string,
    message: string,
  ) {
    super(`AWS SAML attribute ${attribute}: ${message}`);
    this.name = 'InvalidAwsAttribute';
  }
}

const SESSION_NAME = AWS_IDENTITY_PATTERN;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

function assertName(attribute: string, value: string): void {
  if (!SESSION_NAME.test(value)) {
    throw new InvalidAwsAttribute(
      attribute,
      `${JSON.stringify(value)} must be 2 to 64 of letters, digits and _+=,.@- (derive it with awsIdentityOf)`,
    );
  }
}

/**
 * The session length to ask AWS for: the request (or, without one, the longest allowed), never above
 * the role's MaxSessionDuration nor the decision's limit, and within AWS's 900..43200 seconds.
 * Throws when a limit is below AWS's minimum: no valid duration exists then.
 */
export function clampSessionDuration(
  requested: number | undefined,
  roleMaxSeconds: number,
  decisionMaxSeconds: number,
): number {
  for (const [what, limit] of [
    ['the role MaxSessionDuration', roleMaxSeconds],
    ['the access decision limit', decisionMaxSeconds],
  ] as const) {
    if (!Number.isFinite(limit)) throw new InvalidAwsAttribute('SessionDuration', `${what} is not a number`);
    if (limit < SESSION_DURATION_MIN) {
      throw new InvalidAwsAttribute(
        'SessionDuration',
        `${what} (${limit} s) is below AWS's minimum session of ${SESSION_DURATION_MIN} s`,
      );
    }
  }
  if (requested !== undefined && !Number.isFinite(requested)) {
    throw new InvalidAwsAttribute('SessionDuration', 'the requested duration is not a number');
  }
  const ceiling = Math.floor(Math.min(roleMaxSeconds, decisionMaxSeconds, SESSION_DURATION_MAX));
  const wanted = Math.floor(requested ?? ceiling);
  return Math.max(SESSION_DURATION_MIN, Math.min(wanted, ceiling));
}

const ROLE_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const PROVIDER_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::(\d{12}):saml-provider\/[\w.-]{1,128}$/;

export interface AwsRoleChoice {
  roleArn: string;
  providerArn: string;
}

export interface AwsAttributesInput {
  /** Every role the user may pick; more than one makes AWS show its role picker. */
  roles: AwsRoleChoice[];
  /** The person's AWS identity (awsIdentityOf in aws-identity.ts); checked again here. */
  sessionName: string;
  /** The same value as sessionName (awsIdentityOf); omitted when undefined. */
  sourceIdentity?: string;
  /** Already clamped (clampSessionDuration); checked to be within 900..43200. */
  sessionDurationSeconds: number;
  principalTags?: Record<string, string>;
  /** Must be keys of principalTags. */
  transitiveTagKeys?: string[];
}

/** Checks one session tag the way STS does; returns nothing, throws InvalidAwsAttribute. */
export function assertSessionTag(key: string, value: string): void {
  if (!TAG_KEY.test(key)) {
    throw new InvalidAwsAttribute(
      `PrincipalTag:${key}`,
      `tag key must be 1 to ${MAX_TAG_KEY_LENGTH} letters, digits, spaces and _.:/=+-@`,
    );
  }
  if (/^aws:/i.test(key)) {
    throw new InvalidAwsAttribute(`PrincipalTag:${key}`, 'tag keys starting with aws: are reserved by AWS');
  }
  if (typeof value !== 'string' || value.length > MAX_TAG_VALUE_LENGTH) {
    throw new InvalidAwsAttribute(
      `PrincipalTag:${key}`,
      `tag value must be a string of at most ${MAX_TAG_VALUE_LENGTH} characters`,
    );
  }
  if (!TAG_VALUE.test(value)) {
    throw new InvalidAwsAttribute(
      `PrincipalTag:${key}`,
      `tag value ${JSON.stringify(value)} may only hold letters, digits, spaces and _.:/=+-@`,
    );
  }
}

/** The AWS attributes of one assertion, in the order AWS documents them. */
export function awsAttributes(input: AwsAttributesInput): SamlAttribute[] {
  if (input.roles.length === 0) throw new InvalidAwsAttribute('Role', 'at least one role is required');
  const roleValues: string[] = [];
  for (const { roleArn, providerArn } of input.roles) {
    const role = ROLE_ARN.exec(roleArn);
    if (!role) throw new InvalidAwsAttribute('Role', `${JSON.stringify(roleArn)} is not an IAM role ARN`);
    const provider = PROVIDER_ARN.exec(providerArn);
    if (!provider) {
      throw new InvalidAwsAttribute('Role', `${JSON.stringify(providerArn)} is not an IAM SAML provider ARN`);
    }
    if (role[1] !== provider[1] || role[2] !== provider[2]) {
      throw new InvalidAwsAttribute(
        'Role',
        `role ${roleArn} and SAML provider ${providerArn} must be in the same account and partition`,
      );
    }
    const value = `${roleArn},${providerArn}`;
    if (!roleValues.includes(value)) roleValues.push(value);
  }
  assertName('RoleSessionName', input.sessionName);
  if (input.sourceIdentity !== undefined) assertName('SourceIdentity', input.sourceIdentity);
  const duration = input.sessionDurationSeconds;
  if (!Number.isInteger(duration) || duration < SESSION_DURATION_MIN || duration > SESSION_DURATION_MAX) {
    throw new InvalidAwsAttribute(
      'SessionDuration',
      `${duration} must be a whole number of seconds from ${SESSION_DURATION_MIN} to ${SESSION_DURATION_MAX}`,
    );
  }

  const tags = Object.entries(input.principalTags ?? {});
  if (tags.length > MAX_SESSION_TAGS) {
    throw new InvalidAwsAttribute(
      'PrincipalTag',
      `${tags.length} session tags; AWS allows at most ${MAX_SESSION_TAGS}`,
    );
  }
  const seen = new Map<string, string>();
  for (const [key, value] of tags) {
    assertSessionTag(key, value);
    const folded = key.toLowerCase();
    const clash = seen.get(folded);
    if (clash !== undefined) {
      throw new InvalidAwsAttribute(
        `PrincipalTag:${key}`,
        `tag keys are case-insensitive in AWS; ${key} and ${clash} collide`,
      );
    }
    seen.set(folded, key);
  }
  const transitive = [...new Set(input.transitiveTagKeys ?? [])];
  for (const key of transitive) {
    if (!seen.has(key.toLowerCase())) {
      throw new InvalidAwsAttribute('TransitiveTagKeys', `${key} is not one of the session tags`);
    }
  }

  const attr = (name: string, values: string[]): SamlAttribute => ({
    name,
    nameFormat: URI_NAME_FORMAT,
    values,
  });
  const out: SamlAttribute[] = [
    attr(AWS_ATTRIBUTE.role, roleValues),
    attr(AWS_ATTRIBUTE.roleSessionName, [input.sessionName]),
  ];
  if (input.sourceIdentity !== undefined)
    out.push(attr(AWS_ATTRIBUTE.sourceIdentity, [input.sourceIdentity]));
  out.push(attr(AWS_ATTRIBUTE.sessionDuration, [String(duration)]));
  for (const [key, value] of tags) out.push(attr(`${AWS_ATTRIBUTE.principalTagPrefix}${key}`, [value]));
  if (transitive.length > 0) out.push(attr(AWS_ATTRIBUTE.transitiveTagKeys, transitive));
  return out;
}
