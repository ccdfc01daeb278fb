import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type AuditContext, actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import type { Store } from '../store/open.js';
import type { Database, PermissionSetAssignmentsTable, PermissionSetsTable } from '../store/schema.js';
import type { AwsAccounts } from './aws-accounts.js';
import type { AwsOrganization } from './organization.js';
import {
  checkPermissionSet,
  isoDurationSeconds,
  type PermissionSetInput,
  type PermissionSetSpec,
} from './permission-set-rules.js';

export interface PermissionSetAssignment {
  id: string;
  principalType: 'group' | 'user';
  principalId: string;
  /** an account, or every account in an OU (and below) */
  scopeType: 'account' | 'ou';
  scopeId: string;
  permissionSet: string;
  createdAt: string;
  createdBy: string;
}

export interface PermissionSetsDeps {
  store: Store;
  clock: Clock;
  accounts: AwsAccounts;
  organization: AwsOrganization;
}

const specFromRow = (r: PermissionSetsTable): PermissionSetSpec => ({
  name: r.name,
  description: r.description,
  sessionDuration: r.session_duration,
  relayState: r.relay_state,
  managedPolicies: JSON.parse(r.managed_policies) as string[],
  customerManagedPolicies: JSON.parse(
    r.customer_managed_policies,
  ) as PermissionSetSpec['customerManagedPolicies'],
  inlinePolicy: r.inline_policy,
  permissionsBoundary: r.permissions_boundary
    ? (JSON.parse(r.permissions_boundary) as PermissionSetSpec['permissionsBoundary'])
    : null,
});

const assignmentFromRow = (r: PermissionSetAssignmentsTable): PermissionSetAssignment => ({
  id: r.id,
  principalType: r.principal_type,
  principalId: r.principal_id,
  scopeType: r.scope_type,
  scopeId: r.scope_id,
  permissionSet: r.permission_set,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** The longest session a permission set gives, in seconds. */
export const sessionSecondsOf = (spec: PermissionSetSpec): number =>
  isoDurationSeconds(spec.sessionDuration) ?? 3600;

/**
 * IAM Identity Center permission sets and their account assignments as Ferry's operators declare them.
 * This is the wanted state: decide() reads it, and the Identity Center sync makes AWS match it.
 */
export class PermissionSets {
  constructor(private readonly deps: PermissionSetsDeps) {}

  async list(): Promise<PermissionSetSpec[]> {
    const rows = await this.deps.store.db.selectFrom('permission_sets').selectAll().orderBy('name').execute();
    return rows.map(specFromRow);
  }

  async find(db: Kysely<Database>, name: string): Promise<PermissionSetSpec | null> {
    const row = await db
      .selectFrom('permission_sets')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? specFromRow(row) : null;
  }

  async get(name: string): Promise<PermissionSetSpec> {
    const spec = await this.find(this.deps.store.db, name);
    if (!spec) throw new NotFound('permission set', name);
    return spec;
  }

  /** Creates or replaces a permission set (validated against Identity Center's rules first). */
  async put(
    ctx: AuditContext,
    input: PermissionSetInput,
  ): Promise<{ spec: PermissionSetSpec; changed: boolean }> {
    const spec = checkPermissionSet(input);
    const { store, clock } = this.deps;
    const now = iso(clock.now());
    return store.db.transaction().execute(async (trx) => {
      const existing = await this.find(trx, spec.name);
      if (existing && JSON.stringify(existing) === JSON.stringify(spec)) return { spec, changed: false };
      const values = {
        description: spec.description,
        session_duration: spec.sessionDuration,
        relay_state: spec.relayState,
        managed_policies: JSON.stringify(spec.managedPolicies),
        customer_managed_policies: JSON.stringify(spec.customerManagedPolicies),
        inline_policy: spec.inlinePolicy,
        permissions_boundary: spec.permissionsBoundary ? JSON.stringify(spec.permissionsBoundary) : null,
        updated_at: now,
      };
      if (existing)
        await trx.updateTable('permission_sets').set(values).where('name', '=', spec.name).execute();
      else
        await trx
          .insertInto('permission_sets')
          .values({ name: spec.name, ...values, created_at: now })
          .execute();
      await appendAudit(trx, store.engine, clock, {
        type: existing ? 'permission-set.updated' : 'permission-set.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: spec.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          sessionDuration: spec.sessionDuration,
          managedPolicies: spec.managedPolicies,
          customerManagedPolicies: spec.customerManagedPolicies.map((p) => `${p.path}${p.name}`),
          inlinePolicy: spec.inlinePolicy !== null,
          permissionsBoundary: spec.permissionsBoundary !== null,
        },
      });
      return { spec, changed: true };
    });
  }

  /** Removes a permission set and its assignments (Identity Center follows at the next sync). */
  async remove(ctx: AuditContext, name: string): Promise<void> {
    const { store, clock } = this.deps;
    await this.get(name);
    await store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('permission_set_assignments').where('permission_set', '=', name).execute();
      await trx.deleteFrom('permission_sets').where('name', '=', name).execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'permission-set.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
      });
    });
  }

  async assignments(filter: { permissionSet?: string } = {}): Promise<PermissionSetAssignment[]> {
    let q = this.deps.store.db.selectFrom('permission_set_assignments').selectAll();
    if (filter.permissionSet) q = q.where('permission_set', '=', filter.permissionSet);
    const rows = await q.orderBy('permission_set').orderBy('scope_id').orderBy('created_at').execute();
    return rows.map(assignmentFromRow);
  }

  /** Assignments that apply to a person: their own and their groups'. */
  async forPrincipal(userId: string, groupIds: string[]): Promise<PermissionSetAssignment[]> {
    const rows = await this.deps.store.db
      .selectFrom('permission_set_assignments')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', userId)]),
          ...(groupIds.length > 0
            ? [eb.and([eb('principal_type', '=', 'group'), eb('principal_id', 'in', groupIds)])]
            : []),
        ]),
      )
      .execute();
    return rows.map(assignmentFromRow);
  }

  /**
   * An account (12 digits or alias, registered) or an OU (ou-…, r-… or a path, discovered) → the scope
   * stored. An unknown one is refused by name.
   */
  async resolveScope(ref: string): Promise<{ type: 'account' | 'ou'; id: string; label: string }> {
    if (/^(ou-|r-)/.test(ref) || ref.startsWith('/')) {
      const unit = await this.deps.organization.unit(ref);
      if (!unit)
        throw new InvalidInput(
          `unknown organizational unit ${ref} (run \`ferry aws discover\` to read AWS Organizations)`,
          'ou',
        );
      return { type: 'ou', id: unit.id, label: unit.path };
    }
    const account = await this.deps.accounts.find(this.deps.store.db, ref);
    if (!account) throw new InvalidInput(`unknown AWS account ${ref}`, 'account');
    return { type: 'account', id: account.id, label: `${account.id} (${account.alias})` };
  }

  /** Adds an assignment; idempotent. */
  async assign(
    ctx: AuditContext,
    principal: { type: 'group' | 'user'; id: string; name: string },
    scopeRef: string,
    permissionSet: string,
  ): Promise<{ assignment: PermissionSetAssignment; created: boolean }> {
    const { store, clock } = this.deps;
    const scope = await this.resolveScope(scopeRef);
    return store.db.transaction().execute(async (trx) => {
      if (!(await this.find(trx, permissionSet)))
        throw new InvalidInput(`unknown permission set ${permissionSet}`, 'permissionSet');
      const existing = await trx
        .selectFrom('permission_set_assignments')
        .selectAll()
        .where('principal_type', '=', principal.type)
        .where('principal_id', '=', principal.id)
        .where('scope_id', '=', scope.id)
        .where('permission_set', '=', permissionSet)
        .executeTakeFirst();
      if (existing) return { assignment: assignmentFromRow(existing), created: false };
      const row: PermissionSetAssignmentsTable = {
        id: randomUUID(),
        principal_type: principal.type,
        principal_id: principal.id,
        scope_type: scope.type,
        scope_id: scope.id,
        permission_set: permissionSet,
        created_at: iso(clock.now()),
        created_by: actorName(ctx.actor),
      };
      await trx.insertInto('permission_set_assignments').values(row).execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'permission-set-assignment.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${principal.type}:${principal.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: row.id, permissionSet, scope: scope.label, principalId: principal.id },
      });
      return { assignment: assignmentFromRow(row), created: true };
    });
  }

  async unassign(ctx: AuditContext, id: string): Promise<PermissionSetAssignment> {
    const { store, clock } = this.deps;
    return store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('permission_set_assignments')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new NotFound('permission set assignment', id);
      await trx.deleteFrom('permission_set_assignments').where('id', '=', id).execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'permission-set-assignment.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${row.principal_type}:${row.principal_id}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: id, permissionSet: row.permission_set, scope: row.scope_id },
      });
      return assignmentFromRow(row);
    });
  }

  /** The accounts an assignment reaches right now (an OU's follow Organizations as last discovered). */
  async accountsOf(a: Pick<PermissionSetAssignment, 'scopeType' | 'scopeId'>): Promise<string[]> {
    return a.scopeType === 'account' ? [a.scopeId] : this.deps.organization.accountsIn(a.scopeId);
  }
}
