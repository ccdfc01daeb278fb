import { InvalidInput } from '../../errors.js';
import type { PimTargetKind } from '../../store/schema.js';
import { ADMIN_ACCOUNT, pimTargetText } from '../admin-roles.js';
import { HOST_PATTERN, LOGIN_PATTERN } from '../ssh-logins.js';

export type { PimTargetKind } from '../../store/schema.js';

/**
 * What an eligibility lets a person activate, as written in the CLI, API and tenant file:
 *   aws:<account>/<role>                     an IAM role (account: 12-digit id or alias)
 *   admin:<role>                             a Ferry admin role (stored as the pseudo-account `ferry`)
 *   aws:<account>/permission-set/<name>      an IAM Identity Center permission set in an account
 *   aws:ou/<ou>/permission-set/<name>        ... in any account of an OU (ou-…, r-… or a path such as
 *                                            Root/Workloads), as AWS Organizations last said at activation
 *   group:<name>                             membership of a Ferry group (and so whatever it is assigned)
 *   ssh:<login>@<host or glob>               an SSH login mapping (the syntax of access/targets.ts)
 */
export type PimTargetInput =
  | { kind: 'aws-role'; account: string; role: string }
  /** `ou`: account names an OU (id or path) rather than an account */
  | { kind: 'permission-set'; account: string; name: string; ou?: boolean }
  | { kind: 'group'; group: string }
  | { kind: 'ssh'; hosts: string; login: string };

/** Identity Center's rule for permission set names (CreatePermissionSet: 1-32 of [\w+=,.@-]). */
export const PERMISSION_SET_NAME = /^[\w+=,.@-]{1,32}$/;

/** How an OU eligibility's stored accountId starts: `ou/<ou id>`, so its text is aws:ou/<id>/permission-set/… */
export const OU_PREFIX = 'ou/';

export function parsePimTarget(text: string): PimTargetInput {
  const t = text.trim();
  const ou = /^aws:ou\/(.{1,512})\/permission-set\/([^/]+)$/.exec(t);
  if (ou) {
    if (!PERMISSION_SET_NAME.test(ou[2]!))
      throw new InvalidInput(
        `permission set name ${JSON.stringify(ou[2])} breaks Identity Center's rule: 1-32 characters of letters, digits and +=,.@_-`,
        'target',
      );
    return { kind: 'permission-set', account: ou[1]!, name: ou[2]!, ou: true };
  }
  const ps = /^aws:([^/\s]{1,63})\/permission-set\/(.+)$/.exec(t);
  if (ps) {
    if (!PERMISSION_SET_NAME.test(ps[2]!))
      throw new InvalidInput(
        `permission set name ${JSON.stringify(ps[2])} breaks Identity Center's rule: 1-32 characters of letters, digits and +=,.@_-`,
        'target',
      );
    return { kind: 'permission-set', account: ps[1]!, name: ps[2]! };
  }
  const admin = /^admin:([\w-]{1,64})$/.exec(t);
  if (admin) return { kind: 'aws-role', account: ADMIN_ACCOUNT, role: admin[1]! };
  const role = /^aws:([^/\s]{1,63})\/([\w+=,.@-]{1,64})$/.exec(t);
  if (role) return { kind: 'aws-role', account: role[1]!, role: role[2]! };
  const group = /^group:(.{1,256})$/.exec(t);
  if (group) return { kind: 'group', group: group[1]!.trim() };
  const ssh = /^ssh:([^@\s]+)@(\S+)$/.exec(t);
  if (ssh) {
    if (!LOGIN_PATTERN.test(ssh[1]!))
      throw new InvalidInput(`login ${JSON.stringify(ssh[1])} is not a Linux user name`, 'target');
    if (!HOST_PATTERN.test(ssh[2]!))
      throw new InvalidInput(`hosts ${JSON.stringify(ssh[2])} is not a host name or glob pattern`, 'target');
    return { kind: 'ssh', hosts: ssh[2]!, login: ssh[1]! };
  }
  throw new InvalidInput(
    `target ${JSON.stringify(text)} is not one of aws:<account>/<role>, admin:<role>, aws:<account>/permission-set/<name>, aws:ou/<ou>/permission-set/<name>, group:<name>, ssh:<login>@<host or pattern>`,
    'target',
  );
}

/** The stored pair (see migration 0024) of a resolved target. */
export interface StoredTarget {
  kind: PimTargetKind;
  accountId: string;
  roleName: string;
}

export const PERMISSION_SET_PREFIX = 'permission-set/';

export function storedPermissionSet(accountId: string, name: string): StoredTarget {
  return { kind: 'permission-set', accountId, roleName: `${PERMISSION_SET_PREFIX}${name}` };
}
export function storedGroup(groupId: string, groupName: string): StoredTarget {
  return { kind: 'group', accountId: `group:${groupId}`, roleName: groupName };
}
export function storedSsh(hosts: string, login: string): StoredTarget {
  return { kind: 'ssh', accountId: `ssh:${hosts}`, roleName: login };
}

/** The target as people read it, from the stored pair. */
export function targetText(t: StoredTarget): string {
  switch (t.kind) {
    case 'group':
      return `group:${t.roleName}`;
    case 'ssh':
      return `ssh:${t.roleName}@${t.accountId.slice('ssh:'.length)}`;
    default:
      return pimTargetText(t.accountId, t.roleName);
  }
}

/** The parts of a stored target each effect needs. */
export function targetParts(t: StoredTarget): {
  account?: string;
  permissionSet?: string;
  groupId?: string;
  hosts?: string;
  login?: string;
} {
  switch (t.kind) {
    case 'permission-set':
      return { account: t.accountId, permissionSet: t.roleName.slice(PERMISSION_SET_PREFIX.length) };
    case 'group':
      return { groupId: t.accountId.slice('group:'.length) };
    case 'ssh':
      return { hosts: t.accountId.slice('ssh:'.length), login: t.roleName };
    default:
      return { account: t.accountId };
  }
}

/** What the person should know about sessions already open when an activation of this kind ends. */
export function openSessionsNote(kind: PimTargetKind): string {
  switch (kind) {
    case 'aws-role':
      return 'when it ends, Ferry stops issuing and ends your AWS sessions on the role (per-person deny)';
    case 'permission-set':
      return "when it ends, Ferry deletes the account assignment; Identity Center sessions already open keep working until their session duration ends (the permission set's SessionDuration, which Ferry keeps at or below the eligibility's maximum)";
    case 'group':
      return 'when it ends, Ferry removes the membership (and pushes that to Identity Center); sessions and credentials already issued through the group run to their own end';
    case 'ssh':
      return 'when it ends, Ferry issues no more certificates for the login; a certificate already issued is valid until it expires (at most the SSH certificate lifetime) and open SSH connections are not cut';
  }
}
