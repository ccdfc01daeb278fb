import type { Assignments } from './assignments.js';
import { type AwsAccounts, MAX_SESSION_SECONDS } from './aws-accounts.js';
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
      case 'aws-role':
        return this.decideAwsRole(principal, target);
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

  /** Every AWS role the principal may have right now, each with its decision. */
  async entitlements(
    principal: Principal,
    signals: Signals,
  ): Promise<Array<{ target: Extract<Target, { kind: 'aws-role' }>; decision: Decision }>> {
    const found = await this.assignments.forPrincipal(
      principal.id,
      principal.groups.map((g) => g.id),
    );
    const unique = new Map<string, Extract<Target, { kind: 'aws-role' }>>();
    for (const a of found) unique.set(a.target, { kind: 'aws-role', account: a.accountId, role: a.roleName });
    const out = [];
    for (const target of unique.values()) {
      const decision = await this.decide(principal, target, signals);
      if (decision.effect !== 'deny') out.push({ target, decision });
    }
    return out;
  }

  private async decideAwsRole(
    principal: Principal,
    target: Extract<Target, { kind: 'aws-role' }>,
  ): Promise<Decision> {
    const name = formatTarget(target);
    const assignments = (
      await this.assignments.forPrincipal(
        principal.id,
        principal.groups.map((g) => g.id),
      )
    ).filter((a) => a.accountId === target.account && a.roleName === target.role);
    if (assignments.length === 0) {
      return {
        effect: 'deny',
        reasons: [{ source: 'assignment', message: `no assignment gives ${principal.userName} ${name}` }],
      };
    }
    const { role } = await this.accounts.role(target.account, target.role);
    const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
    const reasons: Reason[] = assignments.map((a) => ({
      source: 'assignment',
      ref: a.id,
      message:
        a.principalType === 'group'
          ? `member of ${groupName.get(a.principalId) ?? a.principalId}, which is assigned ${name}`
          : `${principal.userName} is assigned ${name} directly`,
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
