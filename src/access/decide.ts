import { hasMfa, hasPhishingResistantMfa } from '../authn/amr.js';
import type { Clock } from '../clock.js';
import { NotFound } from '../errors.js';
import { ADMIN_ACCOUNT, ADMIN_ROLES, type AdminRoleAssignment, isAdminRole } from './admin-roles.js';
import type { AppAssignments } from './app-assignments.js';
import type { Assignment, Assignments } from './assignments.js';
import { type AwsAccounts, type AwsRole, MAX_SESSION_SECONDS } from './aws-accounts.js';
import {
  decidePermissionSet,
  type PermissionSetDirectory,
  type PermissionSetTarget,
} from './decide-permission-set.js';
import type { AwsRoleReads, ReadForAwsRole, ReadForEntitlements } from './decide-reads.js';
import type { Decision, Reason } from './decision.js';
import type { ActiveGrant, ActiveTarget } from './pim/activations.js';
import type { ConditionalAccessEngine, LoadedPolicies } from './policies/engine.js';
import type { Principal, Signals } from './principal.js';
import { hostMatches, type SshLogin, type SshLogins } from './ssh-logins.js';
import { formatTarget, type Target } from './targets.js';

/** The longest an SSH certificate may live unless configured otherwise: minutes, not hours. */
export const DEFAULT_SSH_MAX_SECONDS = 15 * 60;

export interface AccessDeciderOptions {
  /** seconds: the longest SSH certificate decide() allows (a mapping may only shorten it) */
  sshMaxDuration?: number;
  /** group → app assignments; without them every app is open to all active users */
  appAssignments?: AppAssignments;
  /**
   * Registries of apps that say whether one with no group assigned is open to everyone (true), to
   * nobody (false), or do not know the app (undefined). The first that knows it decides.
   */
  appOpenness?: Array<(appName: string) => Promise<boolean | undefined>>;
  /** seconds: the longest an app session (e.g. the proxy's) may last on one decision */
  appMaxDuration?: number;
  /** PIM: a person's live activations count as assignments until they end */
  activations?: {
    activeFor(userId: string): Promise<ActiveGrant[]>;
    /** PIM beyond roles (0024): live activations of permission sets and SSH logins */
    activeTargetsFor?(
      userId: string,
      kinds?: Array<'permission-set' | 'ssh' | 'group'>,
    ): Promise<ActiveTarget[]>;
  };
  /** conditional access, applied after the assignment answer */
  policies?: ConditionalAccessEngine;
  /** standing admin role assignments; without them nobody holds an admin role but through PIM */
  adminRoles?: { forPrincipal(userId: string, groupIds: string[]): Promise<AdminRoleAssignment[]> };
  /** false: skip what an admin role always requires (Ferry Administrator: phishing-resistant MFA) */
  adminRoleRequirements?: boolean;
  /** IAM Identity Center permission sets; without them `aws:<account>/permission-set/<name>` is denied */
  permissionSets?: PermissionSetDirectory;
  /**
   * Everything an AWS-role decision reads (assignments, activations, the role, the policy-set
   * generation) in one statement: PostgreSQL, where each read is a round trip (decide-reads.ts).
   * Without it they are read separately, side by side.
   */
  readForAwsRole?: ReadForAwsRole;
  /**
   * Everything entitlements() reads (assignments, activations, their roles, the policy-set generation)
   * in one statement: PostgreSQL (decide-reads.ts). Without it: the three side by side, then the roles.
   */
  readForEntitlements?: ReadForEntitlements;
  /**
   * The clock a membership's end is judged by: a group membership granted by a PIM activation (it has
   * `expiresAt`) stops counting at that instant, not when the scheduler gets round to removing it.
   */
  clock?: Clock;
}

/** Group sets whose SSH login mappings decide() keeps per policy generation (forgotten all at once beyond). */
const SSH_LOGIN_CACHE_ENTRIES = 10_000;

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
    private readonly sshLogins: SshLogins | null = null,
    private readonly options: AccessDeciderOptions = {},
  ) {}

  /** The assignment answer, then conditional access (which may block, ask for a step-up or shorten it). */
  decide(given: Principal, target: Target, signals: Signals): Promise<Decision> {
    return this.decideAs(given, target, signals, { record: true });
  }

  /** decide() without side effects (report-only policies are not logged): what-if. */
  explain(given: Principal, target: Target, signals: Signals): Promise<Decision> {
    return this.decideAs(given, target, signals, { record: false, explain: true });
  }

  private async decideAs(
    given: Principal,
    target: Target,
    signals: Signals,
    how: { record: boolean; explain?: boolean },
  ): Promise<Decision> {
    const principal = this.current(given);
    // PostgreSQL: an AWS role's reads and the policy-set generation in one statement (decide-reads.ts)
    const reads =
      target.kind === 'aws-role' && principal.active && this.options.readForAwsRole
        ? this.options.readForAwsRole(principal, target)
        : undefined;
    const loaded = this.options.policies?.load(reads?.then((r) => r.policyGeneration));
    const assigned = await this.orActivated(
      principal,
      target,
      await this.decideAssignment(principal, target, reads, loaded),
    );
    const decided = this.options.policies
      ? await this.options.policies.apply(principal, target, signals, assigned, { ...how, loaded })
      : assigned;
    return this.withRoleRequirement(principal, target, decided);
  }

  /**
   * The principal as of now: a group membership a PIM activation granted counts until its `expiresAt`
   * and not a moment longer, however late the scheduler removes the row (or pushes that to Identity
   * Center). Without a clock (some unit tests) the groups are taken as given.
   */
  private current(principal: Principal): Principal {
    const clock = this.options.clock;
    if (!clock || !principal.groups.some((g) => g.expiresAt)) return principal;
    const now = clock.now().getTime();
    return {
      ...principal,
      groups: principal.groups.filter((g) => !g.expiresAt || Date.parse(g.expiresAt) > now),
    };
  }

  /**
   * What an admin role asks of every sign-in that uses it, on top of the policies (which may ask for
   * more but cannot waive it): Ferry Administrator needs phishing-resistant MFA unless configured off.
   */
  private withRoleRequirement(principal: Principal, target: Target, d: Decision): Decision {
    if (target.kind !== 'admin' || d.effect === 'deny' || this.options.adminRoleRequirements === false)
      return d;
    if (!isAdminRole(target.role)) return d;
    const def = ADMIN_ROLES[target.role];
    const need = 'requires' in def ? def.requires : undefined;
    if (!need) return d;
    const met =
      need === 'phishing-resistant-mfa'
        ? hasPhishingResistantMfa(principal.amr)
        : need === 'mfa'
          ? hasMfa(principal.amr)
          : false;
    if (met) return d;
    const reason: Reason = {
      source: 'policy',
      ref: 'built-in',
      message: `${def.title} always requires ${need} (the sign-in has ${principal.amr.join(', ') || 'no methods'})`,
    };
    if (d.effect === 'step-up')
      return { ...d, require: [...new Set([...d.require, need])], reasons: [...d.reasons, reason] };
    return {
      effect: 'step-up',
      require: [need],
      reasons: [reason],
      ...(d.policies ? { policies: d.policies } : {}),
    };
  }

  /** `reads`: an AWS role's reads, already under way as one statement (PostgreSQL); `loaded`: the policy set (its generation keys the SSH login mappings) */
  private async decideAssignment(
    principal: Principal,
    target: Target,
    reads?: Promise<AwsRoleReads>,
    loaded?: Promise<LoadedPolicies>,
  ): Promise<Decision> {
    const name = formatTarget(target);
    if (!principal.active) {
      return {
        effect: 'deny',
        reasons: [{ source: 'directory', message: `${principal.userName} is disabled` }],
      };
    }
    switch (target.kind) {
      case 'aws-role': {
        if (reads) {
          const r = await reads;
          const grants = this.options.activations && principal.kind === 'user' ? r.grants : [];
          return this.decideAwsRoleOrActivation(principal, target, r.assignments, r.role, grants);
        }
        // Three independent reads: at once.
        const [assignments, grants, { role }] = await Promise.all([
          this.assignmentsOf(principal),
          this.activationsOf(principal),
          this.accounts.role(target.account, target.role).catch((err: unknown) => {
            if (err instanceof NotFound) return { role: null };
            throw err;
          }),
        ]);
        return this.decideAwsRoleOrActivation(principal, target, assignments, role, grants);
      }
      case 'app':
        return this.decideApp(principal, target);
      case 'ssh':
        return this.decideSsh(principal, target, await this.sshLoginsOf(principal, loaded));
      case 'admin':
        return this.decideAdmin(principal, target);
      case 'permission-set':
        if (this.options.permissionSets)
          return decidePermissionSet(principal, target, this.options.permissionSets);
        return {
          effect: 'deny',
          reasons: [
            { source: 'target', message: `${name}: permission sets are not configured on this server` },
          ],
        };
      default:
        return {
          effect: 'deny',
          reasons: [{ source: 'target', message: `${name}: this kind of target is not served yet` }],
        };
    }
  }

  /**
   * PIM beyond roles (0024): a permission set or SSH login nothing else gives is allowed while a live
   * activation of it lasts, capped at what is left of it. A standing answer that allows stays as it is
   * (its options may be more generous); conditional access applies afterwards either way. Group
   * activations need nothing here: they are memberships, so the principal's groups carry them.
   */
  private async orActivated(principal: Principal, target: Target, assigned: Decision): Promise<Decision> {
    if (assigned.effect === 'allow' || !principal.active || principal.kind !== 'user') return assigned;
    if (target.kind !== 'permission-set' && target.kind !== 'ssh') return assigned;
    const live = (await this.options.activations?.activeTargetsFor?.(principal.id, [target.kind])) ?? [];
    const matching = live.filter((a) =>
      target.kind === 'permission-set'
        ? a.accountId === target.account && a.roleName === `permission-set/${target.name}`
        : a.roleName === target.login && hostMatches(a.accountId.slice('ssh:'.length), target.host),
    );
    if (matching.length === 0) return assigned;
    const grant = matching.reduce((a, b) => (b.secondsLeft > a.secondsLeft ? b : a));
    const ceiling =
      target.kind === 'ssh' ? (this.options.sshMaxDuration ?? DEFAULT_SSH_MAX_SECONDS) : MAX_SESSION_SECONDS;
    return {
      effect: 'allow',
      maxDuration: Math.min(ceiling, grant.secondsLeft),
      sessionTags: {},
      ...(target.kind === 'ssh' ? { ssh: { portForwarding: false, agentForwarding: false } } : {}),
      reasons: [
        {
          source: 'activation',
          ref: grant.id,
          message: `${principal.userName} activated ${grant.target} until ${grant.expiresAt} (activation ${grant.id})`,
        },
      ],
    };
  }

  /**
   * An app with no group assigned is open to every active user unless its registry says it is closed
   * (SAML service providers registered since 0017 and proxied apps since 0020 are, unless configured
   * open); once a group is assigned, only its members may reach it, and workloads only when it stays
   * open.
   */
  private async decideApp(principal: Principal, target: Extract<Target, { kind: 'app' }>): Promise<Decision> {
    const name = formatTarget(target);
    const maxDuration = this.options.appMaxDuration ?? MAX_SESSION_SECONDS;
    const assigned = (await this.options.appAssignments?.groupsOf(target.name)) ?? [];
    if (assigned.length === 0) {
      if ((await this.appIsOpen(target.name)) === false)
        return {
          effect: 'deny',
          reasons: [
            {
              source: 'assignment',
              message: `${name} is assigned to no group and is not open to all users; an administrator must assign it`,
            },
          ],
        };
      return {
        effect: 'allow',
        maxDuration,
        sessionTags: {},
        reasons: [{ source: 'target', message: `${name} is open to all active users` }],
      };
    }
    const mine = new Set(principal.groups.map((g) => g.id));
    const matching = assigned.filter((g) => mine.has(g.id));
    if (matching.length === 0) {
      return {
        effect: 'deny',
        reasons: [
          {
            source: 'assignment',
            message: `${name} is assigned to ${assigned.map((g) => g.name).join(', ')}; ${principal.userName} is in none of them`,
          },
        ],
      };
    }
    return {
      effect: 'allow',
      maxDuration,
      sessionTags: {},
      reasons: matching.map((g) => ({
        source: 'assignment',
        ref: g.id,
        message: `member of ${g.name}, which is assigned ${name}`,
      })),
    };
  }

  private async appIsOpen(appName: string): Promise<boolean | undefined> {
    for (const registry of this.options.appOpenness ?? []) {
      const open = await registry(appName);
      if (open !== undefined) return open;
    }
    return undefined;
  }

  /**
   * An admin role: held standing (assigned to the person or one of their groups) or through a live PIM
   * activation of `admin:<role>`; workloads never hold one (they use scoped API tokens).
   */
  private async decideAdmin(
    principal: Principal,
    target: Extract<Target, { kind: 'admin' }>,
  ): Promise<Decision> {
    const name = formatTarget(target);
    if (!isAdminRole(target.role))
      return { effect: 'deny', reasons: [{ source: 'target', message: `${name} is not an admin role` }] };
    if (principal.kind !== 'user')
      return {
        effect: 'deny',
        reasons: [{ source: 'target', message: `${name}: workloads hold no admin roles; use an API token` }],
      };
    const standing = (
      (await this.options.adminRoles?.forPrincipal(
        principal.id,
        principal.groups.map((g) => g.id),
      )) ?? []
    ).filter((a) => a.role === target.role);
    const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
    if (standing.length > 0)
      return {
        effect: 'allow',
        maxDuration: MAX_SESSION_SECONDS,
        sessionTags: {},
        reasons: standing.map((a) => ({
          source: 'assignment',
          ref: a.id,
          message:
            a.principalType === 'group'
              ? `member of ${groupName.get(a.principalId) ?? a.principalId}, which is assigned ${name}`
              : `${principal.userName} is assigned ${name} directly`,
        })),
      };
    const live = (await this.activationsOf(principal)).filter(
      (g) => g.accountId === ADMIN_ACCOUNT && g.roleName === target.role,
    );
    if (live.length > 0) {
      const grant = live.reduce((a, b) => (b.secondsLeft > a.secondsLeft ? b : a));
      return {
        effect: 'allow',
        maxDuration: Math.min(MAX_SESSION_SECONDS, grant.secondsLeft),
        sessionTags: {},
        reasons: [
          {
            source: 'activation',
            ref: grant.id,
            message: `${principal.userName} activated ${name} until ${grant.expiresAt} (activation ${grant.id})`,
          },
        ],
      };
    }
    return {
      effect: 'deny',
      reasons: [{ source: 'assignment', message: `no assignment gives ${principal.userName} ${name}` }],
    };
  }

  /**
   * How a person holds an admin role by grant alone, sign-in conditions aside (conditional access and
   * the role's built-in requirement judge a sign-in; a token has none): `{until: null}` standing,
   * `{until}` through a live PIM activation of `admin:<role>` or of a group that carries it (its end;
   * the latest when several), null not at all. Admin API tokens a person made are bounded by this at
   * creation and at every use (docs/decisions/0041).
   */
  async adminRoleGrant(given: Principal, role: string): Promise<{ until: string | null } | null> {
    const principal = this.current(given);
    if (!isAdminRole(role) || principal.kind !== 'user' || !principal.active) return null;
    const standing = (
      (await this.options.adminRoles?.forPrincipal(
        principal.id,
        principal.groups.map((g) => g.id),
      )) ?? []
    ).filter((a) => a.role === role);
    // A membership PIM made (a group activation) ends with its activation, however the row reads now.
    const activatedGroups = new Map<string, string>();
    const viaGroup = standing.some((a) => a.principalType === 'group');
    const groupTargets = viaGroup
      ? ((await this.options.activations?.activeTargetsFor?.(principal.id, ['group'])) ?? [])
      : [];
    for (const t of groupTargets) {
      const groupId = t.accountId.startsWith('group:') ? t.accountId.slice('group:'.length) : t.accountId;
      const prev = activatedGroups.get(groupId);
      if (!prev || t.expiresAt > prev) activatedGroups.set(groupId, t.expiresAt);
    }
    let until: string | null | undefined;
    const later = (at: string) => {
      if (until === null) return;
      if (until === undefined || at > until) until = at;
    };
    // A membership PIM granted (it carries expiresAt) counts only through its live activation: one
    // revoked early, or past its end, grants nothing even while the outbox has yet to remove the row.
    const grantedFor = new Set(principal.groups.filter((g) => g.expiresAt).map((g) => g.id));
    for (const a of standing) {
      const activated = a.principalType === 'group' ? activatedGroups.get(a.principalId) : undefined;
      if (activated !== undefined) later(activated);
      else if (!(a.principalType === 'group' && grantedFor.has(a.principalId))) return { until: null };
    }
    for (const g of await this.activationsOf(principal))
      if (g.accountId === ADMIN_ACCOUNT && g.roleName === role) later(g.expiresAt);
    return until === undefined ? null : { until };
  }

  /** The logins the principal may use on a host, each with its decision (for picking a default login). */
  async sshLoginsFor(given: Principal, host: string): Promise<string[]> {
    const principal = this.current(given);
    if (!principal.active) return [];
    const mappings = (await this.sshLoginsOf(principal)).filter((m) => hostMatches(m.hosts, host));
    // PIM (0024): logins activated just in time count while they last
    const activated =
      principal.kind === 'user'
        ? ((await this.options.activations?.activeTargetsFor?.(principal.id, ['ssh'])) ?? [])
            .filter((a) => hostMatches(a.accountId.slice('ssh:'.length), host))
            .map((a) => a.roleName)
        : [];
    return [...new Set([...mappings.flatMap((m) => m.logins), ...activated])].sort();
  }

  /**
   * The SSH login mappings of the principal's groups. With a policy set loaded, the mappings read for
   * the same groups under the same generation are used again: every ssh_logins change bumps it in its
   * own transaction (migration 0042), and a read after the generation is never older than it.
   */
  private async sshLoginsOf(principal: Principal, loaded?: Promise<LoadedPolicies>): Promise<SshLogin[]> {
    if (!this.sshLogins) return [];
    const groupIds = principal.groups.map((g) => g.id);
    if (!loaded || groupIds.length === 0) return this.sshLogins.forGroups(groupIds);
    const { generation } = await loaded;
    if (this.#sshLogins.generation !== generation) this.#sshLogins = { generation, byGroups: new Map() };
    const cache = this.#sshLogins;
    const key = groupIds.length === 1 ? groupIds[0]! : [...groupIds].sort().join(' ');
    let mappings = cache.byGroups.get(key);
    if (!mappings) {
      mappings = await this.sshLogins.forGroups(groupIds);
      if (cache.byGroups.size >= SSH_LOGIN_CACHE_ENTRIES) cache.byGroups.clear();
      cache.byGroups.set(key, mappings);
    }
    return mappings;
  }

  #sshLogins: { generation: number; byGroups: Map<string, SshLogin[]> } = {
    generation: Number.NaN,
    byGroups: new Map(),
  };

  private decideSsh(
    principal: Principal,
    target: Extract<Target, { kind: 'ssh' }>,
    all: SshLogin[],
  ): Decision {
    const name = formatTarget(target);
    const onHost = all.filter((m) => hostMatches(m.hosts, target.host));
    if (onHost.length === 0) {
      return {
        effect: 'deny',
        reasons: [
          {
            source: 'assignment',
            message: `no SSH login mapping gives ${principal.userName} any login on ${target.host}`,
          },
        ],
      };
    }
    if (!target.login) {
      return {
        effect: 'deny',
        reasons: [{ source: 'target', message: `${name}: name the login (user@host)` }],
      };
    }
    const matching = onHost.filter((m) => m.logins.includes(target.login));
    if (matching.length === 0) {
      const offered = [...new Set(onHost.flatMap((m) => m.logins))].sort();
      return {
        effect: 'deny',
        reasons: [
          {
            source: 'assignment',
            message: `no SSH login mapping gives ${principal.userName} the login ${target.login} on ${target.host} (your groups may use: ${offered.join(', ')})`,
          },
        ],
      };
    }
    const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
    const ceiling = this.options.sshMaxDuration ?? DEFAULT_SSH_MAX_SECONDS;
    // Several mappings may apply: the most generous one wins, as with several assignments.
    const maxDuration = Math.min(ceiling, Math.max(...matching.map((m) => m.maxDuration ?? ceiling)));
    return {
      effect: 'allow',
      maxDuration,
      sessionTags: {},
      ssh: {
        portForwarding: matching.some((m) => m.portForwarding),
        agentForwarding: matching.some((m) => m.agentForwarding),
      },
      reasons: matching.map((m) => ({
        source: 'assignment',
        ref: m.id,
        message: `member of ${groupName.get(m.groupId) ?? m.groupId}, which may log in as ${target.login} on ${m.hosts}`,
      })),
    };
  }

  /**
   * Every AWS role the principal may have right now, each with its decision. Two round trips whatever
   * the number of roles (the principal's assignments, then their roles), one on PostgreSQL.
   */
  async entitlements(
    given: Principal,
    signals: Signals,
  ): Promise<Array<{ target: Extract<Target, { kind: 'aws-role' }>; decision: Decision }>> {
    const principal = this.current(given);
    if (!principal.active) return [];
    // PostgreSQL: the assignments, activations, their roles and the policy-set generation in one statement
    const reads = this.options.readForEntitlements?.(principal);
    // one policy set for the whole listing, read beside the assignments and activations
    const loaded = this.options.policies?.load(reads?.then((r) => r.policyGeneration));
    const read = reads ? await reads : undefined;
    const [assignments, grants] = read
      ? [read.assignments, this.options.activations && principal.kind === 'user' ? read.grants : []]
      : await Promise.all([this.assignmentsOf(principal), this.activationsOf(principal)]);
    const unique = new Map<string, Extract<Target, { kind: 'aws-role' }>>();
    for (const a of assignments)
      unique.set(a.target, { kind: 'aws-role', account: a.accountId, role: a.roleName });
    for (const g of grants)
      unique.set(`aws:${g.accountId}/${g.roleName}`, {
        kind: 'aws-role',
        account: g.accountId,
        role: g.roleName,
      });
    const roles = read ? read.roles : await this.accounts.rolesByTarget([...unique.values()]);
    const out = [];
    for (const [key, target] of unique) {
      const assigned = this.decideAwsRoleOrActivation(
        principal,
        target,
        assignments,
        roles.get(key) ?? null,
        grants,
      );
      // A listing, not an access: report-only policies are logged when a role is actually used.
      const decision = this.options.policies
        ? await this.options.policies.apply(principal, target, signals, assigned, { record: false, loaded })
        : assigned;
      if (decision.effect !== 'deny') out.push({ target, decision });
    }
    return out;
  }

  /**
   * Every (account, permission set) the person may use right now, each with its decision: the accounts of
   * their assignments, an OU's as last discovered.
   */
  async permissionSetEntitlements(
    given: Principal,
    signals: Signals,
    accountsOf: (a: { scopeType: 'account' | 'ou'; scopeId: string }) => Promise<string[]>,
  ): Promise<Array<{ target: PermissionSetTarget; decision: Decision }>> {
    const principal = this.current(given);
    const directory = this.options.permissionSets;
    if (!directory || !principal.active || principal.kind !== 'user') return [];
    const assignments = await directory.forPrincipal(
      principal.id,
      principal.groups.map((g) => g.id),
    );
    const unique = new Map<string, PermissionSetTarget>();
    for (const a of assignments)
      for (const account of await accountsOf(a))
        unique.set(`${account}/${a.permissionSet}`, {
          kind: 'permission-set',
          account,
          name: a.permissionSet,
        });
    // PIM: permission sets activated just in time (an account assignment while the activation lasts)
    for (const a of (await this.options.activations?.activeTargetsFor?.(principal.id, ['permission-set'])) ??
      []) {
      const name = a.roleName.slice('permission-set/'.length);
      unique.set(`${a.accountId}/${name}`, { kind: 'permission-set', account: a.accountId, name });
    }
    const out = [];
    for (const target of unique.values()) {
      const assigned = await this.orActivated(
        principal,
        target,
        await decidePermissionSet(principal, target, directory),
      );
      // A listing, not an access: report-only policies are not logged for it.
      const decision = this.options.policies
        ? await this.options.policies.apply(principal, target, signals, assigned, { record: false })
        : assigned;
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

  /** PIM: live activations of a person (workloads never activate). */
  private async activationsOf(principal: Principal): Promise<ActiveGrant[]> {
    if (!this.options.activations || principal.kind !== 'user') return [];
    return this.options.activations.activeFor(principal.id);
  }

  /**
   * PIM: when no assignment gives the role but a live activation does, the role is decided as if
   * assigned (so whatever else decideAwsRole checks still applies), capped at the activation's end
   * and with the activation as its reason.
   */
  private decideAwsRoleOrActivation(
    principal: Principal,
    target: Extract<Target, { kind: 'aws-role' }>,
    assignments: Assignment[],
    role: AwsRole | null,
    grants: ActiveGrant[],
  ): Decision {
    const matches = (x: { accountId: string; roleName: string }) =>
      x.accountId === target.account && x.roleName === target.role;
    const live = grants.filter(matches);
    if (live.length === 0 || assignments.some(matches))
      return this.decideAwsRole(principal, target, assignments, role);
    const grant = live.reduce((a, b) => (b.secondsLeft > a.secondsLeft ? b : a));
    const asAssignment: Assignment = {
      id: grant.id,
      principalType: 'user',
      principalId: principal.id,
      accountId: grant.accountId,
      roleName: grant.roleName,
      target: formatTarget(target),
      createdAt: grant.expiresAt,
      createdBy: 'pim',
    };
    const decision = this.decideAwsRole(principal, target, [...assignments, asAssignment], role);
    if (decision.effect !== 'allow') return decision;
    return {
      ...decision,
      maxDuration: Math.min(decision.maxDuration, grant.secondsLeft),
      reasons: decision.reasons.map((r) =>
        r.source === 'assignment' && r.ref === grant.id
          ? {
              source: 'activation',
              ref: grant.id,
              message: `${principal.userName} activated ${formatTarget(target)} until ${grant.expiresAt} (activation ${grant.id})`,
            }
          : r,
      ),
    };
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
        reasons: [
          {
            source: 'assignment',
            message: `no assignment gives ${principal.kind === 'workload' ? 'workload ' : ''}${principal.userName} ${name}`,
          },
        ],
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
