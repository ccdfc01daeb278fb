import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/actor.js';
import { actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput } from '../errors.js';
import type { Store } from '../store/open.js';
import type { AdminRoleAssignmentsTable } from '../store/schema.js';
import type { Requirement } from './decision.js';

/**
 * Ferry's own admin rights. Every admin route declares one permission; a person holds it through an
 * admin role (a target `admin:<role>` that decide() answers like an AWS role), an API token through its
 * scopes. This file is the one place that says which permissions exist and which role bundles which.
 */
export const PERMISSIONS = [
  'users:read',
  'users:write',
  'mfa:reset',
  'groups:read',
  'groups:write',
  'access:read',
  'access:write',
  'admin-roles:write',
  'pim:read',
  'pim:write',
  'approvals:decide',
  'reviews:read',
  'reviews:write',
  'apps:read',
  'apps:write',
  'provisioning:read',
  'provisioning:write',
  'policies:read',
  'policies:write',
  'keys:read',
  'keys:write',
  'audit:read',
  'activity:read',
  'activity:write',
  'alerts:read',
  'alerts:write',
  'tokens:read',
  'tokens:write',
  'tenant:write',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** what an admin route requires of its caller (the admin guard reads it; app/admin-access.ts) */
    permission?: Permission;
  }
}

/** A token scope: a permission, or `*` for every permission (tokens made before scopes existed). */
export const ALL_PERMISSIONS = '*';

export const isPermission = (s: string): s is Permission => (PERMISSIONS as readonly string[]).includes(s);

const READ_ONLY = PERMISSIONS.filter((p) => p.endsWith(':read'));

export interface AdminRoleDefinition {
  /** what the console and the CLI show */
  title: string;
  description: string;
  permissions: readonly Permission[];
  /**
   * Asked of every sign-in that uses the role, whatever the policies say (a policy may ask for more).
   * Ferry Administrator: phishing-resistant MFA (docs/decisions/0026-admin-rights-as-access-decisions.md).
   */
  requires?: Requirement;
}

/** The admin roles, by the name their target carries (`admin:helpdesk`). */
export const ADMIN_ROLES = {
  'ferry-administrator': {
    title: 'Ferry Administrator',
    description: 'everything, including admin roles, tokens, keys and the tenant file',
    permissions: PERMISSIONS,
    requires: 'phishing-resistant-mfa',
  },
  'access-administrator': {
    title: 'Access Administrator',
    description: 'who may reach what: groups, assignments, eligibilities, apps, reviews, approvals',
    permissions: [
      'users:read',
      'groups:read',
      'groups:write',
      'access:read',
      'access:write',
      'pim:read',
      'pim:write',
      'approvals:decide',
      'reviews:read',
      'reviews:write',
      'apps:read',
      'apps:write',
      'policies:read',
      'provisioning:read',
      'keys:read',
    ],
  },
  helpdesk: {
    title: 'Helpdesk',
    description: 'users and MFA resets only',
    permissions: ['users:read', 'users:write', 'mfa:reset', 'groups:read'],
  },
  auditor: {
    title: 'Auditor',
    description: 'reads everything, including the audit trail; changes nothing',
    permissions: READ_ONLY,
  },
  approver: {
    title: 'Approver',
    description: 'sees activation requests and answers those naming them as approver',
    permissions: ['pim:read', 'approvals:decide'],
  },
} as const satisfies Record<string, AdminRoleDefinition>;
export type AdminRole = keyof typeof ADMIN_ROLES;
export const ADMIN_ROLE_NAMES = Object.keys(ADMIN_ROLES) as AdminRole[];

export const isAdminRole = (s: string): s is AdminRole => Object.hasOwn(ADMIN_ROLES, s);

export function adminRole(name: string): AdminRoleDefinition {
  if (!isAdminRole(name))
    throw new InvalidInput(
      `${JSON.stringify(name)} is not an admin role; one of ${ADMIN_ROLE_NAMES.join(', ')}`,
      'role',
    );
  return ADMIN_ROLES[name];
}

/** The roles whose holders have a permission, in the order above (the first that allows is used). */
export function rolesGranting(permission: Permission): AdminRole[] {
  return ADMIN_ROLE_NAMES.filter((r) =>
    (ADMIN_ROLES[r].permissions as readonly string[]).includes(permission),
  );
}

/** Every permission a set of roles gives. */
export function permissionsOf(roles: Iterable<string>): Permission[] {
  const out = new Set<Permission>();
  for (const r of roles) if (isAdminRole(r)) for (const p of ADMIN_ROLES[r].permissions) out.add(p);
  return PERMISSIONS.filter((p) => out.has(p));
}

/** Does a token's scope list allow a permission? */
export const scopesAllow = (scopes: readonly string[], permission: Permission): boolean =>
  scopes.includes(ALL_PERMISSIONS) || scopes.includes(permission);

/**
 * PIM stores what may be activated as (account, role); an admin role is the pseudo-account `ferry` with
 * the role's name (no AWS account id is `ferry`: they are twelve digits), so eligibilities, activations,
 * approvals and their audit work unchanged.
 */
export const ADMIN_ACCOUNT = 'ferry';

/** How PIM names what it grants: `admin:<role>` for the pseudo-account, `aws:<account>/<role>` otherwise. */
export const pimTargetText = (accountId: string, roleName: string): string =>
  accountId === ADMIN_ACCOUNT ? `admin:${roleName}` : `aws:${accountId}/${roleName}`;

/**
 * Resolves what a PIM rule or request names: an AWS role (account id or alias) or an admin role
 * (account `ferry`, or the whole target `admin:<role>` as the role).
 */
export async function pimTargetOf(
  accounts: {
    role(account: string, role: string): Promise<{ account: { id: string }; role: { name: string } }>;
  },
  accountRef: string,
  roleName: string,
): Promise<{ accountId: string; roleName: string; target: string }> {
  if (accountRef === ADMIN_ACCOUNT) {
    const role = roleName.startsWith('admin:') ? roleName.slice(6) : roleName;
    adminRole(role);
    return { accountId: ADMIN_ACCOUNT, roleName: role, target: `admin:${role}` };
  }
  const { account, role } = await accounts.role(accountRef, roleName);
  return { accountId: account.id, roleName: role.name, target: `aws:${account.id}/${role.name}` };
}

export interface AdminRoleAssignment {
  id: string;
  principalType: 'group' | 'user';
  principalId: string;
  principalName?: string;
  role: AdminRole;
  /** admin:<role> */
  target: string;
  createdAt: string;
  createdBy: string;
}

const fromRow = (r: AdminRoleAssignmentsTable): AdminRoleAssignment => ({
  id: r.id,
  principalType: r.principal_type,
  principalId: r.principal_id,
  role: r.role as AdminRole,
  target: `admin:${r.role}`,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** Who holds which admin role standing (PIM eligibilities give them just in time). */
export class AdminRoleAssignments {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async list(
    filter: { principal?: { type: 'group' | 'user'; id: string }; role?: string } = {},
  ): Promise<AdminRoleAssignment[]> {
    let q = this.store.db.selectFrom('admin_role_assignments').selectAll();
    if (filter.principal)
      q = q
        .where('principal_type', '=', filter.principal.type)
        .where('principal_id', '=', filter.principal.id);
    if (filter.role) q = q.where('role', '=', filter.role);
    return (await q.orderBy('role').orderBy('created_at').execute()).map(fromRow);
  }

  /**
   * Does membership of this group carry admin power: an admin role held, one its members may activate
   * (PIM), or the approval of someone else's activation of one, directly or through membership of a
   * group that carries it? Then adding a member, or making someone eligible for the group, is granting
   * that power (and needs admin-roles:write): otherwise `groups:write` alone would let an Access
   * Administrator join an approver group and approve a colleague's request.
   */
  async groupHoldsAdminRole(groupId: string): Promise<boolean> {
    return (await this.groupsCarryingAdminPower()).has(groupId);
  }

  private async groupsCarryingAdminPower(): Promise<Set<string>> {
    const { db } = this.store;
    const holding = await db
      .selectFrom('admin_role_assignments')
      .select('principal_id')
      .where('principal_type', '=', 'group')
      .execute();
    const power = new Set(holding.map((r) => r.principal_id));
    const eligibilities = await db
      .selectFrom('pim_eligibilities')
      .select(['principal_type', 'principal_id', 'approvers', 'account_id'])
      .where((eb) => eb.or([eb('account_id', '=', ADMIN_ACCOUNT), eb('account_id', 'like', 'group:%')]))
      .execute();
    // An eligibility grants admin power when its target does: an admin role, or a group that carries it.
    // Each pass can only add groups, so this ends after at most as many passes as there are eligibilities.
    for (let changed = true; changed; ) {
      changed = false;
      for (const e of eligibilities) {
        const grants = e.account_id === ADMIN_ACCOUNT || power.has(e.account_id.slice('group:'.length));
        if (!grants) continue;
        const groups = (JSON.parse(e.approvers) as Array<{ type: string; id: string }>)
          .filter((a) => a.type === 'group')
          .map((a) => a.id);
        if (e.principal_type === 'group') groups.push(e.principal_id);
        for (const g of groups)
          if (!power.has(g)) {
            power.add(g);
            changed = true;
          }
      }
    }
    return power;
  }

  /** The assignments that apply to a person: their own and their groups'. */
  async forPrincipal(userId: string, groupIds: string[]): Promise<AdminRoleAssignment[]> {
    const rows = await this.store.db
      .selectFrom('admin_role_assignments')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', userId)]),
          ...(groupIds.length > 0
            ? [eb.and([eb('principal_type', '=', 'group'), eb('principal_id', 'in', groupIds)])]
            : []),
        ]),
      )
      .orderBy('role')
      .execute();
    return rows.map(fromRow);
  }

  /** Grants a role; idempotent (returns the existing one with created=false). */
  async add(
    ctx: AuditContext,
    principal: { type: 'group' | 'user'; id: string; name: string },
    role: string,
  ): Promise<{ assignment: AdminRoleAssignment; created: boolean }> {
    adminRole(role);
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('admin_role_assignments')
        .selectAll()
        .where('principal_type', '=', principal.type)
        .where('principal_id', '=', principal.id)
        .where('role', '=', role)
        .executeTakeFirst();
      if (existing) return { assignment: fromRow(existing), created: false };
      const row: AdminRoleAssignmentsTable = {
        id: randomUUID(),
        principal_type: principal.type,
        principal_id: principal.id,
        role,
        created_at: iso(this.clock.now()),
        created_by: actorName(ctx.actor),
      };
      await trx.insertInto('admin_role_assignments').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'assignment.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${principal.type}:${principal.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: row.id, target: `admin:${role}`, principalId: principal.id },
      });
      return { assignment: fromRow(row), created: true };
    });
  }

  async get(id: string): Promise<AdminRoleAssignment | null> {
    const row = await this.store.db
      .selectFrom('admin_role_assignments')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? fromRow(row) : null;
  }

  /** Removes an assignment by id; null when the id is not an admin role assignment. */
  async remove(ctx: AuditContext, id: string): Promise<AdminRoleAssignment | null> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('admin_role_assignments')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) return null;
      await trx.deleteFrom('admin_role_assignments').where('id', '=', id).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'assignment.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${row.principal_type}:${row.principal_id}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: id, target: `admin:${row.role}` },
      });
      return fromRow(row);
    });
  }

  /** Drops every assignment of a deleted user or group (an outbox handler; idempotent). */
  async removeForPrincipal(type: 'group' | 'user', id: string): Promise<number> {
    const res = await this.store.db
      .deleteFrom('admin_role_assignments')
      .where('principal_type', '=', type)
      .where('principal_id', '=', id)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
