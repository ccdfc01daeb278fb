import { type RunSimulationResults, runSimulation } from '@cloud-copilot/iam-simulate';

/** What a role allows before any revocation: the revocation must take it away from exactly the revoked sessions. */
export const ROLE_PERMISSIONS = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 'iam:ListRoles'], Resource: '*' }],
};

export interface SimulatedSession {
  /** the assumed-role session's aws:SourceIdentity; absent for a session without one */
  sourceIdentity?: string;
  /** aws:TokenIssueTime */
  issuedAt: string;
}

/**
 * IAM's own evaluation (as iam-simulate models it) of one request by a session of `role`, with the
 * role's permissions plus `revocation` (the FerryRevokedSessions document, or null) as identity policies.
 */
export async function evaluateSession(
  revocation: unknown,
  session: SimulatedSession,
  options: {
    account: string;
    role?: string;
    partition?: 'aws' | 'aws-us-gov' | 'aws-cn';
    action?: string;
    resource?: string;
  },
): Promise<string> {
  const partition = options.partition ?? 'aws';
  const context: Record<string, string> = { 'aws:TokenIssueTime': session.issuedAt };
  if (session.sourceIdentity !== undefined) context['aws:SourceIdentity'] = session.sourceIdentity;
  const result: RunSimulationResults = await runSimulation(
    {
      request: {
        principal: `arn:${partition}:sts::${options.account}:assumed-role/${options.role ?? 'Developer'}/${session.sourceIdentity ?? 'someone'}`,
        action: options.action ?? 's3:GetObject',
        resource: {
          resource: options.resource ?? `arn:${partition}:s3:::reports/q1.csv`,
          accountId: options.account,
        },
        contextVariables: context,
      },
      identityPolicies: [
        { name: 'DeveloperAccess', policy: ROLE_PERMISSIONS },
        ...(revocation ? [{ name: 'FerryRevokedSessions', policy: revocation }] : []),
      ],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation refused: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}
