import { ESCALATION_PATHS, escalationPaths } from './escalation.js';
import {
  type AccountInventory,
  type InventoryUser,
  type NamedPolicy,
  rolePolicies,
  statements,
  userPolicies,
} from './inventory.js';
import type { DecidingStatement } from './simulate.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
export const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

export interface Finding {
  rule: string;
  severity: Severity;
  account: string;
  /** root, user/NAME, role/NAME, group/NAME, provider/NAME or account */
  subject: string;
  title: string;
  fix: string;
  evidence?: DecidingStatement[];
}

const DAY = 86_400_000;
/** Keys older than this need rotating (CIS AWS Foundations 1.14); unused this long, they should go. */
export const KEY_MAX_AGE_DAYS = 90;
export const INACTIVE_DAYS = 90;
export const ROOT_RECENT_DAYS = 90;
const ADMIN_POLICY = /^arn:aws[a-z-]*:iam::aws:policy\/AdministratorAccess$/;

const ageDays = (asOf: Date, at: string | null) =>
  at ? Math.floor((asOf.getTime() - Date.parse(at)) / DAY) : null;

/** Everything risky in one account's IAM as of `asOf` (the report date, never the wall clock). */
/**
 * `ferryProvider`: the name of Ferry's own SAML provider in the account (default `Ferry`), which the
 * plan keeps: it is what the new roles trust.
 */
export async function findFindings(
  inv: AccountInventory,
  asOf: Date,
  ferryProvider = 'Ferry',
): Promise<Finding[]> {
  const out: Finding[] = [];
  const account = inv.accountId;
  const add = (f: Omit<Finding, 'account'>) => out.push({ account, ...f });

  if (!inv.credentialReport)
    add({
      rule: 'no-credential-report',
      severity: 'info',
      subject: 'account',
      title: 'No credential report given: passwords, MFA, access keys and root use were not checked',
      fix: 'aws iam generate-credential-report && aws iam get-credential-report > report.json, then pass --credential-report report.json',
    });
  if (inv.root) {
    if (inv.root.accessKeysActive > 0)
      add({
        rule: 'root-access-keys',
        severity: 'critical',
        subject: 'root',
        title: `The root user has ${inv.root.accessKeysActive} active access key(s)`,
        fix: 'Delete the root access keys (Security credentials page signed in as root); workloads get roles instead',
      });
    const rootAge = ageDays(asOf, inv.root.passwordLastUsed);
    if (rootAge !== null && rootAge <= ROOT_RECENT_DAYS)
      add({
        rule: 'root-recent-use',
        severity: 'high',
        subject: 'root',
        title: `The root user signed in ${rootAge} day(s) before ${asOf.toISOString().slice(0, 10)}`,
        fix: 'Find out why in CloudTrail; do that task through a Ferry role; keep root for the few tasks that need it',
      });
    if (!inv.root.mfaActive)
      add({
        rule: 'root-no-mfa',
        severity: 'critical',
        subject: 'root',
        title: 'The root user has no MFA',
        fix: 'Enable a hardware or passkey MFA on the root user',
      });
  }

  for (const u of inv.users) userFindings(u, asOf, add);

  for (const u of inv.users) {
    const { policies } = userPolicies(inv.details, u.name);
    await privilegeFindings(
      `user/${u.name}`,
      u.arn,
      policies,
      u.attachedPolicies.concat(groupArns(inv, u)),
      add,
    );
  }
  for (const r of inv.roles) {
    if (r.serviceLinked) continue;
    const { policies } = rolePolicies(inv.details, r.name);
    await privilegeFindings(`role/${r.name}`, r.arn, policies, r.attachedPolicies, add);
  }
  for (const p of inv.identityProviders) {
    if (p.kind === 'saml' && p.name === ferryProvider) continue;
    add({
      rule: 'identity-provider-to-replace',
      severity: 'info',
      subject: `provider/${p.name}`,
      title: `${p.kind.toUpperCase()} provider ${p.name} is trusted by ${p.trustedBy.length ? p.trustedBy.join(', ') : 'no role'}`,
      fix: "Move those roles' trust to Ferry's SAML provider (ferry aws setup-account), then delete this provider",
    });
  }
  return out;
}

function groupArns(inv: AccountInventory, u: InventoryUser): string[] {
  return inv.groups.filter((g) => u.groups.includes(g.name)).flatMap((g) => g.attachedPolicies);
}

function userFindings(u: InventoryUser, asOf: Date, add: (f: Omit<Finding, 'account'>) => void): void {
  const subject = `user/${u.name}`;
  if (u.console === true && u.mfa === false)
    add({
      rule: 'user-no-mfa',
      severity: 'high',
      subject,
      title: `${u.name} signs in to the console with a password and no MFA`,
      fix: 'Move the user to Ferry (MFA enforced by conditional access) and remove the login profile; meanwhile enable MFA',
    });
  for (const k of u.accessKeys.filter((x) => x.active)) {
    const age = ageDays(asOf, k.lastRotated);
    if (age !== null && age > KEY_MAX_AGE_DAYS)
      add({
        rule: 'access-key-old',
        severity: 'medium',
        subject,
        title: `Access key ${k.slot} of ${u.name} is ${age} days old (more than ${KEY_MAX_AGE_DAYS})`,
        fix:
          u.kind === 'service'
            ? 'Replace the key by workload identity (a role); until then rotate it'
            : 'Use `ferry creds` (short-lived STS credentials) and delete the key',
      });
    const unusedFor = k.lastUsed ? ageDays(asOf, k.lastUsed) : age;
    if (unusedFor !== null && unusedFor > KEY_MAX_AGE_DAYS)
      add({
        rule: 'access-key-unused',
        severity: 'medium',
        subject,
        title: k.lastUsed
          ? `Access key ${k.slot} of ${u.name} was last used ${unusedFor} days ago`
          : `Access key ${k.slot} of ${u.name} has never been used in ${unusedFor} days`,
        fix: 'Deactivate the key, wait for complaints, then delete it',
      });
  }
  const lastActivity =
    [u.passwordLastUsed, ...u.accessKeys.map((k) => k.lastUsed)]
      .filter((x): x is string => x !== null)
      .sort()
      .pop() ?? null;
  const idleFor = ageDays(asOf, lastActivity ?? u.createdAt);
  if (u.kind !== 'unknown' && idleFor !== null && idleFor > INACTIVE_DAYS)
    add({
      rule: 'inactive-user',
      severity: 'medium',
      subject,
      title: lastActivity
        ? `${u.name} has not signed in or used a key for ${idleFor} days`
        : `${u.name} has never signed in or used a key (created ${idleFor} days ago)`,
      fix: 'Remove the user rather than migrating it (keep the plan entry as "removed")',
    });
  if (u.kind === 'service')
    add({
      rule: 'service-account',
      severity: u.accessKeys.some((k) => k.active && (ageDays(asOf, k.lastRotated) ?? 0) > KEY_MAX_AGE_DAYS)
        ? 'high'
        : 'medium',
      subject,
      title: `${u.name} is a service account (access keys only, no console password)`,
      fix: 'Give the workload an IAM role it assumes by workload identity (OIDC federation, IAM Roles Anywhere or an instance/task role); rotate its keys until then',
    });
}

async function privilegeFindings(
  subject: string,
  arn: string,
  policies: NamedPolicy[],
  attachedArns: string[],
  add: (f: Omit<Finding, 'account'>) => void,
): Promise<void> {
  const adminVia = attachedArns.find((a) => ADMIN_POLICY.test(a)) ?? starStar(policies);
  if (adminVia) {
    add({
      rule: 'administrator',
      severity: 'high',
      subject,
      title: `${subject} holds full administrator access (${adminVia})`,
      fix: 'Grant administration only through a Ferry role, ideally eligible (just-in-time) rather than standing',
    });
    return; // an administrator has every escalation path: listing them adds nothing
  }
  for (const hit of await escalationPaths(arn, policies))
    add({
      rule: `escalation:${hit.path.id}`,
      severity: 'high',
      subject,
      title: `${subject} can escalate privileges: ${hit.path.actions.join(' + ')} (${hit.path.why})`,
      fix: `Remove ${hit.path.actions.join(', ')} or restrict them to named resources with conditions`,
      evidence: hit.evidence,
    });
}

/** The policy that allows Action `*` on Resource `*` with no condition, if any. */
function starStar(policies: NamedPolicy[]): string | undefined {
  for (const p of policies)
    for (const s of statements(p.policy)) {
      const actions = [s.Action].flat();
      const resources = [s.Resource].flat();
      if (
        s.Effect === 'Allow' &&
        s.Condition === undefined &&
        actions.includes('*') &&
        resources.includes('*')
      )
        return p.name;
    }
  return undefined;
}

export const ESCALATION_RULES = ESCALATION_PATHS.map((p) => `escalation:${p.id}`);
