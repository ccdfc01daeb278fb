import { ADMIN_ACCOUNT, type AdminRoleAssignments, pimTargetText } from './admin-roles.js';
import type { AppAssignments } from './app-assignments.js';
import type { Assignments } from './assignments.js';
import type { AccessDecider } from './decide.js';
import type { Decision, Reason } from './decision.js';
import type { Activations } from './pim/activations.js';
import type { Eligibilities } from './pim/eligibilities.js';
import type { Principal, Signals } from './principal.js';
import type { SshLogins } from './ssh-logins.js';
import { formatTarget, parseTarget, type Target } from './targets.js';

/** How a person comes by a target: the rows that put it in front of decide(). */
export interface Via {
  kind: 'group' | 'direct' | 'activation' | 'eligibility';
  /** the group's name, the activation's or eligibility's id */
  name: string;
}

/** One person and one target, with decide()'s answer and why. */
export interface ReachItem {
  target: string;
  userId: string;
  userName: string;
  /** decide()'s effect for a password sign-in; `eligible` when only a PIM activation would give it */
  effect: 'allow' | 'step-up' | 'eligible';
  /** what a step-up asks for ("requires MFA" in the CLI) */
  require?: string[];
  /** seconds a credential could last on this decision */
  maxDuration?: number;
  via: Via[];
  reasons: Reason[];
}

export interface ReachDeps {
  access: AccessDecider;
  assignments: Assignments;
  adminRoles: AdminRoleAssignments;
  eligibilities: Eligibilities;
  activations: Activations;
  sshLogins: SshLogins;
  appAssignments: AppAssignments;
  /** a person from the directory, as a password sign-in would present them */
  principal: (userId: string) => Promise<Principal>;
  /** user ids of a group's members */
  members: (groupId: string) => Promise<string[]>;
  /** a group's display name */
  groupName: (groupId: string) => Promise<string>;
}

/**
 * The sign-in "who can reach what" assumes: a password alone, from nowhere in particular, in a
 * browser. Policies that ask more show as step-ups ("requires mfa"), which is what an administrator
 * needs to see; the person's real sign-in may already satisfy them.
 */
const SIGNALS: Signals = { client: 'browser', ip: null };
const PASSWORD_ONLY = ['pwd'];

/**
 * Who can reach what, answered by decide() itself (explain(): nothing recorded), so the answer is the
 * one sign-in would get. Candidates come from assignments, admin roles, SSH login mappings, app
 * assignments, live activations and eligibilities; decide() says which of them hold.
 */
export class Reach {
  constructor(private readonly deps: ReachDeps) {}

  /** Every target a person can reach now (or after a step-up, or by activating an eligibility). */
  async of(userId: string): Promise<ReachItem[]> {
    const p = await this.deps.principal(userId);
    const principal: Principal = { ...p, amr: PASSWORD_ONLY, authTime: null };
    const groupIds = principal.groups.map((g) => g.id);
    const groupName = new Map(principal.groups.map((g) => [g.id, g.name]));
    const candidates = new Map<string, { target: Target; via: Via[] }>();
    const add = (target: Target, via: Via) => {
      const key = formatTarget(target);
      const c = candidates.get(key) ?? { target, via: [] };
      if (!c.via.some((v) => v.kind === via.kind && v.name === via.name)) c.via.push(via);
      candidates.set(key, c);
    };
    const viaOf = (type: string, id: string): Via =>
      type === 'group'
        ? { kind: 'group', name: groupName.get(id) ?? id }
        : { kind: 'direct', name: principal.userName };
    for (const a of await this.deps.assignments.forPrincipal(userId, groupIds))
      add(
        { kind: 'aws-role', account: a.accountId, role: a.roleName },
        viaOf(a.principalType, a.principalId),
      );
    for (const a of await this.deps.adminRoles.forPrincipal(userId, groupIds))
      add({ kind: 'admin', role: a.role }, viaOf(a.principalType, a.principalId));
    for (const m of await this.deps.sshLogins.forGroups(groupIds))
      for (const login of m.logins)
        add(
          { kind: 'ssh', host: m.hosts, login },
          { kind: 'group', name: groupName.get(m.groupId) ?? m.groupId },
        );
    for (const a of await this.deps.activations.list({ userId, states: ['active'] }))
      add(pimTarget(a.accountId, a.roleName), { kind: 'activation', name: a.id });
    const eligible = await this.deps.eligibilities.forPrincipal(userId, groupIds);
    const out: ReachItem[] = [];
    for (const { target, via } of candidates.values()) {
      const d = await this.deps.access.explain(principal, target, SIGNALS);
      if (d.effect !== 'deny') out.push(item(formatTarget(target), principal, d, via));
    }
    for (const e of eligible) {
      const target = pimTarget(e.accountId, e.roleName);
      const key = formatTarget(target);
      if (out.some((i) => i.target === key)) continue;
      out.push({
        target: key,
        userId: principal.id,
        userName: principal.userName,
        effect: 'eligible',
        via: [viaOf(e.principalType, e.principalId), { kind: 'eligibility', name: e.id }],
        reasons: [
          {
            source: 'assignment',
            ref: e.id,
            message: `eligible: may activate ${key} for up to ${e.maxDuration} s${e.approvers.length > 0 ? ' with approval' : ''}`,
          },
        ],
      });
    }
    return out.sort((a, b) => a.target.localeCompare(b.target));
  }

  /** Every person who can reach a target, each with decide()'s answer and why. */
  async who(targetText: string): Promise<ReachItem[]> {
    const target = parseTarget(targetText);
    const key = formatTarget(target);
    const people = new Map<string, Via[]>();
    const add = async (type: string, id: string, name: string, via?: Via) => {
      const ids = type === 'group' ? await this.deps.members(id) : [id];
      for (const userId of ids) {
        const list = people.get(userId) ?? [];
        const v: Via = via ?? (type === 'group' ? { kind: 'group', name } : { kind: 'direct', name });
        if (!list.some((x) => x.kind === v.kind && x.name === v.name)) list.push(v);
        people.set(userId, list);
      }
    };
    const eligibleVia = new Map<string, Via[]>();
    const pimKey =
      target.kind === 'aws-role'
        ? { accountId: target.account, roleName: target.role }
        : target.kind === 'admin'
          ? { accountId: ADMIN_ACCOUNT, roleName: target.role }
          : null;
    if (target.kind === 'aws-role') {
      for (const a of await this.deps.assignments.list({ accountId: target.account }))
        if (a.roleName === target.role && a.principalType !== 'workload')
          await add(a.principalType, a.principalId, await this.nameOf(a.principalType, a.principalId));
    }
    if (target.kind === 'admin') {
      for (const a of await this.deps.adminRoles.list({ role: target.role }))
        await add(a.principalType, a.principalId, await this.nameOf(a.principalType, a.principalId));
    }
    if (target.kind === 'ssh') {
      for (const m of await this.deps.sshLogins.list())
        if (!target.login || m.logins.includes(target.login))
          await add('group', m.groupId, m.groupName ?? m.groupId);
    }
    if (target.kind === 'app') {
      for (const g of await this.deps.appAssignments.groupsOf(target.name)) await add('group', g.id, g.name);
    }
    if (pimKey) {
      for (const a of await this.deps.activations.list({ states: ['active'] }))
        if (a.accountId === pimKey.accountId && a.roleName === pimKey.roleName)
          await add('user', a.userId, a.userName, { kind: 'activation', name: a.id });
      for (const e of await this.deps.eligibilities.list())
        if (e.accountId === pimKey.accountId && e.roleName === pimKey.roleName) {
          const ids = e.principalType === 'group' ? await this.deps.members(e.principalId) : [e.principalId];
          for (const id of ids)
            eligibleVia.set(id, [...(eligibleVia.get(id) ?? []), { kind: 'eligibility', name: e.id }]);
        }
    }
    const out: ReachItem[] = [];
    for (const [userId, via] of people) {
      const p = await this.deps.principal(userId);
      const principal: Principal = { ...p, amr: PASSWORD_ONLY, authTime: null };
      const named = via.map((v) => (v.kind === 'direct' ? { ...v, name: p.userName } : v));
      const d = await this.deps.access.explain(principal, target, SIGNALS);
      if (d.effect !== 'deny') out.push(item(key, principal, d, named));
    }
    for (const [userId, via] of eligibleVia) {
      if (out.some((i) => i.userId === userId)) continue;
      const p = await this.deps.principal(userId);
      if (!p.active) continue;
      out.push({
        target: key,
        userId,
        userName: p.userName,
        effect: 'eligible',
        via,
        reasons: [{ source: 'assignment', message: `eligible: may activate ${key}` }],
      });
    }
    return out.sort((a, b) => a.userName.localeCompare(b.userName));
  }

  /** a group's name; a user's direct assignment is named after them once their principal is read */
  private async nameOf(type: string, id: string): Promise<string> {
    return type === 'group' ? this.deps.groupName(id) : '';
  }
}

const pimTarget = (accountId: string, roleName: string): Target =>
  parseTarget(pimTargetText(accountId, roleName));

function item(target: string, principal: Principal, d: Decision, via: Via[]): ReachItem {
  return {
    target,
    userId: principal.id,
    userName: principal.userName,
    effect: d.effect === 'allow' ? 'allow' : 'step-up',
    ...(d.effect === 'step-up' ? { require: d.require } : {}),
    ...(d.effect === 'allow' ? { maxDuration: d.maxDuration } : {}),
    via,
    reasons: d.reasons,
  };
}
