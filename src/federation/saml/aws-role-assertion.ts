import { randomUUID } from 'node:crypto';
import type { AwsAccount, AwsRole } from '../../access/aws-accounts.js';
import { authnMeaningOf } from '../../authn/amr.js';
import type { Clock } from '../../clock.js';
import type { SigningKeys } from '../../keys/signing-keys.js';
import { AWS_SAML_AUDIENCE, awsAttributes } from './aws-attributes.js';
import { buildSignedResponse, NAMEID_FORMAT } from './response.js';

export interface RoleAssertionInput {
  /** the person's (or workload's) stable id: the persistent NameID */
  subjectId: string;
  /** UPN (or workload name) */
  userName: string;
  /** RoleSessionName and SourceIdentity: the caller's awsIdentityOf (access/aws-identity.ts) */
  awsIdentity: string;
  account: AwsAccount;
  role: AwsRole;
  durationSeconds: number;
  sessionTags: Record<string, string>;
  authTime: Date | null;
  /** RFC 8176 methods of the sign-in behind the request: the assertion states what it really was */
  amr: readonly string[];
}

export interface RoleAssertion {
  /** the SAMLResponse, base64: what AssumeRoleWithSAML takes */
  base64: string;
  assertionId: string;
  sessionName: string;
  sourceIdentity: string;
}

/**
 * A SAML assertion for exactly one AWS role, for Ferry itself to exchange at STS
 * (AssumeRoleWithSAML): the same trust as the console sign-in, so an account set up once for the
 * console also serves `ferry creds`, and AWS never needs to reach Ferry (see docs/decisions/0011).
 */
export class AwsRoleAssertions {
  constructor(
    private readonly signingKeys: SigningKeys,
    private readonly clock: Clock,
    private readonly entityId: () => string,
    private readonly lifetimeSeconds: number,
  ) {}

  async build(input: RoleAssertionInput): Promise<RoleAssertion> {
    const key = await this.signingKeys.current('saml');
    const now = this.clock.now();
    const sessionName = input.awsIdentity;
    const sourceIdentity = input.awsIdentity;
    const tags = input.sessionTags;
    const response = buildSignedResponse(
      {
        issuer: this.entityId(),
        destination: input.account.signinEndpoint,
        recipient: input.account.signinEndpoint,
        audience: AWS_SAML_AUDIENCE,
        nameId: { format: NAMEID_FORMAT.persistent, value: input.subjectId },
        sessionIndex: randomUUID(),
        authnInstant: input.authTime ?? now,
        authnContextClassRef: authnMeaningOf(input.amr).samlAuthnContext,
        attributes: awsAttributes({
          roles: [{ roleArn: input.role.arn, providerArn: input.account.samlProviderArn }],
          sessionName,
          sourceIdentity,
          sessionDurationSeconds: input.durationSeconds,
          principalTags: tags,
          transitiveTagKeys: Object.keys(tags),
        }),
        now,
        assertionLifetimeSeconds: this.lifetimeSeconds,
        signResponse: false,
      },
      key,
    );
    return { base64: response.base64, assertionId: response.assertionId, sessionName, sourceIdentity };
  }
}
