import { sql } from 'kysely';
import type { Clock } from '../clock.js';
import type { Store } from '../store/open.js';
import type { AssignmentsTable } from '../store/schema.js';
import { type Assignment, assignmentOf, assignmentsQuery } from './assignments.js';
import {
  type AwsRole,
  type RoleWithAccountRow,
  type RoleWithPartitionRow,
  roleAndAccountOf,
  roleFromRow,
  roleQuery,
  rolesOfTargetsQuery,
} from './aws-accounts.js';
import {
  type ActiveGrant,
  type ActiveGrantRow,
  activeGrantOf,
  activeGrantsQuery,
} from './pim/activations.js';
import { policyGenerationQuery } from './policies/generation.js';
import type { Principal } from './principal.js';
import type { Target } from './targets.js';

/** Everything decide() reads for an AWS role besides the principal it is given. */
export interface AwsRoleReads {
  assignments: Assignment[];
  /** live PIM activations of AWS roles (none for a workload) */
  grants: ActiveGrant[];
  /** null: the account or the role is not registered */
  role: AwsRole | null;
  /** the conditional access policy set's generation (the compiled set is reused while it stays) */
  policyGeneration: number;
}

/** Everything entitlements() reads besides the principal it is given. */
export interface EntitlementReads {
  assignments: Assignment[];
  /** live PIM activations of AWS roles (none for a workload) */
  grants: ActiveGrant[];
  /** the registered roles among the assignments' and activations' targets, by `aws:<account>/<role>` */
  roles: Map<string, AwsRole>;
  policyGeneration: number;
}

export type ReadForEntitlements = (principal: Principal) => Promise<EntitlementReads>;

export type ReadForAwsRole = (
  principal: Principal,
  target: Extract<Target, { kind: 'aws-role' }>,
) => Promise<AwsRoleReads>;

/**
 * PostgreSQL: decide()'s reads for an AWS role (the principal's assignments, their live activations,
 * the role with its account, the policy-set generation) as ONE statement, one round trip on one
 * connection. Side by side on four connections (as before, issue 16) a decision waited for the slowest
 * of four round trips and woke four server processes, which is what made its p99 on a busy machine;
 * one statement of four index lookups costs about one round trip. Each part is the very query the
 * owning service runs on its own (assignmentsQuery, activeGrantsQuery, roleQuery,
 * policyGenerationQuery), aggregated to JSON (every column involved is text or integer, so JSON
 * carries them unchanged). Nothing is cached: a membership or activation that ended is not read.
 *
 * The statement is prepared (Store.prepared, ADR 0058): its text does not change with the principal
 * (the groups are one array parameter), so each pool connection parses it once and, after five
 * decisions, the server keeps one generic plan for it. Planned anew each time, the planning of its
 * four subqueries took about twice as long as running them.
 *
 * SQLite answers in-process with no round trip to save, so it keeps the separate reads.
 */
export function postgresAwsRoleReads(store: Store, clock: Clock): ReadForAwsRole {
  return async (principal, target) => {
    const now = clock.now();
    const assignments = assignmentsQuery(
      principal.id,
      principal.groups.map((g) => g.id),
      principal.kind,
      'postgres',
    );
    // workloads never activate (decide() asks for a person's activations only)
    const grants =
      principal.kind === 'user'
        ? sql`(select coalesce(json_agg(q), '[]'::json) from (${activeGrantsQuery(principal.id, now)}) as q)`
        : sql`'[]'::json`;
    const statement = sql<{
      generation: number | string | null;
      assignments: AssignmentsTable[];
      grants: ActiveGrantRow[];
      role: RoleWithAccountRow | null;
    }>`select (${policyGenerationQuery()}) as generation,
        (select coalesce(json_agg(q), '[]'::json) from (${assignments}) as q) as assignments,
        ${grants} as grants,
        (select row_to_json(q) from (${roleQuery(target.account, target.role)}) as q) as role`.compile(
      store.db,
    );
    const rows = store.prepared
      ? await store.prepared(statement)
      : (await store.db.executeQuery(statement)).rows;
    const row = rows[0]!;
    return {
      assignments: row.assignments.map(assignmentOf),
      grants: row.grants.map((r) => activeGrantOf(r, now)),
      role: row.role ? roleAndAccountOf(row.role).role : null,
      policyGeneration: Number(row.generation ?? 0),
    };
  };
}

/**
 * PostgreSQL: entitlements()' reads (the principal's assignments, their live activations, the roles of
 * both, the policy-set generation) as ONE prepared statement, instead of the generation, assignments
 * and activations side by side on three connections and then the roles: two round trips, four
 * statements each planned anew. The same composition as postgresAwsRoleReads, the roles read for the
 * targets the statement itself found (rolesOfTargetsQuery, rolesByTarget's read). Nothing is cached.
 */
export function postgresEntitlementReads(store: Store, clock: Clock): ReadForEntitlements {
  return async (principal) => {
    const now = clock.now();
    const assignments = assignmentsQuery(
      principal.id,
      principal.groups.map((g) => g.id),
      principal.kind,
      'postgres',
    );
    // workloads never activate
    const granted = principal.kind === 'user' ? activeGrantsQuery(principal.id, now) : null;
    const targets = sql<{
      account_id: string;
      role_name: string;
    }>`select account_id, role_name from assigned${
      granted ? sql` union all select account_id, role_name from granted` : sql``
    }`;
    const statement = sql<{
      generation: number | string | null;
      assignments: AssignmentsTable[];
      grants: ActiveGrantRow[];
      roles: RoleWithPartitionRow[];
    }>`with assigned as (${assignments})${granted ? sql`, granted as (${granted})` : sql``}
      select (${policyGenerationQuery()}) as generation,
        (select coalesce(json_agg(q), '[]'::json) from assigned as q) as assignments,
        ${granted ? sql`(select coalesce(json_agg(q), '[]'::json) from granted as q)` : sql`'[]'::json`} as grants,
        (select coalesce(json_agg(q), '[]'::json) from (${rolesOfTargetsQuery(targets)}) as q) as roles`.compile(
      store.db,
    );
    const rows = store.prepared
      ? await store.prepared(statement)
      : (await store.db.executeQuery(statement)).rows;
    const row = rows[0]!;
    const roles = new Map<string, AwsRole>();
    for (const r of row.roles) roles.set(`aws:${r.account_id}/${r.name}`, roleFromRow(r, r.partition));
    return {
      assignments: row.assignments.map(assignmentOf),
      grants: row.grants.map((r) => activeGrantOf(r, now)),
      roles,
      policyGeneration: Number(row.generation ?? 0),
    };
  };
}
