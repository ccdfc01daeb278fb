import type { Decision, Reason } from './decision.js';
import type { OrgUnit } from './organization.js';
import type { PermissionSetSpec } from './permission-set-rules.js';
import type { PermissionSetAssignment } from './permission-sets.js';
import { sessionSecondsOf } from './permission-sets.js';
import type { Principal } from './principal.js';
import { formatTarget, type Target } from './targets.js';

/** What decide() needs to know about permission sets (PermissionSets and AwsOrganization provide it). */
export interface PermissionSetDirectory {
  spec(name: string): Promise<PermissionSetSpec | null>;
  forPrincipal(userId: string, groupIds: string[]): Promise<PermissionSetAssignment[]>;
  /** the OUs an account is in, innermost first; empty when Organizations never named it */
  ancestorsOf(accountId: string): Promise<OrgUnit[]>;
  /** whether the account is registered with Ferry */
  accountKnown(accountId: string): Promise<boolean>;
}

export type PermissionSetTarget = Extract<Target, { kind: 'permission-set' }>;

/**
 * The assignment answer for `aws:<account>/permission-set/<name>`: a direct assignment, one via a group, or
 * one to an OU the account is in (as AWS Organizations last said) gives it, for the permission set's
 * session duration. Conditional access then applies as to roles.
 */
export async function decidePermissionSet(
  principal: Principal,
  target: PermissionSetTarget,
  directory: PermissionSetDirectory,
): Promise<Decision> {
  const name = formatTarget(target);
  const deny = (source: Reason['source'], message: string): Decision => ({
    effect: 'deny',
    reasons: [{ source, message }],
  });
  if (principal.kind !== 'user')
    return deny(
      'target',
      `${name}: permission sets are for people signing in to IAM Identity Center, not workloads`,
    );
  if (!(await directory.accountKnown(target.account)))
    return deny('target', `${name}: account ${target.account} is not registered`);
  const spec = await directory.spec(target.name);
  if (!spec) return deny('target', `${name}: no permission set ${target.name} is declared`);
  const all = await directory.forPrincipal(
    principal.id,
    principal.groups.map((g) => g.id),
  );
  const mine = all.filter((a) => a.permissionSet === spec.name);
  const ous = mine.some((a) => a.scopeType === 'ou') ? await directory.ancestorsOf(target.account) : [];
  const ouPath = new Map(ous.map((u) => [u.id, u.path]));
  const matching = mine.filter((a) =>
    a.scopeType === 'account' ? a.scopeId === target.account : ouPath.has(a.scopeId),
  );
  if (matching.length === 0) return deny('assignment', `no assignment gives ${principal.userName} ${name}`);
  const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
  const via = (a: PermissionSetAssignment) =>
    a.scopeType === 'ou' ? ` in ${ouPath.get(a.scopeId)} (${a.scopeId}), which holds ${target.account}` : '';
  return {
    effect: 'allow',
    maxDuration: sessionSecondsOf(spec),
    sessionTags: {},
    reasons: matching.map((a) => ({
      source: 'assignment',
      ref: a.id,
      message:
        a.principalType === 'group'
          ? `member of ${groupName.get(a.principalId) ?? a.principalId}, which is assigned permission set ${spec.name}${via(a)}`
          : `${principal.userName} is assigned permission set ${spec.name} directly${via(a)}`,
    })),
  };
}
