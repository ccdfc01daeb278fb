/** Why decide() said what it said, in words a person can read. */
export interface Reason {
  /** what produced it: an assignment, a PIM activation, a policy, the directory */
  source: 'assignment' | 'activation' | 'policy' | 'directory' | 'target';
  /** e.g. the assignment id or policy name */
  ref?: string;
  message: string;
}

/** What a step-up asks of the person: a second factor, a phishing-resistant one, a compliant device, or a fresh sign-in. */
export type Requirement = 'mfa' | 'phishing-resistant-mfa' | 'compliant-device' | 'reauthentication';

/** How each conditional access policy treated one request (what-if shows these). */
export interface PolicyEvaluation {
  policy: string;
  policyId: string;
  state: 'on' | 'report-only';
  applied: boolean;
  /** why it applied (each matched condition) or why not (the first condition that failed) */
  why: string[];
  /** what it asked for when it applied */
  result?: 'block' | 'satisfied' | 'step-up';
  require?: Requirement[];
  maxDuration?: number;
}

export type Decision =
  | {
      effect: 'allow';
      /** seconds: no credential issued on this decision may live longer */
      maxDuration: number;
      sessionTags: Record<string, string>;
      /** for ssh targets: what the certificate may permit beyond a terminal */
      ssh?: { portForwarding: boolean; agentForwarding: boolean };
      reasons: Reason[];
      policies?: PolicyEvaluation[];
    }
  | {
      effect: 'step-up';
      require: Requirement[];
      reasons: Reason[];
      policies?: PolicyEvaluation[];
    }
  | { effect: 'deny'; reasons: Reason[]; policies?: PolicyEvaluation[] };
