/** Why decide() said what it said, in words a person can read. */
export interface Reason {
  /** what produced it: an assignment, a PIM activation, a policy, the directory */
  source: 'assignment' | 'activation' | 'policy' | 'directory' | 'target';
  /** e.g. the assignment id or policy name */
  ref?: string;
  message: string;
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
    }
  | {
      effect: 'step-up';
      require: Array<'mfa' | 'phishing-resistant-mfa' | 'compliant-device'>;
      reasons: Reason[];
    }
  | { effect: 'deny'; reasons: Reason[] };
