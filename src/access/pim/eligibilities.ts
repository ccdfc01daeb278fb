import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../../audit/actor.js';
import { actorName } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { InvalidInput, NotFound } from '../../errors.js';
import type { Store } from '../../store/open.js';
import type { PimEligibilitiesTable } from '../../store/schema.js';
import { pimTargetOf } from '../admin-roles.js';
import type { AwsAccounts } from '../aws-accounts.js';
import {
  OU_PREFIX,
  type PimTargetInput,
  type PimTargetKind,
  parsePimTarget,
  type StoredTarget,
  storedGroup,
  storedPermissionSet,
  storedSsh,
  targetText,
} from './targets.js';

/** A person or group who may approve: any one member of a group counts as one approval. */
export interface Approver {
  type: 'user' | 'group';
  id: string;
  name: string;
}

/** When a request is approved without anyone: every condition given must hold. */
export interface AutoApprove {
  /** seconds: requests for at most this long */
  maxDuration?: number;
  /** requesters who are members of one of these groups */
  requesterGroups?: Array<{ id: string; name: string }>;
  /** requests that name a ticket */
  withTicket?: boolean;
}

export interface ActivationRules {
  /** seconds: the longest one activation may last */
  maxDuration: number;
  requireJustification: boolean;
  requireTicket: boolean;
  /** the requester's sign-in must include a second factor */
  requireMfa: boolean;
  /** empty: no approval needed */
  approvers: Approver[];
  /** N of the approvers must approve (distinct people) */
  approvalsRequired: number;
  autoApprove: AutoApprove | null;
}

export interface Eligibility extends ActivationRules {
  id: string;
  principalType: 'group' | 'user';
  principalId: string;
  /** the group's display name or the user's userName (as the directory has it now) */
  principalName?: string;
  /** what it is for (0024); accountId and roleName hold the kind's two parts (see migration 0024) */
  kind: PimTargetKind;
  accountId: string;
  roleName: string;
  /** aws:<account>/<role>, aws:<account>/permission-set/<name>, group:<name>, ssh:<login>@<hosts> */
  target: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

/** The longest activation Ferry allows, whatever a rule says: IAM's own session ceiling. */
export const MAX_ACTIVATION_SECONDS = 12 * 3600;
/** STS issues nothing shorter: an activation shorter than this could not be used. */
export const MIN_ACTIVATION_SECONDS = 900;

const fromRow = (r: PimEligibilitiesTable): Eligibility => ({
  id: r.id,
  principalType: r.principal_type,
  principalId: r.principal_id,
  kind: r.target_kind ?? 'aws-role',
  accountId: r.account_id,
  roleName: r.role_name,
  target: targetText(storedOf(r)),
  maxDuration: r.max_duration,
  requireJustification: r.require_justification === 1,
  requireTicket: r.require_ticket === 1,
  requireMfa: r.require_mfa === 1,
  approvers: JSON.parse(r.approvers) as Approver[],
  approvalsRequired: r.approvals_required,
  autoApprove: r.auto_approve ? (JSON.parse(r.auto_approve) as AutoApprove) : null,
  createdAt: r.created_at,
  createdBy: r.created_by,
  updatedAt: r.updated_at,
});

/** The stored target of an eligibility or activation row. */
export const storedOf = (r: {
  target_kind?: PimTargetKind;
  account_id: string;
  role_name: string;
}): StoredTarget => ({ kind: r.target_kind ?? 'aws-role', accountId: r.account_id, roleName: r.role_name });

/**
 * Checks, before an eligibility for a permission set is stored, what only AWS knows: that the
 * permission set exists in Identity Center and its SessionDuration does not exceed the eligibility's
 * maxDuration (decision 0029). Wired by app/ from aws/identity-center.
 */
export type PermissionSetCheck = (q: {
  accountId: string;
  name: string;
  maxDuration: number;
}) => Promise<void>;

export interface EligibilitiesOptions {
  checkPermissionSet?: PermissionSetCheck;
  /**
   * AWS Organizations as last discovered (access/organization.ts): an eligibility for a permission set
   * may name an OU, and covers the accounts in it and below at the moment of each activation.
   */
  organization?: {
    unit(ref: string): Promise<{ id: string; path: string } | null>;
    ancestorsOf(accountId: string): Promise<Array<{ id: string; path: string }>>;
  };
}

export function checkRules(rules: ActivationRules): void {
  if (
    !Number.isInteger(rules.maxDuration) ||
    rules.maxDuration < MIN_ACTIVATION_SECONDS ||
    rules.maxDuration > MAX_ACTIVATION_SECONDS
  )
    throw new InvalidInput(
      `maxDuration must be between ${MIN_ACTIVATION_SECONDS} and ${MAX_ACTIVATION_SECONDS} seconds`,
      'maxDuration',
    );
  if (rules.approvers.length === 0 && rules.approvalsRequired !== 0)
    throw new InvalidInput('approvalsRequired needs approvers', 'approvalsRequired');
  if (
    rules.approvers.length > 0 &&
    (rules.approvalsRequired < 1 || !Number.isInteger(rules.approvalsRequired))
  )
    throw new InvalidInput(
      'approvalsRequired must be at least 1 when approvers are named',
      'approvalsRequired',
    );
  // Users named one by one bound how many distinct people can approve; a group may hold any number.
  const onlyUsers = rules.approvers.every((a) => a.type === 'user');
  if (onlyUsers && rules.approvalsRequired > rules.approvers.length)
    throw new InvalidInput(
      `approvalsRequired (${rules.approvalsRequired}) exceeds the ${rules.approvers.length} approver(s) named`,
      'approvalsRequired',
    );
}

/** Who may activate which AWS role, and under which rules: group or user → (account, role). */
export class Eligibilities {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly accounts: AwsAccounts,
    private readonly options: EligibilitiesOptions = {},
  ) {}

  async list(filter: { principal?: { type: 'group' | 'user'; id: string } } = {}): Promise<Eligibility[]> {
    let q = this.store.db.selectFrom('pim_eligibilities').selectAll();
    if (filter.principal)
      q = q
        .where('principal_type', '=', filter.principal.type)
        .where('principal_id', '=', filter.principal.id);
    const rows = await q.orderBy('account_id').orderBy('role_name').orderBy('created_at').execute();
    return this.named(rows.map(fromRow));
  }

  /** Adds the principals' names: two lookups, whatever the number of eligibilities. */
  private async named(list: Eligibility[]): Promise<Eligibility[]> {
    const ids = (type: 'group' | 'user') => [
      ...new Set(list.filter((e) => e.principalType === type).map((e) => e.principalId)),
    ];
    const names = new Map<string, string>();
    const groupIds = ids('group');
    const userIds = ids('user');
    if (groupIds.length)
      for (const g of await this.store.db
        .selectFrom('groups')
        .select(['id', 'display_name'])
        .where('id', 'in', groupIds)
        .execute())
        names.set(g.id, g.display_name);
    if (userIds.length)
      for (const u of await this.store.db
        .selectFrom('users')
        .select(['id', 'user_name'])
        .where('id', 'in', userIds)
        .execute())
        names.set(u.id, u.user_name);
    return list.map((e) =>
      names.has(e.principalId) ? { ...e, principalName: names.get(e.principalId)! } : e,
    );
  }

  async get(id: string): Promise<Eligibility> {
    const row = await this.store.db
      .selectFrom('pim_eligibilities')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFound('eligibility', id);
    return fromRow(row);
  }

  /**
   * Whether an eligibility covers a (resolved) target: the same target, or, for a permission set, one
   * in an OU that holds the target's account now (Organizations as last discovered).
   */
  async covers(e: Eligibility, stored: StoredTarget): Promise<boolean> {
    if (e.kind !== stored.kind) return false;
    // a group's label may be stale: its id (in accountId) decides
    if (stored.kind === 'group') return e.accountId === stored.accountId;
    if (e.roleName !== stored.roleName) return false;
    if (e.accountId === stored.accountId) return true;
    if (stored.kind !== 'permission-set' || !e.accountId.startsWith(OU_PREFIX)) return false;
    const ou = e.accountId.slice(OU_PREFIX.length);
    const ancestors = (await this.options.organization?.ancestorsOf(stored.accountId)) ?? [];
    return ancestors.some((u) => u.id === ou);
  }

  /** What a person may activate: their own eligibilities and their groups'. */
  async forPrincipal(userId: string, groupIds: string[]): Promise<Eligibility[]> {
    const rows = await this.store.db
      .selectFrom('pim_eligibilities')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', userId)]),
          ...(groupIds.length > 0
            ? [eb.and([eb('principal_type', '=', 'group'), eb('principal_id', 'in', groupIds)])]
            : []),
        ]),
      )
      .orderBy('account_id')
      .orderBy('role_name')
      .execute();
    return this.named(rows.map(fromRow));
  }

  /** Creates or replaces the rules of one eligibility (principal → account/role); idempotent. */
  async set(
    ctx: AuditContext,
    principal: { type: 'group' | 'user'; id: string; name: string },
    accountRef: string,
    roleName: string,
    rules: ActivationRules,
  ): Promise<{ eligibility: Eligibility; change: 'created' | 'updated' | 'unchanged' }> {
    return this.setTarget(ctx, principal, { kind: 'aws-role', account: accountRef, role: roleName }, rules);
  }

  /**
   * Resolves a target as written (or parsed) to what is stored: the account and role must be
   * registered, the group must exist; a permission set is checked against Identity Center.
   */
  async resolveTarget(input: string | PimTargetInput): Promise<StoredTarget> {
    const t = typeof input === 'string' ? parsePimTarget(input) : input;
    switch (t.kind) {
      case 'aws-role': {
        // an AWS role, or an admin role on the pseudo-account `ferry`
        const { accountId, roleName } = await pimTargetOf(this.accounts, t.account, t.role);
        return { kind: 'aws-role', accountId, roleName };
      }
      case 'permission-set': {
        if (t.ou) {
          const ref = /^(ou-|r-)/.test(t.account) || t.account.startsWith('/') ? t.account : `/${t.account}`;
          const unit = await this.options.organization?.unit(ref);
          if (!unit)
            throw new NotFound('organizational unit', `${t.account} (run \`ferry aws discover\` first)`);
          return storedPermissionSet(`${OU_PREFIX}${unit.id}`, t.name);
        }
        const account = await this.accounts.get(t.account);
        return storedPermissionSet(account.id, t.name);
      }
      case 'group': {
        const q = this.store.db.selectFrom('groups').select(['id', 'display_name']);
        const row =
          (await q.where('id', '=', t.group.toLowerCase()).executeTakeFirst()) ??
          (await q.where('display_name_key', '=', t.group.toLowerCase()).executeTakeFirst());
        if (!row) throw new NotFound('group', t.group);
        return storedGroup(row.id, row.display_name);
      }
      case 'ssh':
        return storedSsh(t.hosts, t.login);
    }
  }

  /** Creates or replaces the rules of one eligibility (principal → any target kind); idempotent. */
  async setTarget(
    ctx: AuditContext,
    principal: { type: 'group' | 'user'; id: string; name: string },
    target: string | PimTargetInput,
    rules: ActivationRules,
  ): Promise<{ eligibility: Eligibility; change: 'created' | 'updated' | 'unchanged' }> {
    checkRules(rules);
    const stored = await this.resolveTarget(target);
    if (stored.kind === 'group' && principal.type === 'group' && `group:${principal.id}` === stored.accountId)
      throw new InvalidInput('a group cannot be eligible for membership of itself', 'target');
    if (stored.kind === 'permission-set')
      await this.options.checkPermissionSet?.({
        accountId: stored.accountId,
        name: stored.roleName.slice('permission-set/'.length),
        maxDuration: rules.maxDuration,
      });
    const account = { id: stored.accountId };
    const role = { name: stored.roleName };
    const now = iso(this.clock.now());
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('pim_eligibilities')
        .selectAll()
        .where('principal_type', '=', principal.type)
        .where('principal_id', '=', principal.id)
        .where('account_id', '=', account.id)
        // a group's label (its name when granted) may be stale: the group id in account_id decides
        .$if(stored.kind !== 'group', (q) => q.where('role_name', '=', role.name))
        .executeTakeFirst();
      const values = {
        max_duration: rules.maxDuration,
        require_justification: rules.requireJustification ? 1 : 0,
        require_ticket: rules.requireTicket ? 1 : 0,
        require_mfa: rules.requireMfa ? 1 : 0,
        approvers: JSON.stringify(rules.approvers),
        approvals_required: rules.approvalsRequired,
        auto_approve: rules.autoApprove ? JSON.stringify(rules.autoApprove) : null,
      };
      let row: PimEligibilitiesTable;
      let change: 'created' | 'updated' | 'unchanged';
      if (existing) {
        const same = (Object.keys(values) as Array<keyof typeof values>).every(
          (k) => existing[k] === values[k],
        );
        if (same) return { eligibility: fromRow(existing), change: 'unchanged' as const };
        row = { ...existing, ...values, updated_at: now };
        await trx
          .updateTable('pim_eligibilities')
          .set({ ...values, updated_at: now })
          .where('id', '=', existing.id)
          .execute();
        change = 'updated';
      } else {
        row = {
          id: randomUUID(),
          principal_type: principal.type,
          principal_id: principal.id,
          account_id: account.id,
          role_name: role.name,
          target_kind: stored.kind,
          ...values,
          created_at: now,
          created_by: actorName(ctx.actor),
          updated_at: now,
        };
        await trx.insertInto('pim_eligibilities').values(row).execute();
        change = 'created';
      }
      const eligibility = fromRow(row);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: change === 'created' ? 'pim.eligibility.added' : 'pim.eligibility.updated',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${principal.type}:${principal.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { eligibilityId: row.id, target: eligibility.target, rules: rulesOf(eligibility) },
      });
      return { eligibility, change };
    });
  }

  async remove(ctx: AuditContext, id: string): Promise<Eligibility> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('pim_eligibilities')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new NotFound('eligibility', id);
      await trx.deleteFrom('pim_eligibilities').where('id', '=', id).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'pim.eligibility.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `${row.principal_type}:${row.principal_id}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { eligibilityId: id, target: targetText(storedOf(row)) },
      });
      return fromRow(row);
    });
  }

  /** Drops the eligibilities of a deleted user or group (an outbox handler; idempotent). */
  async removeForPrincipal(type: 'group' | 'user', id: string): Promise<number> {
    const res = await this.store.db
      .deleteFrom('pim_eligibilities')
      .where('principal_type', '=', type)
      .where('principal_id', '=', id)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

export function rulesOf(e: ActivationRules): ActivationRules {
  return {
    maxDuration: e.maxDuration,
    requireJustification: e.requireJustification,
    requireTicket: e.requireTicket,
    requireMfa: e.requireMfa,
    approvers: e.approvers,
    approvalsRequired: e.approvalsRequired,
    autoApprove: e.autoApprove,
  };
}
