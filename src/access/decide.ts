import { NotFound } from '../errors.js';
import type { Assignment, Assignments } from './assignments.js';
import { type AwsAccounts, type AwsRole, MAX_SESSION_SECONDS } from './aws-accounts.js';
import type { Decision, Reason } from './decision.js';
import type { Principal, Signals } from './principal.js';
import { formatTarget, type Target } from './targets.js';

/** Directory attributes carried into AWS sessions as principal tags (and marked transitive). */
export const TAGGED_ATTRIBUTES = ['department', 'costCenter'] as const;

/** AWS tag values allow letters, digits, spaces and _.:/=+-@ up to 256 characters. */
function tagValue(value: string): string | null {
  const v = value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '').slice(0, 256);
  return v.length > 0 ? v : null;
}

/**
 * The one access decision. Every issuer (SAML console, CLI credentials, SSH, proxy) asks it and
 * carries out the answer; none decides on its own. Today it evaluates assignments; conditional
 * access policies plug in here.
 */
export class AccessDecider {
  constructor(
    private readonly accounts: AwsAccounts,
    private readonly assignments: Assignments,
  ) {}

  async decide(principal: Principal, target: Target, _signals: Signals): Promise<Decision> {
    const name = formatTarget(target);
    if (!principal.active) {
      return {
        effect: 'deny',
        reasons: [{ source: 'directory', message: `${principal.userName} is disabled` }],
      };
    }
    switch (target.kind) {
      case 'aws-role': {
        const assignments = await this.assignmentsOf(principal);
        const { role } = await this.accounts.role(target.account, target.role).catch((err: unknown) => {
          if (err instanceof NotFound) return { role: null };
          throw err;
        });
        return this.decideAwsRole(principal, target, assignments, role);
      }
      case 'app':
        // Registered SAML applications are open to every active directory user; policies narrow this.
        return {
          effect: 'allow',
          maxDuration: MAX_SESSION_SECONDS,
          sessionTags: {},
          reasons: [{ source: 'target', message: `${name} is open to all active users` }],
        };
      default:
        return {
          effect: 'deny',
          reasons: [{ source: 'target', message: `${name}: this kind of target is not served yet` }],
        };
    }
  }

  /**
   * Every AWS role the principal may have right now, each with its decision. Two queries whatever the
   * number of roles: the principal's assignments, then their roles.
   */
  async entitlements(
    principal: Principal,
    _signals: Signals,
  ): Promise<Array<{ target: Extract<Target, { kind: 'aws-role' }>; decision: Decision }>> {
    if (!principal.active) return [];
    const assignments = await this.assignmentsOf(principal);
    const unique = new Map<string, Extract<Target, { kind: 'aws-role' }>>();
    for (const a of assignments)
      unique.set(a.target, { kind: 'aws-role', account: a.accountId, role: a.roleName });
    const roles = await this.accounts.rolesByTarget([...unique.values()]);
    const out = [];
    for (const [key, target] of unique) {
      const decision = this.decideAwsRole(principal, target, assignments, roles.get(key) ?? null);
      if (decision.effect !== 'deny') out.push({ target, decision });
    }
    return out;
  }

  private assignmentsOf(principal: Principal): Promise<Assignment[]> {
    return this.assignments.forPrincipal(
      principal.id,
      principal.groups.map((g) => g.id),
      principal.kind,
    );
  }

  private decideAwsRole(
    principal: Principal,
    target: Extract<Target, { kind: 'aws-role' }>,
    all: Assignment[],
    role: AwsRole | null,
  ): Decision {
    const name = formatTarget(target);
    if (!role)
      return { effect: 'deny', reasons: [{ source: 'target', message: `${name} is not a registered role` }] };
    const assignments = all.filter((a) => a.accountId === target.account && a.roleName === target.role);
    if (assignments.length === 0) {
      return {
        effect: 'deny',
        reasons: [{ source: 'assignment', message: `no assignment gives ${principal.userName} ${name}` }],
      };
    }
    const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
    const reasons: Reason[] = assignments.map((a) => ({
      source: 'assignment',
      ref: a.id,
      message:
        a.principalType === 'group'
          ? `member of ${groupName.get(a.principalId) ?? a.principalId}, which is assigned ${name}`
          : `${principal.kind === 'workload' ? 'workload ' : ''}${principal.userName} is assigned ${name} directly`,
    }));
    const sessionTags: Record<string, string> = {};
    for (const key of TAGGED_ATTRIBUTES) {
      const value = principal.attributes[key];
      const tag = value === undefined ? null : tagValue(value);
      if (tag) sessionTags[key] = tag;
    }
    return {
      effect: 'allow',
      maxDuration: Math.min(role.maxSessionDuration, MAX_SESSION_SECONDS),
      sessionTags,
      reasons,
    };
  }
}
