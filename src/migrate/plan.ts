import { type AwsPartition, SAML_SIGN_IN_URLS, withSamlTrust } from '../aws/trust-policy.js';
import type { PolicyDocument } from './auth-details.js';
import { equivalent } from './equivalence.js';
import { type Finding, findFindings } from './findings.js';
import {
  type AccountInventory,
  groupPolicies,
  type IdentityProvider,
  type InventoryGroup,
  type InventoryPolicy,
  type InventoryRole,
  type InventoryUser,
  type NamedPolicy,
  policyKind,
  userPolicies,
} from './inventory.js';

export type MigrationState = 'unmapped' | 'mapped' | 'signed-in' | 'removed';
export const MIGRATION_STATES: MigrationState[] = ['unmapped', 'mapped', 'signed-in', 'removed'];

/** One role Ferry proposes in place of one or more IAM groups (or a user's own policies) that grant the same. */
export interface ProposedRole {
  account: string;
  name: string;
  /** the directory group whose members get this role: AWS-<account alias or id>-<role> */
  directoryGroup: string;
  /** what it replaces: group/NAME or user/NAME, with how equivalence to the first was established */
  replaces: Array<{ source: string; equivalence: 'first' | 'identical' | 'simulated' }>;
  managedPolicies: string[];
  inlinePolicies: Array<{ name: string; document: PolicyDocument }>;
  trustPolicy: PolicyDocument;
  /** managed policies the export had no document for (attach them all the same) */
  unresolvedPolicies: string[];
  /** every policy document the role would hold, so `ferry access simulate --input plan.json` needs nothing else */
  documents: NamedPolicy[];
}

export interface UserChecklist {
  account: string;
  user: string;
  kind: InventoryUser['kind'];
  directoryGroups: string[];
  roles: string[];
  state: MigrationState;
}

export interface AccountPlan {
  accountId: string;
  alias: string;
  partition: AwsPartition;
  inventory: {
    credentialReport: boolean;
    users: InventoryUser[];
    groups: InventoryGroup[];
    roles: InventoryRole[];
    policies: InventoryPolicy[];
    identityProviders: IdentityProvider[];
  };
  roles: ProposedRole[];
  users: UserChecklist[];
  /** IAM groups that grant nothing (no policies): no role is proposed for them */
  emptyGroups: string[];
}

export interface MigrationPlan {
  kind: 'ferry-migration-plan';
  version: 1;
  asOf: string;
  samlProviderName: string;
  accounts: AccountPlan[];
  findings: Finding[];
}

interface Candidate {
  source: string;
  label: string;
  policies: NamedPolicy[];
  missing: string[];
  managed: string[];
  inline: Array<{ name: string; document: PolicyDocument }>;
}

/** Builds the whole plan from one inventory per account, as of the report date. */
export async function buildPlan(
  inventories: AccountInventory[],
  opts: { asOf: Date; samlProviderName?: string; partition?: AwsPartition },
): Promise<MigrationPlan> {
  const providerName = opts.samlProviderName ?? 'Ferry';
  const accounts: AccountPlan[] = [];
  const findings: Finding[] = [];
  for (const inv of inventories) {
    findings.push(...(await findFindings(inv, opts.asOf, providerName)));
    accounts.push(await planAccount(inv, providerName, opts.partition ?? 'aws'));
  }
  return {
    kind: 'ferry-migration-plan',
    version: 1,
    asOf: opts.asOf.toISOString(),
    samlProviderName: providerName,
    accounts,
    findings,
  };
}

async function planAccount(
  inv: AccountInventory,
  providerName: string,
  partition: AwsPartition,
): Promise<AccountPlan> {
  const alias = inv.alias ?? inv.accountId;
  const candidates: Candidate[] = [];
  const emptyGroups: string[] = [];
  for (const g of [...inv.details.GroupDetailList].sort((a, b) => a.GroupName.localeCompare(b.GroupName))) {
    const { policies, missing } = groupPolicies(inv.details, g.GroupName);
    if (policies.length + missing.length === 0) {
      emptyGroups.push(g.GroupName);
      continue;
    }
    candidates.push({
      source: `group/${g.GroupName}`,
      label: g.GroupName,
      policies,
      missing,
      managed: g.AttachedManagedPolicies.map((p) => p.PolicyArn),
      inline: g.GroupPolicyList.map((p) => ({ name: p.PolicyName, document: p.PolicyDocument })),
    });
  }
  for (const u of inv.details.UserDetailList) {
    if (u.AttachedManagedPolicies.length + u.UserPolicyList.length === 0) continue;
    const own = { ...u, GroupList: [] };
    const { policies, missing } = userPolicies({ ...inv.details, UserDetailList: [own] }, u.UserName);
    candidates.push({
      source: `user/${u.UserName}`,
      label: `${u.UserName}-direct`,
      policies,
      missing,
      managed: u.AttachedManagedPolicies.map((p) => p.PolicyArn),
      inline: u.UserPolicyList.map((p) => ({ name: p.PolicyName, document: p.PolicyDocument })),
    });
  }

  // Merge candidates that grant the same (each joins the first set it is equivalent to).
  const sets: Array<{ first: Candidate; members: ProposedRole['replaces'] }> = [];
  const setOf = new Map<string, number>();
  for (const c of candidates) {
    let joined = false;
    for (const [i, s] of sets.entries()) {
      if (c.missing.join() !== s.first.missing.join()) continue;
      const eq = await equivalent(s.first.policies, c.policies, `arn:aws:iam::${inv.accountId}:role/probe`);
      if (eq.equivalent) {
        s.members.push({ source: c.source, equivalence: eq.method });
        setOf.set(c.source, i);
        joined = true;
        break;
      }
    }
    if (!joined) {
      setOf.set(c.source, sets.length);
      sets.push({ first: c, members: [{ source: c.source, equivalence: 'first' }] });
    }
  }

  const providerArn = `arn:${partition}:iam::${inv.accountId}:saml-provider/${providerName}`;
  const trustPolicy = withSamlTrust(undefined, providerArn, SAML_SIGN_IN_URLS[partition])
    .document as PolicyDocument;
  const used = new Set<string>();
  const roles: ProposedRole[] = sets.map((s) => {
    const name = unique(roleName(s.first), used);
    return {
      account: inv.accountId,
      name,
      directoryGroup: directoryGroupName(alias, name),
      replaces: s.members,
      managedPolicies: s.first.managed,
      inlinePolicies: s.first.inline,
      trustPolicy,
      unresolvedPolicies: s.first.missing,
      documents: s.first.policies,
    };
  });

  const users: UserChecklist[] = inv.users.map((u) => {
    const sources = [...u.groups.map((g) => `group/${g}`), `user/${u.name}`];
    const mine = [
      ...new Set(sources.map((s) => setOf.get(s)).filter((i): i is number => i !== undefined)),
    ].map((i) => roles[i]!);
    return {
      account: inv.accountId,
      user: u.name,
      kind: u.kind,
      directoryGroups: mine.map((r) => r.directoryGroup),
      roles: mine.map((r) => r.name),
      state: mine.length > 0 ? 'mapped' : 'unmapped',
    };
  });

  return {
    accountId: inv.accountId,
    alias,
    partition,
    inventory: {
      credentialReport: inv.credentialReport,
      users: inv.users,
      groups: inv.groups,
      roles: inv.roles,
      policies: inv.policies,
      identityProviders: inv.identityProviders,
    },
    roles,
    users,
    emptyGroups,
  };
}

/** AdministratorAccess → Administrator; one job-function policy → its name; otherwise the group's name. */
function roleName(c: Candidate): string {
  if (c.managed.length === 1 && c.inline.length === 0) {
    const arn = c.managed[0]!;
    const last = arn.split('/').pop()!;
    if (/:iam::aws:policy\/AdministratorAccess$/.test(arn)) return 'Administrator';
    if (policyKind(arn) === 'job-function') return last.replace(/Access$/, '') || last;
  }
  return c.label;
}

export function directoryGroupName(alias: string, role: string): string {
  return `AWS-${alias.replace(/[^A-Za-z0-9+=,.@_-]/g, '-')}-${role}`;
}

function unique(wanted: string, used: Set<string>): string {
  const base = wanted.replace(/[^A-Za-z0-9+=,.@_-]/g, '-').slice(0, 60) || 'Role';
  let name = base;
  for (let i = 2; used.has(name.toLowerCase()); i++) name = `${base}-${i}`;
  used.add(name.toLowerCase());
  return name;
}
