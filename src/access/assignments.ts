import { randomUUID } from 'node:crypto';
import { type RawBuilder, sql } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { NotFound } from '../errors.js';
import type { Engine, Store } from '../store/open.js';
import type { AssignmentsTable } from '../store/schema.js';
import type { AwsAccounts } from './aws-accounts.js';

/** Who an assignment is for: a directory group or user, or a workload identity (an OAuth client). */
export type AssigneeType = 'group' | 'user' | 'workload';

/** A principal as assignments name it; the caller resolves names to ids. */
export interface PrincipalRef {
  type: AssigneeType;
  id: string;
  name: string;
}

export interface Assignment {
  id: string;
  principalType: AssigneeType;
  principalId: string;
  accountId: string;
  roleName: string;
  /** aws:<account>/<role> */
  target: string;
  createdAt: string;
  createdBy: string;
}

/**
 * The assignments of a user (or workload) and of its groups. Asked by every decide() and
 * entitlements(): written as SQL text, which costs a fraction of building the same query node by
 * node (issue 16, decide() latency); also embedded as it is in decide()'s single PostgreSQL read.
 *
 * On PostgreSQL the groups are one array parameter, so the text is the same whatever their number and
 * the statement can stay prepared (ADR 0058). The array is read through a sub-select on purpose: a
 * plan for given values then estimates it as a plan for any values does (ten elements), so after five
 * executions the server keeps one generic plan instead of planning every decision anew (planning cost
 * more than running it).
 */
export function assignmentsQuery(
  userId: string,
  groupIds: string[],
  ownType: 'user' | 'workload',
  engine: Engine,
): RawBuilder<AssignmentsTable> {
  const groups =
    engine === 'postgres'
      ? sql` or (principal_type = 'group' and principal_id = any(array(select unnest(${groupIds}::text[]))))`
      : groupIds.length > 0
        ? sql` or (principal_type = 'group' and principal_id in (${sql.join(groupIds)}))`
        : sql``;
  return sql<AssignmentsTable>`select * from assignments
      where (principal_type = ${ownType} and principal_id = ${userId})${groups}
      order by account_id, role_name`;
}

export const assignmentOf = (r: AssignmentsTable): Assignment => ({
  id: r.id,
  principalType: r.principal_type,
  principalId: r.principal_id,
  accountId: r.account_id,
  roleName: r.role_name,
  target: `aws:${r.account_id}/${r.role_name}`,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** Who may have which AWS role: group or user → (account, role). */
export class Assignments {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly accounts: AwsAccounts,
  ) {}

  async list(
    filter: { principal?: { type: AssigneeType; id: string }; accountId?: string } = {},
  ): Promise<Assignment[]> {
    let q = this.store.db.selectFrom('assignments').selectAll();
    if (filter.principal) {
      q = q
        .where('principal_type', '=', filter.principal.type)
        .where('principal_id', '=', filter.principal.id);
    }
    if (filter.accountId) q = q.where('account_id', '=', filter.accountId);
    const rows = await q.orderBy('account_id').orderBy('role_name').orderBy('created_at').execute();
    return rows.map(assignmentOf);
  }

  /** Assignments that apply to a user (or workload): their own and their groups'. */
  async forPrincipal(
    userId: string,
    groupIds: string[],
    ownType: 'user' | 'workload' = 'user',
  ): Promise<Assignment[]> {
    const { rows } = await assignmentsQuery(userId, groupIds, ownType, this.store.engine).execute(
      this.store.db,
    );
    return rows.map(assignmentOf);
  }

  /** Adds an assignment; idempotent (returns the existing one with created=false). */
  async add(
    ctx: AuditContext,
    principal: PrincipalRef,
    accountRef: string,
    roleName: string,
  ): Promise<{ assignment: Assignment; created: boolean }> {
    const { account, role } = await this.accounts.role(accountRef, roleName);
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('assignments')
        .selectAll()
        .where('principal_type', '=', principal.type)
        .where('principal_id', '=', principal.id)
        .where('account_id', '=', account.id)
        .where('role_name', '=', role.name)
        .executeTakeFirst();
      if (existing) return { assignment: assignmentOf(existing), created: false };
      const row: AssignmentsTable = {
        id: randomUUID(),
        principal_type: principal.type,
        principal_id: principal.id,
        account_id: account.id,
        role_name: role.name,
        created_at: iso(this.clock.now()),
        created_by: actorName(ctx.actor),
      };
      await trx.insertInto('assignments').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'assignment.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${principal.type}:${principal.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: row.id, target: `aws:${account.id}/${role.name}`, principalId: principal.id },
      });
      return { assignment: assignmentOf(row), created: true };
    });
  }

  async remove(ctx: AuditContext, id: string): Promise<Assignment> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('assignments').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFound('assignment', id);
      await trx.deleteFrom('assignments').where('id', '=', id).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'assignment.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${row.principal_type}:${row.principal_id}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { assignmentId: id, target: `aws:${row.account_id}/${row.role_name}` },
      });
      return assignmentOf(row);
    });
  }

  /** Drops every assignment of a deleted user or group (an outbox handler; idempotent). */
  async removeForPrincipal(type: AssigneeType, id: string): Promise<number> {
    const res = await this.store.db
      .deleteFrom('assignments')
      .where('principal_type', '=', type)
      .where('principal_id', '=', id)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
