/**
 * What a detection reports. A rule turns one record or audit event into a finding (or a count towards
 * a spike); the detection service then applies the configured severity, deduplication and suppression
 * and raises an alert.
 */

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

export const RULES = [
  'root-activity',
  'iam-credentials-created',
  'session-outside-ferry',
  'federation-tampering',
  'cloudtrail-disabled',
  'revoked-credentials-used',
  'access-denied-spike',
  'signin-failure-spike',
  'provisioning-errors',
  'admin-role-activated',
  'scim-auth-failures',
] as const;
export type RuleId = (typeof RULES)[number];

/** Rules that raise an alert only when enough events of one subject fall into one window. */
export const SPIKE_RULES = [
  'access-denied-spike',
  'signin-failure-spike',
  'provisioning-errors',
  'scim-auth-failures',
] as const;
export type SpikeRule = (typeof SPIKE_RULES)[number];

export const isSpikeRule = (r: RuleId): r is SpikeRule => (SPIKE_RULES as readonly string[]).includes(r);

export interface Finding {
  rule: RuleId;
  /** one line a person reads first: what happened, to what, by whom */
  title: string;
  /** the person, resource or connection it is about; part of the deduplication key */
  subject: string;
  /** the AWS account, when the finding comes from CloudTrail */
  account: string | null;
  /** when it happened (the record's eventTime, the audit event's time) */
  occurredAt: Date;
  /** the CloudTrail eventID or audit event id it was found in */
  evidence: string;
  details: Record<string, unknown>;
}

/** One event that counts towards a spike rule for one subject. */
export interface SpikeCount {
  rule: SpikeRule;
  subject: string;
  account: string | null;
  occurredAt: Date;
  evidence: string;
  /** what the alert says about the events counted, e.g. the last error */
  details: Record<string, unknown>;
  /** how many events this one stands for (aggregated counts); default 1 */
  weight?: number;
}

export type Observation = { kind: 'finding'; finding: Finding } | { kind: 'count'; count: SpikeCount };
