import { InvalidInput } from '../errors.js';

/**
 * The output of `aws iam get-account-authorization-details` (GetAccountAuthorizationDetails), merged over
 * its pages. The CLI prints policy documents as JSON objects; the SDK returns them URL-encoded: both load.
 */
export interface PolicyDocument {
  Version?: string;
  Statement: unknown;
}

export interface InlinePolicy {
  PolicyName: string;
  PolicyDocument: PolicyDocument;
}

export interface AttachedPolicy {
  PolicyName: string;
  PolicyArn: string;
}

export interface UserDetail {
  Path: string;
  UserName: string;
  UserId?: string;
  Arn: string;
  CreateDate?: string;
  UserPolicyList: InlinePolicy[];
  GroupList: string[];
  AttachedManagedPolicies: AttachedPolicy[];
  PermissionsBoundary?: { PermissionsBoundaryArn?: string };
}

export interface GroupDetail {
  Path: string;
  GroupName: string;
  Arn: string;
  GroupPolicyList: InlinePolicy[];
  AttachedManagedPolicies: AttachedPolicy[];
}

export interface RoleDetail {
  Path: string;
  RoleName: string;
  Arn: string;
  CreateDate?: string;
  AssumeRolePolicyDocument?: PolicyDocument;
  RolePolicyList: InlinePolicy[];
  AttachedManagedPolicies: AttachedPolicy[];
  RoleLastUsed?: { LastUsedDate?: string; Region?: string };
}

export interface ManagedPolicyDetail {
  PolicyName: string;
  Arn: string;
  Path: string;
  DefaultVersionId?: string;
  AttachmentCount?: number;
  PolicyVersionList: Array<{ Document?: PolicyDocument; VersionId?: string; IsDefaultVersion?: boolean }>;
}

export interface AuthorizationDetails {
  UserDetailList: UserDetail[];
  GroupDetailList: GroupDetail[];
  RoleDetailList: RoleDetail[];
  Policies: ManagedPolicyDetail[];
}

/** A policy document as the CLI prints it (object) or the SDK returns it (URL-encoded JSON text). */
export function policyDocument(raw: unknown, where: string): PolicyDocument {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(decodeURIComponent(value));
    } catch {
      throw new InvalidInput(`${where}: the policy document is not JSON`, where);
    }
  }
  if (typeof value !== 'object' || value === null || !('Statement' in value))
    throw new InvalidInput(`${where}: a policy document needs a Statement`, where);
  return value as PolicyDocument;
}

const list = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? (v.filter((x) => typeof x === 'object' && x !== null) as Record<string, unknown>[]) : [];
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const date = (v: unknown): string | undefined =>
  v instanceof Date ? v.toISOString() : typeof v === 'string' ? v : undefined;

function inline(v: unknown, where: string): InlinePolicy[] {
  return list(v).map((p) => ({
    PolicyName: str(p.PolicyName) ?? '(unnamed)',
    PolicyDocument: policyDocument(p.PolicyDocument, `${where}/${str(p.PolicyName)}`),
  }));
}

function attached(v: unknown): AttachedPolicy[] {
  return list(v)
    .filter((p) => typeof p.PolicyArn === 'string')
    .map((p) => ({
      PolicyName: str(p.PolicyName) ?? String(p.PolicyArn).split('/').pop()!,
      PolicyArn: String(p.PolicyArn),
    }));
}

function need(p: Record<string, unknown>, key: string, where: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '') throw new InvalidInput(`${where}: missing ${key}`, where);
  return v;
}

/**
 * Reads one GetAccountAuthorizationDetails document (or several pages of it) into one typed value.
 * Unknown fields are ignored; a document that isn't this shape is refused with the reason.
 */
export function parseAuthorizationDetails(pages: unknown | unknown[]): AuthorizationDetails {
  const all = Array.isArray(pages) ? pages : [pages];
  const out: AuthorizationDetails = {
    UserDetailList: [],
    GroupDetailList: [],
    RoleDetailList: [],
    Policies: [],
  };
  for (const page of all) {
    if (typeof page !== 'object' || page === null)
      throw new InvalidInput('authorization details: expected a JSON object', 'input');
    const p = page as Record<string, unknown>;
    if (
      !('UserDetailList' in p) &&
      !('RoleDetailList' in p) &&
      !('GroupDetailList' in p) &&
      !('Policies' in p)
    )
      throw new InvalidInput(
        'authorization details: expected the output of `aws iam get-account-authorization-details` (UserDetailList, GroupDetailList, RoleDetailList, Policies)',
        'input',
      );
    for (const u of list(p.UserDetailList)) {
      const name = need(u, 'UserName', 'UserDetailList');
      out.UserDetailList.push({
        Path: str(u.Path) ?? '/',
        UserName: name,
        UserId: str(u.UserId),
        Arn: need(u, 'Arn', `user ${name}`),
        CreateDate: date(u.CreateDate),
        UserPolicyList: inline(u.UserPolicyList, `user ${name}`),
        GroupList: Array.isArray(u.GroupList) ? u.GroupList.map(String) : [],
        AttachedManagedPolicies: attached(u.AttachedManagedPolicies),
        ...(typeof u.PermissionsBoundary === 'object' && u.PermissionsBoundary !== null
          ? { PermissionsBoundary: u.PermissionsBoundary as { PermissionsBoundaryArn?: string } }
          : {}),
      });
    }
    for (const g of list(p.GroupDetailList)) {
      const name = need(g, 'GroupName', 'GroupDetailList');
      out.GroupDetailList.push({
        Path: str(g.Path) ?? '/',
        GroupName: name,
        Arn: need(g, 'Arn', `group ${name}`),
        GroupPolicyList: inline(g.GroupPolicyList, `group ${name}`),
        AttachedManagedPolicies: attached(g.AttachedManagedPolicies),
      });
    }
    for (const r of list(p.RoleDetailList)) {
      const name = need(r, 'RoleName', 'RoleDetailList');
      const lastUsed = r.RoleLastUsed as Record<string, unknown> | undefined;
      out.RoleDetailList.push({
        Path: str(r.Path) ?? '/',
        RoleName: name,
        Arn: need(r, 'Arn', `role ${name}`),
        CreateDate: date(r.CreateDate),
        ...(r.AssumeRolePolicyDocument !== undefined
          ? {
              AssumeRolePolicyDocument: policyDocument(
                r.AssumeRolePolicyDocument,
                `role ${name} trust policy`,
              ),
            }
          : {}),
        RolePolicyList: inline(r.RolePolicyList, `role ${name}`),
        AttachedManagedPolicies: attached(r.AttachedManagedPolicies),
        RoleLastUsed: {
          LastUsedDate: date(lastUsed?.LastUsedDate),
          Region: str(lastUsed?.Region),
        },
      });
    }
    for (const m of list(p.Policies)) {
      const arn = need(m, 'Arn', 'Policies');
      out.Policies.push({
        PolicyName: str(m.PolicyName) ?? arn.split('/').pop()!,
        Arn: arn,
        Path: str(m.Path) ?? '/',
        DefaultVersionId: str(m.DefaultVersionId),
        AttachmentCount: typeof m.AttachmentCount === 'number' ? m.AttachmentCount : undefined,
        PolicyVersionList: list(m.PolicyVersionList).map((v) => ({
          VersionId: str(v.VersionId),
          IsDefaultVersion: v.IsDefaultVersion === true,
          ...(v.Document !== undefined ? { Document: policyDocument(v.Document, `policy ${arn}`) } : {}),
        })),
      });
    }
  }
  return out;
}

/** The default version's document of a managed policy, or undefined when the export lacks it. */
export function defaultDocument(policy: ManagedPolicyDetail): PolicyDocument | undefined {
  const v =
    policy.PolicyVersionList.find((x) => x.IsDefaultVersion) ??
    policy.PolicyVersionList.find((x) => x.VersionId === policy.DefaultVersionId);
  return v?.Document;
}
