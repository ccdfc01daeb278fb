import { InvalidInput } from '../errors.js';
import { type NamedPolicy, statements } from './inventory.js';

/** One request against a principal's identity policies, the way IAM evaluates it (iam-simulate). */
export interface SimulationRequest {
  principalArn: string;
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export interface DecidingStatement {
  policy: string;
  statementIndex: number;
  sid?: string;
  effect: 'Allow' | 'Deny';
  /** the statement itself, for a person to read */
  statement?: Record<string, unknown>;
}

export interface SimulationOutcome {
  allowed: boolean;
  /** Allowed, ExplicitlyDenied or ImplicitlyDenied */
  result: string;
  deciding: DecidingStatement[];
}

/** The request itself is wrong (unknown action, a resource ARN the action can't take, a bad policy). */
export class SimulationInputInvalid extends InvalidInput {
  constructor(message: string) {
    super(message, 'simulation');
    this.name = 'SimulationInputInvalid';
  }
}

const accountOf = (arn: string) => arn.split(':')[4] ?? '';

export async function simulate(
  policies: NamedPolicy[],
  request: SimulationRequest,
): Promise<SimulationOutcome> {
  // iam-simulate and IAM's service data (≈100 modules) load at the first simulation (ADR 0046).
  const { getDenialReasons, getGrantReasons, runSimulation } = await import('@cloud-copilot/iam-simulate');
  const byName = new Map(policies.map((p) => [p.name, p]));
  const res = await runSimulation(
    {
      request: {
        principal: request.principalArn,
        action: request.action,
        resource: {
          resource: request.resource,
          // S3 ARNs carry no account: the resource is then taken to be in the principal's own account.
          accountId: accountOf(request.resource) || accountOf(request.principalArn),
        },
        contextVariables: request.context ?? {},
      },
      identityPolicies: policies.map((p) => ({ name: p.name, policy: p.policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (res.resultType === 'error')
    throw new SimulationInputInvalid(`cannot simulate ${request.action}: ${res.errors.message}`);
  const analyses = res.resultType === 'single' ? [res.result.analysis] : res.results.map((r) => r.analysis);
  const allowed = res.overallResult === 'Allowed';
  const deciding: DecidingStatement[] = [];
  for (const analysis of analyses) {
    if (allowed) {
      for (const g of getGrantReasons(analysis))
        if (g.policyType === 'identity')
          deciding.push(describe(byName, g.policyIdentifier, g.statementIndex, g.statementId, 'Allow'));
    } else {
      for (const d of getDenialReasons(analysis))
        if (d.denialType === 'Explicit' && d.policyIdentifier)
          deciding.push(describe(byName, d.policyIdentifier, d.statementIndex, d.statementId, 'Deny'));
    }
  }
  return { allowed, result: res.overallResult, deciding: dedupe(deciding) };
}

function describe(
  byName: Map<string, NamedPolicy>,
  policy: string,
  statementIndex: number,
  sid: string | undefined,
  effect: 'Allow' | 'Deny',
): DecidingStatement {
  const statement = statements(byName.get(policy)?.policy)[statementIndex - 1];
  return { policy, statementIndex, ...(sid ? { sid } : {}), effect, ...(statement ? { statement } : {}) };
}

function dedupe(list: DecidingStatement[]): DecidingStatement[] {
  const seen = new Set<string>();
  return list.filter((d) => {
    const k = `${d.policy}#${d.statementIndex}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
