/**
 * The seam between CloudTrail ingestion (which reads, parses, attributes and stores AWS records) and
 * the detections that watch them. Ingestion hands every stored batch to the observers; a detection
 * never reads S3 or parses CloudTrail itself.
 */

/** How a CloudTrail record was tied to a person, in the order of trust the ingestion tries them. */
export type AttributionMethod = 'access-key' | 'source-identity' | 'session-name' | 'none';

export interface Attribution {
  method: AttributionMethod;
  /** the Ferry user the record belongs to, when known */
  userId: string | null;
  userName: string | null;
  /** the issued_credentials row the record was made with, when matched by AccessKeyId */
  credentialId: string | null;
  /** true when the session was issued by Ferry; false for IAM users, root and other federations */
  issuedByFerry: boolean;
}

/** One CloudTrail record after parsing and attribution: what detections, activity views and least privilege read. */
export interface AttributedRecord {
  /** CloudTrail's eventID: the key duplicate deliveries collapse on */
  eventId: string;
  eventTime: Date;
  eventSource: string;
  eventName: string;
  awsRegion: string | null;
  /** recipientAccountId (the account the call was made in) */
  account: string;
  sourceIpAddress: string | null;
  userAgent: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** userIdentity.type: Root, IAMUser, AssumedRole, FederatedUser, AWSService, SAMLUser, WebIdentityUser, IdentityCenterUser… */
  identityType: string;
  accessKeyId: string | null;
  /** the role's ARN (not the assumed-role session ARN) for AssumedRole identities */
  roleArn: string | null;
  roleSessionName: string | null;
  sourceIdentity: string | null;
  attribution: Attribution;
  /** the record as CloudTrail wrote it (or the configured subset of it) */
  raw: Record<string, unknown>;
}

/** Called with every batch ingestion has stored (each record once, after deduplication). */
export type ActivityObserver = (batch: readonly AttributedRecord[]) => Promise<void>;
