import {
  type AuthorizationDetails,
  defaultDocument,
  type InlinePolicy,
  type PolicyDocument,
} from './auth-details.js';
import { type CredentialReportRow, ROOT_ACCOUNT } from './credential-report.js';

/** What one AWS account holds today, in the words of Microsoft's "record every IAM user, group, role…". */
export interface AccountInventory {
  accountId: string;
  alias: string | null;
  /** false when no credential report was given: password, MFA and key facts are then unknown */
  credentialReport: boolean;
  root: RootCredentials | null;
  users: InventoryUser[];
  groups: InventoryGroup[];
  roles: InventoryRole[];
  policies: InventoryPolicy[];
  identityProviders: IdentityProvider[];
  /** the export itself, kept for evaluating each principal's policies */
  details: AuthorizationDetails;
}

export interface RootCredentials {
  accessKeysActive: number;
  passwordLastUsed: string | null;
  mfaActive: boolean;
}

export interface AccessKey {
  slot: 1 | 2;
  active: boolean;
  lastRotated: string | null;
  lastUsed: string | null;
}

export interface InventoryUser {
  name: string;
  arn: string;
  createdAt: string | null;
  groups: string[];
  inlinePolicies: string[];
  attachedPolicies: string[];
  /** has a console password; null when the credential report is missing */
  console: boolean | null;
  passwordLastUsed: string | null;
  passwordLastChanged: string | null;
  mfa: boolean | null;
  accessKeys: AccessKey[];
  /** person: signs in to the console; service: access keys only (a workload); idle: neither */
  kind: 'person' | 'service' | 'idle' | 'unknown';
}

export interface InventoryGroup {
  name: string;
  arn: string;
  members: string[];
  inlinePolicies: string[];
  attachedPolicies: string[];
}

export interface InventoryRole {
  name: string;
  arn: string;
  path: string;
  /** created by an AWS service (path /aws-service-role/), e.g. AWSServiceRoleForSupport: left alone */
  serviceLinked: boolean;
  trustedPrincipals: string[];
  inlinePolicies: string[];
  attachedPolicies: string[];
  lastUsed: string | null;
}

export type PolicyKind = 'aws-managed' | 'job-function' | 'customer-managed' | 'inline';

export interface InventoryPolicy {
  kind: PolicyKind;
  /** the ARN of a managed policy; owner/name of an inline one */
  id: string;
  name: string;
  attachedTo: string[];
  /** false when the export carries no document for it (it can't be evaluated) */
  hasDocument: boolean;
}

export interface IdentityProvider {
  kind: 'saml' | 'oidc';
  arn: string;
  name: string;
  /** roles whose trust policy names this provider */
  trustedBy: string[];
}

/** A policy as the simulator takes it: a name to report and its document. */
export interface NamedPolicy {
  name: string;
  policy: PolicyDocument;
}

export function policyKind(arn: string): PolicyKind {
  if (/^arn:aws[a-z-]*:iam::aws:policy\/job-function\//.test(arn)) return 'job-function';
  if (/^arn:aws[a-z-]*:iam::aws:policy\//.test(arn)) return 'aws-managed';
  return 'customer-managed';
}

/** AdministratorAccess is `*` on `*`; moto and some exports omit AWS managed documents, so it is known here. */
const KNOWN_AWS_POLICIES: Record<string, PolicyDocument> = {
  AdministratorAccess: {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
  },
};

export function accountIdOf(details: AuthorizationDetails): string | null {
  const arn =
    details.UserDetailList[0]?.Arn ??
    details.GroupDetailList[0]?.Arn ??
    details.RoleDetailList[0]?.Arn ??
    details.Policies.find((p) => policyKind(p.Arn) === 'customer-managed')?.Arn;
  return arn?.split(':')[4] || null;
}

export function buildInventory(input: {
  details: AuthorizationDetails;
  credentialReport?: CredentialReportRow[];
  accountId?: string;
  alias?: string | null;
  identityProviders?: Array<{ kind: 'saml' | 'oidc'; arn: string }>;
}): AccountInventory {
  const { details } = input;
  const report = input.credentialReport;
  const rows = new Map((report ?? []).map((r) => [r.user, r]));
  const accountId = input.accountId ?? accountIdOf(details) ?? '000000000000';

  const members = new Map<string, string[]>();
  for (const u of details.UserDetailList)
    for (const g of u.GroupList) members.set(g, [...(members.get(g) ?? []), u.UserName]);

  const users: InventoryUser[] = details.UserDetailList.map((u) => {
    const row = rows.get(u.UserName);
    const accessKeys = row ? row.accessKeys.filter((k) => k.active || k.lastRotated !== null) : [];
    const activeKeys = accessKeys.filter((k) => k.active);
    const console = row ? row.passwordEnabled === true : null;
    return {
      name: u.UserName,
      arn: u.Arn,
      createdAt: u.CreateDate ?? row?.userCreationTime ?? null,
      groups: [...u.GroupList].sort(),
      inlinePolicies: u.UserPolicyList.map((p) => p.PolicyName),
      attachedPolicies: u.AttachedManagedPolicies.map((p) => p.PolicyArn),
      console,
      passwordLastUsed: row?.passwordLastUsed ?? null,
      passwordLastChanged: row?.passwordLastChanged ?? null,
      mfa: row ? row.mfaActive : null,
      accessKeys: accessKeys.map((k) => ({
        slot: k.slot,
        active: k.active,
        lastRotated: k.lastRotated,
        lastUsed: k.lastUsed,
      })),
      kind: !row ? 'unknown' : console ? 'person' : activeKeys.length > 0 ? 'service' : 'idle',
    };
  });

  const groups: InventoryGroup[] = details.GroupDetailList.map((g) => ({
    name: g.GroupName,
    arn: g.Arn,
    members: (members.get(g.GroupName) ?? []).sort(),
    inlinePolicies: g.GroupPolicyList.map((p) => p.PolicyName),
    attachedPolicies: g.AttachedManagedPolicies.map((p) => p.PolicyArn),
  }));

  const providers = new Map<string, IdentityProvider>();
  const addProvider = (arn: string, kind: 'saml' | 'oidc') => {
    if (!providers.has(arn))
      providers.set(arn, {
        kind,
        arn,
        name: arn.split(/:(?:saml|oidc)-provider\//)[1] ?? arn,
        trustedBy: [],
      });
    return providers.get(arn)!;
  };
  for (const p of input.identityProviders ?? []) addProvider(p.arn, p.kind);

  const roles: InventoryRole[] = details.RoleDetailList.map((r) => {
    const trusted = trustedPrincipals(r.AssumeRolePolicyDocument);
    for (const t of trusted) {
      const kind = t.includes(':saml-provider/') ? 'saml' : t.includes(':oidc-provider/') ? 'oidc' : null;
      if (kind) addProvider(t, kind).trustedBy.push(r.RoleName);
    }
    return {
      name: r.RoleName,
      arn: r.Arn,
      path: r.Path,
      serviceLinked: r.Path.startsWith('/aws-service-role/'),
      trustedPrincipals: trusted,
      inlinePolicies: r.RolePolicyList.map((p) => p.PolicyName),
      attachedPolicies: r.AttachedManagedPolicies.map((p) => p.PolicyArn),
      lastUsed: r.RoleLastUsed?.LastUsedDate ?? null,
    };
  });

  const attachments = new Map<string, string[]>();
  const attach = (arn: string, who: string) => attachments.set(arn, [...(attachments.get(arn) ?? []), who]);
  for (const u of details.UserDetailList)
    for (const p of u.AttachedManagedPolicies) attach(p.PolicyArn, `user/${u.UserName}`);
  for (const g of details.GroupDetailList)
    for (const p of g.AttachedManagedPolicies) attach(p.PolicyArn, `group/${g.GroupName}`);
  for (const r of details.RoleDetailList)
    for (const p of r.AttachedManagedPolicies) attach(p.PolicyArn, `role/${r.RoleName}`);

  const policies: InventoryPolicy[] = [];
  const listed = new Set<string>();
  for (const p of details.Policies) {
    listed.add(p.Arn);
    policies.push({
      kind: policyKind(p.Arn),
      id: p.Arn,
      name: p.PolicyName,
      attachedTo: attachments.get(p.Arn) ?? [],
      hasDocument: defaultDocument(p) !== undefined,
    });
  }
  for (const [arn, who] of attachments) {
    if (listed.has(arn)) continue;
    const name = arn.split('/').pop()!;
    policies.push({
      kind: policyKind(arn),
      id: arn,
      name,
      attachedTo: who,
      hasDocument: name in KNOWN_AWS_POLICIES,
    });
  }
  const inline = (owner: string, list: InlinePolicy[]) =>
    list.map((p) => ({
      kind: 'inline' as const,
      id: `${owner}/${p.PolicyName}`,
      name: p.PolicyName,
      attachedTo: [owner],
      hasDocument: true,
    }));
  for (const u of details.UserDetailList) policies.push(...inline(`user/${u.UserName}`, u.UserPolicyList));
  for (const g of details.GroupDetailList)
    policies.push(...inline(`group/${g.GroupName}`, g.GroupPolicyList));
  for (const r of details.RoleDetailList) policies.push(...inline(`role/${r.RoleName}`, r.RolePolicyList));

  const root = rows.get(ROOT_ACCOUNT);
  return {
    accountId,
    alias: input.alias ?? null,
    credentialReport: report !== undefined,
    root: root
      ? {
          accessKeysActive: root.accessKeys.filter((k) => k.active).length,
          passwordLastUsed: root.passwordLastUsed,
          mfaActive: root.mfaActive,
        }
      : null,
    users,
    groups,
    roles,
    policies,
    identityProviders: [...providers.values()],
    details,
  };
}

/** Principals a trust policy lets assume the role (Federated, AWS, Service). */
function trustedPrincipals(doc: PolicyDocument | undefined): string[] {
  const out: string[] = [];
  for (const s of statements(doc)) {
    if (s.Effect !== 'Allow') continue;
    const p = s.Principal;
    if (typeof p === 'string') out.push(p);
    else if (p && typeof p === 'object')
      for (const v of Object.values(p as Record<string, unknown>))
        out.push(...(Array.isArray(v) ? v.map(String) : [String(v)]));
  }
  return [...new Set(out)];
}

export function statements(doc: PolicyDocument | undefined): Array<Record<string, unknown>> {
  if (!doc) return [];
  const s = doc.Statement;
  return (Array.isArray(s) ? s : [s]).filter(
    (x): x is Record<string, unknown> => typeof x === 'object' && x !== null,
  );
}

/** The document of a managed policy by ARN, from the export or the few known AWS ones. */
export function managedDocument(details: AuthorizationDetails, arn: string): PolicyDocument | undefined {
  const p = details.Policies.find((x) => x.Arn === arn);
  const doc = p ? defaultDocument(p) : undefined;
  return (
    doc ?? (policyKind(arn) === 'customer-managed' ? undefined : KNOWN_AWS_POLICIES[arn.split('/').pop()!])
  );
}

/** Managed then inline policies, as the simulator takes them; `missing` lists ARNs with no document. */
export function collectPolicies(
  details: AuthorizationDetails,
  owner: string,
  attachedArns: string[],
  inline: InlinePolicy[],
): { policies: NamedPolicy[]; missing: string[] } {
  const policies: NamedPolicy[] = [];
  const missing: string[] = [];
  for (const arn of attachedArns) {
    const doc = managedDocument(details, arn);
    if (doc) policies.push({ name: arn, policy: doc });
    else missing.push(arn);
  }
  for (const p of inline) policies.push({ name: `${owner}/${p.PolicyName}`, policy: p.PolicyDocument });
  return { policies, missing };
}

/** A user's effective identity policies: their own plus those of every group they're in. */
export function userPolicies(
  details: AuthorizationDetails,
  userName: string,
): { policies: NamedPolicy[]; missing: string[] } {
  const u = details.UserDetailList.find((x) => x.UserName === userName);
  if (!u) return { policies: [], missing: [] };
  const own = collectPolicies(
    details,
    `user/${u.UserName}`,
    u.AttachedManagedPolicies.map((p) => p.PolicyArn),
    u.UserPolicyList,
  );
  const seen = new Set(own.policies.map((p) => p.name));
  for (const gName of u.GroupList) {
    const g = details.GroupDetailList.find((x) => x.GroupName === gName);
    if (!g) continue;
    const gp = groupPolicies(details, g.GroupName);
    for (const p of gp.policies) {
      if (seen.has(p.name)) continue;
      seen.add(p.name);
      own.policies.push(p);
    }
    own.missing.push(...gp.missing.filter((m) => !own.missing.includes(m)));
  }
  return own;
}

export function groupPolicies(
  details: AuthorizationDetails,
  groupName: string,
): { policies: NamedPolicy[]; missing: string[] } {
  const g = details.GroupDetailList.find((x) => x.GroupName === groupName);
  if (!g) return { policies: [], missing: [] };
  return collectPolicies(
    details,
    `group/${g.GroupName}`,
    g.AttachedManagedPolicies.map((p) => p.PolicyArn),
    g.GroupPolicyList,
  );
}

export function rolePolicies(
  details: AuthorizationDetails,
  roleName: string,
): { policies: NamedPolicy[]; missing: string[] } {
  const r = details.RoleDetailList.find((x) => x.RoleName === roleName);
  if (!r) return { policies: [], missing: [] };
  return collectPolicies(
    details,
    `role/${r.RoleName}`,
    r.AttachedManagedPolicies.map((p) => p.PolicyArn),
    r.RolePolicyList,
  );
}
