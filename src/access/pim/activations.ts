import { randomUUID } from 'node:crypto';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { type Actor, type AuditContext, actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { hasMfa } from '../../authn/amr.js';
import { addMs, type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import { isUniqueViolation } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import { enqueueEvent } from '../../store/outbox.js';
import type { Database, PimActivationsTable } from '../../store/schema.js';
import { ADMIN_ACCOUNT } from '../admin-roles.js';
import type { AwsAccounts } from '../aws-accounts.js';
import {
  type Approver,
  type Eligibilities,
  type Eligibility,
  MAX_ACTIVATION_SECONDS,
  MIN_ACTIVATION_SECONDS,
  storedOf,
} from './eligibilities.js';
import { type ActivationEvent, type ActivationState, FINAL_STATES, nextState } from './lifecycle.js';
import {
  OU_PREFIX,
  openSessionsNote,
  type PimTargetKind,
  type StoredTarget,
  targetParts,
  targetText,
} from './targets.js';

/** The person acting: requester, approver or the one ending an activation. */
export interface PimPerson {
  kind: 'user' | 'workload';
  id: string;
  userName: string;
  active: boolean;
  groups: Array<{ id: string; name: string }>;
  amr: string[];
}

export interface ActivationRequest {
  /** an IAM role: account and role (the form before 0024) ... */
  account?: string;
  role?: string;
  /** ... or any target kind as written: aws:…/permission-set/…, group:…, ssh:login@host */
  target?: string;
  /** seconds */
  durationSeconds: number;
  justification?: string | null;
  ticket?: string | null;
}

export interface Approval {
  userId: string;
  userName: string;
  at: string;
  reason: string | null;
}

/** One request to activate an eligible role, as the API and CLI show it. */
export interface Activation {
  id: string;
  state: ActivationState;
  userId: string;
  userName: string;
  /** what was activated (0024); accountId and roleName hold the kind's two parts (migration 0024) */
  kind: PimTargetKind;
  accountId: string;
  roleName: string;
  target: string;
  /**
   * The activation's effect outside Ferry's own tables (an Identity Center account assignment, a group
   * membership), as the outbox handlers last recorded it; null for kinds decide() alone carries out.
   */
  effect: { state: string; detail: string | null; at: string | null } | null;
  /** what happens to sessions already open when the activation ends, said plainly */
  openSessions: string;
  eligibilityId: string;
  durationSeconds: number;
  justification: string | null;
  ticket: string | null;
  approvers: Approver[];
  approvalsRequired: number;
  approvals: Approval[];
  requestedAt: string;
  /** a request nobody answered by then lapses */
  answerBy: string;
  activatedAt: string | null;
  expiresAt: string | null;
  endedAt: string | null;
  endedBy: string | null;
  endReason: string | null;
  version: number;
}

/** A live activation as decide() reads it. */
export interface ActiveGrant {
  id: string;
  accountId: string;
  roleName: string;
  expiresAt: string;
  /** seconds until it ends */
  secondsLeft: number;
}

/** A row of activeGrantsQuery. */
export interface ActiveGrantRow {
  id: string;
  account_id: string;
  role_name: string;
  expires_at: string | null;
}

/**
 * A person's live activations of AWS roles, while still eligible through the same eligibility (as the
 * person or through a membership that has not ended). Asked by every decide() for an AWS role, nearly
 * always to find nothing: written as SQL text, which costs a fraction of building the same query node
 * by node (issue 16, decide() latency); also embedded as it is in decide()'s single PostgreSQL read.
 */
export function activeGrantsQuery(userId: string, now: Date): RawBuilder<ActiveGrantRow> {
  const at = iso(now);
  return sql<ActiveGrantRow>`select a.id, a.account_id, a.role_name, a.expires_at
      from pim_activations as a inner join pim_eligibilities as e on e.id = a.eligibility_id
      where a.user_id = ${userId} and a.state = 'active' and a.target_kind = 'aws-role' and a.expires_at > ${at}
        and ((e.principal_type = 'user' and e.principal_id = ${userId})
          or (e.principal_type = 'group' and e.principal_id in (select group_id from group_members
            where user_id = ${userId} and (expires_at is null or expires_at > ${at}))))`;
}

export function activeGrantOf(r: ActiveGrantRow, now: Date): ActiveGrant {
  return {
    id: r.id,
    accountId: r.account_id,
    roleName: r.role_name,
    expiresAt: r.expires_at!,
    secondsLeft: Math.floor((new Date(r.expires_at!).getTime() - now.getTime()) / 1000),
  };
}

/** A live activation of a target other than an IAM role (permission set, group, SSH login). */
export interface ActiveTarget extends StoredTarget {
  id: string;
  target: string;
  expiresAt: string;
  /** seconds until it ends */
  secondsLeft: number;
}

/** Kinds whose activation changes something outside decide(): an outbox handler carries it out. */
const HAS_EFFECT: ReadonlySet<PimTargetKind> = new Set(['permission-set', 'group']);

/**
 * Checks what the request needs beyond Ferry's own tables before anything is written (e.g. that the
 * person already has an Identity Center user for a permission set); throws a typed error. Wired by app/.
 */
export type ActivationPrecheck = (target: StoredTarget, person: PimPerson) => Promise<void>;

/** The requester's sign-in lacks what the rule asks: sign in again with a second factor. */
export class StepUpRequired extends Error {
  readonly require = ['mfa'] as const;
  constructor(readonly target: string) {
    super(`activating ${target} needs a sign-in with a second factor (one-time code or security key)`);
    this.name = 'StepUpRequired';
  }
}

/** The person may not do this to this activation (not eligible, not an approver, their own request). */
export class PimForbidden extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PimForbidden';
  }
}

/** Another change won the row: reload and try again. */
class StaleActivation extends Error {}

/** Called in the transition's transaction: webhooks go out through the outbox. */
export type ActivationNotifier = (
  trx: Kysely<Database>,
  activation: Activation,
  change: string,
  actor: Actor,
  reason: string | null,
) => Promise<void>;

export interface ActivationsOptions {
  /** ms: a request nobody answers within this lapses */
  answerWithin: number;
  notify?: ActivationNotifier;
  precheck?: ActivationPrecheck;
}

const toView = (r: PimActivationsTable): Activation => ({
  id: r.id,
  state: r.state as ActivationState,
  userId: r.user_id,
  userName: r.user_name,
  kind: r.target_kind ?? 'aws-role',
  accountId: r.account_id,
  roleName: r.role_name,
  target: targetText(storedOf(r)),
  effect: r.effect_state
    ? { state: r.effect_state, detail: r.effect_detail ?? null, at: r.effect_at ?? null }
    : null,
  openSessions: openSessionsNote(r.target_kind ?? 'aws-role'),
  eligibilityId: r.eligibility_id,
  durationSeconds: r.duration,
  justification: r.justification,
  ticket: r.ticket,
  approvers: JSON.parse(r.approvers) as Approver[],
  approvalsRequired: r.approvals_required,
  approvals: JSON.parse(r.approvals) as Approval[],
  requestedAt: r.requested_at,
  answerBy: r.answer_by,
  activatedAt: r.activated_at,
  expiresAt: r.expires_at,
  endedAt: r.ended_at,
  endedBy: r.ended_by,
  endReason: r.end_reason,
  version: r.version,
});

const OPEN_STATES: ActivationState[] = ['requested', 'approved', 'active'];
const autoApprover = systemActor('pim-auto-approval');
const scheduler = systemActor('pim-scheduler');

/** Whether this person is one of the approvers the rule names (directly or through a group). */
export function isApprover(approvers: Approver[], person: Pick<PimPerson, 'id' | 'groups'>): boolean {
  const groups = new Set(person.groups.map((g) => g.id));
  return approvers.some((a) => (a.type === 'user' ? a.id === person.id : groups.has(a.id)));
}

/**
 * Activations of eligible roles: request, approve (N of M), deny, cancel, revoke, and the scheduler's
 * lapse and expiry. Every change is one conditional UPDATE on the row's version, its audit event and
 * its outbox events, in one transaction.
 */
export class Activations {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    // kept for callers; targets are resolved through the eligibilities since 0024
    readonly accounts: AwsAccounts,
    private readonly eligibilities: Eligibilities,
    private readonly options: ActivationsOptions,
  ) {}

  async get(id: string): Promise<Activation> {
    return toView(await this.row(this.store.db, id));
  }

  async list(
    filter: { userId?: string; states?: ActivationState[]; limit?: number } = {},
  ): Promise<Activation[]> {
    let q = this.store.db.selectFrom('pim_activations').selectAll();
    if (filter.userId) q = q.where('user_id', '=', filter.userId);
    if (filter.states?.length) q = q.where('state', 'in', filter.states);
    const rows = await q
      .orderBy('requested_at', 'desc')
      .orderBy('id')
      .limit(filter.limit ?? 500)
      .execute();
    return rows.map(toView);
  }

  /** Requests waiting for this person's approval (never their own). */
  async pendingFor(person: PimPerson): Promise<Activation[]> {
    const open = await this.list({ states: ['requested'] });
    return open.filter(
      (a) =>
        a.userId !== person.id &&
        isApprover(a.approvers, person) &&
        !a.approvals.some((x) => x.userId === person.id),
    );
  }

  /**
   * What decide() adds to a person's standing assignments: their live activations, and only while the
   * person is still eligible through the same eligibility (removed from the group, or the eligibility
   * removed by an admin or an access review: issuance stops at once).
   */
  async activeFor(userId: string): Promise<ActiveGrant[]> {
    const now = this.clock.now();
    const { rows } = await activeGrantsQuery(userId, now).execute(this.store.db);
    return rows.map((r) => activeGrantOf(r, now));
  }

  /**
   * Live activations of the other kinds (0024), under the same rule as activeFor: only until
   * expiresAt and while the person is still eligible through the same eligibility.
   */
  async activeTargetsFor(userId: string, kinds?: PimTargetKind[]): Promise<ActiveTarget[]> {
    const now = this.clock.now();
    const db = this.store.db;
    const groups = db
      .selectFrom('group_members')
      .select('group_id')
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', iso(now))]));
    const rows = await db
      .selectFrom('pim_activations as a')
      .innerJoin('pim_eligibilities as e', 'e.id', 'a.eligibility_id')
      .select(['a.id', 'a.target_kind', 'a.account_id', 'a.role_name', 'a.expires_at'])
      .where('a.user_id', '=', userId)
      .where('a.state', '=', 'active')
      .where('a.target_kind', 'in', kinds?.length ? kinds : ['permission-set', 'group', 'ssh'])
      .where('a.expires_at', '>', iso(now))
      .where((eb) =>
        eb.or([
          eb.and([eb('e.principal_type', '=', 'user'), eb('e.principal_id', '=', userId)]),
          eb.and([eb('e.principal_type', '=', 'group'), eb('e.principal_id', 'in', groups)]),
        ]),
      )
      .execute();
    return rows.map((r) => {
      const stored = storedOf(r);
      return {
        ...stored,
        id: r.id,
        target: targetText(stored),
        expiresAt: r.expires_at!,
        secondsLeft: Math.floor((new Date(r.expires_at!).getTime() - now.getTime()) / 1000),
      };
    });
  }

  /**
   * What an outbox handler found when it carried out an activation's effect: its status (visible in
   * the activation), and an audit event in the same transaction. `onlyFrom` keeps a late answer from
   * overwriting a newer one (an assignment confirmed after the activation already ended). False when
   * the status was not in `onlyFrom`.
   */
  async recordEffect(
    id: string,
    effect: { state: string; detail: string | null; onlyFrom?: string[] },
    audit?: { type: string; outcome: 'success' | 'failure'; data: Record<string, unknown> },
  ): Promise<boolean> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await this.row(trx, id);
      if (effect.onlyFrom && !effect.onlyFrom.includes(row.effect_state ?? '')) return false;
      const now = iso(this.clock.now());
      await trx
        .updateTable('pim_activations')
        .set({ effect_state: effect.state, effect_detail: effect.detail, effect_at: now })
        .where('id', '=', id)
        .execute();
      if (audit)
        await appendAudit(trx, this.store.engine, this.clock, {
          type: `pim.activation.${audit.type}`,
          outcome: audit.outcome,
          actor: systemActor('pim-effects'),
          subject: row.user_name,
          data: { activationId: id, target: targetText(storedOf(row)), ...audit.data },
        });
      return true;
    });
  }

  /** A person asks to activate a role they are eligible for. */
  async request(ctx: AuditContext, person: PimPerson, req: ActivationRequest): Promise<Activation> {
    if (person.kind !== 'user' || !person.active)
      throw new PimForbidden('only an active directory user may request an activation');
    if (!req.target && (!req.account || !req.role))
      throw new InvalidInput('name the target, or the account and role', 'target');
    const stored = await this.eligibilities.resolveTarget(
      req.target ?? { kind: 'aws-role', account: req.account!, role: req.role! },
    );
    const target = targetText(stored);
    if (stored.kind === 'permission-set' && stored.accountId.startsWith(OU_PREFIX))
      throw new InvalidInput(
        'an activation names one account: aws:<account>/permission-set/<name> (an eligibility may name an OU)',
        'target',
      );
    const mine = await this.eligibilities.forPrincipal(
      person.id,
      person.groups.map((g) => g.id),
    );
    // An OU eligibility covers the account if Organizations (as last discovered) has it there now.
    const candidates = [];
    for (const e of mine) if (await this.eligibilities.covers(e, stored)) candidates.push(e);
    if (candidates.length === 0) throw new PimForbidden(`${person.userName} is not eligible for ${target}`);
    const duration = req.durationSeconds;
    if (!Number.isInteger(duration) || duration < MIN_ACTIVATION_SECONDS || duration > MAX_ACTIVATION_SECONDS)
      throw new InvalidInput(
        `duration must be between ${MIN_ACTIVATION_SECONDS} and ${MAX_ACTIVATION_SECONDS} seconds`,
        'durationSeconds',
      );
    // Several eligibilities may apply (own and a group's): the first whose rules this request meets,
    // preferring one that needs no approval, then the longest.
    const ordered = [...candidates].sort(
      (a, b) => a.approvers.length - b.approvers.length || b.maxDuration - a.maxDuration,
    );
    const justification = req.justification?.trim() || null;
    const ticket = req.ticket?.trim() || null;
    const problems = ordered.map((e) => this.unmet(e, duration, justification, ticket));
    const index = problems.indexOf(null);
    if (index < 0) {
      const first = problems[0]!;
      throw new InvalidInput(first.message, first.field);
    }
    const rule = ordered[index]!;
    if (rule.requireMfa && !hasMfa(person.amr)) throw new StepUpRequired(target);
    await this.options.precheck?.(stored, person);
    // the account asked for (an OU eligibility's is the OU); a group's id and label as the rule has them
    const account = { id: stored.kind === 'permission-set' ? stored.accountId : rule.accountId };
    const role = { name: rule.roleName };

    return this.store.db
      .transaction()
      .execute(async (trx) => {
        const open = await trx
          .selectFrom('pim_activations')
          .select(['id', 'state'])
          .where('user_id', '=', person.id)
          .where('account_id', '=', account.id)
          .where('role_name', '=', role.name)
          .where('state', 'in', OPEN_STATES)
          .executeTakeFirst();
        if (open)
          throw new Conflict(
            `${person.userName} already has activation ${open.id} (${open.state}) for ${target}`,
          );
        const now = this.clock.now();
        let row: PimActivationsTable = {
          id: randomUUID(),
          eligibility_id: rule.id,
          user_id: person.id,
          user_name: person.userName,
          account_id: account.id,
          role_name: role.name,
          target_kind: stored.kind,
          state: 'requested',
          version: 1,
          duration,
          justification,
          ticket,
          approvers: JSON.stringify(rule.approvers),
          approvals_required: rule.approvalsRequired,
          approvals: '[]',
          requested_at: iso(now),
          answer_by: iso(addMs(now, this.options.answerWithin)),
          activated_at: null,
          expires_at: null,
          ended_at: null,
          ended_by: null,
          end_reason: null,
          updated_at: iso(now),
        };
        await trx.insertInto('pim_activations').values(row).execute();
        await this.record(trx, ctx, row, null, 'requested', justification);
        const auto = this.autoApproval(rule, person, duration, ticket);
        if (auto) {
          const actx = { ...ctx, actor: autoApprover };
          row = await this.apply(trx, actx, row, 'approve', auto, {});
          row = await this.activate(trx, actx, row);
        }
        return toView(row);
      })
      .catch((err: unknown) => {
        // A concurrent request for the same role won (the partial unique index of open activations).
        if (isUniqueViolation(err))
          throw new Conflict(`${person.userName} already has an open activation for ${target}`);
        throw err;
      });
  }

  /** One approver's yes; the request is approved (and activated) when N distinct approvers said yes. */
  async approve(
    ctx: AuditContext,
    approver: PimPerson,
    id: string,
    reason: string | null,
  ): Promise<Activation> {
    return this.mutate(id, async (trx, row) => {
      this.mayAnswer(row, approver, 'approve');
      const approvals = JSON.parse(row.approvals) as Approval[];
      if (approvals.some((a) => a.userId === approver.id))
        throw new Conflict(`${approver.userName} has already approved activation ${id}`);
      approvals.push({ userId: approver.id, userName: approver.userName, at: iso(this.clock.now()), reason });
      const patch = { approvals: JSON.stringify(approvals) };
      if (approvals.length < row.approvals_required) return this.apply(trx, ctx, row, null, reason, patch);
      const approved = await this.apply(trx, ctx, row, 'approve', reason, patch);
      return this.activate(trx, ctx, approved);
    });
  }

  async deny(ctx: AuditContext, approver: PimPerson, id: string, reason: string | null): Promise<Activation> {
    return this.mutate(id, (trx, row) => {
      this.mayAnswer(row, approver, 'deny');
      return this.apply(trx, ctx, row, 'deny', reason, this.ending(ctx, reason));
    });
  }

  /** The requester withdraws a request not yet active. */
  async cancel(ctx: AuditContext, person: PimPerson, id: string, reason: string | null): Promise<Activation> {
    return this.mutate(id, (trx, row) => {
      if (row.user_id !== person.id)
        throw new PimForbidden(`only ${row.user_name} may cancel activation ${id}`);
      return this.apply(trx, ctx, row, 'cancel', reason, this.ending(ctx, reason));
    });
  }

  /**
   * Ends an active activation early: the person themself, one of its approvers, or an admin token
   * (`person` null). Their AWS sessions on the role are revoked through the outbox.
   */
  async revoke(
    ctx: AuditContext,
    person: PimPerson | null,
    id: string,
    reason: string | null,
  ): Promise<Activation> {
    return this.mutate(id, (trx, row) => {
      if (person && row.user_id !== person.id && !isApprover(JSON.parse(row.approvers) as Approver[], person))
        throw new PimForbidden(`only ${row.user_name}, an approver or an admin may revoke activation ${id}`);
      return this.apply(trx, ctx, row, 'revoke', reason, this.ending(ctx, reason));
    });
  }

  /**
   * The scheduler: expires activations whose time is up and lapses requests nobody answered. Safe to run
   * on every instance at once: rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, and every
   * change is conditional on the row's version, so each activation ends exactly once.
   */
  async runDue(limit = 100): Promise<{ expired: number; lapsed: number }> {
    const expired = await this.endDue('expire', 'active', 'expires_at', limit);
    const lapsed = await this.endDue('lapse', 'requested', 'answer_by', limit);
    return { expired, lapsed };
  }

  private async endDue(
    event: 'expire' | 'lapse',
    state: ActivationState,
    column: 'expires_at' | 'answer_by',
    limit: number,
  ): Promise<number> {
    const ctx: AuditContext = { actor: scheduler };
    const reason =
      event === 'expire' ? 'the activation reached its end' : 'nobody answered the request in time';
    return this.store.db.transaction().execute(async (trx) => {
      let q = trx
        .selectFrom('pim_activations')
        .selectAll()
        .where('state', '=', state)
        .where(column, '<=', iso(this.clock.now()))
        .orderBy(column)
        .limit(limit);
      if (this.store.engine === 'postgres') q = q.forUpdate().skipLocked();
      let done = 0;
      for (const row of await q.execute()) {
        try {
          await this.apply(trx, ctx, row, event, reason, this.ending(ctx, reason));
          done += 1;
        } catch (err) {
          // Another instance (or a person) changed it first: theirs is the one transition.
          if (!(err instanceof StaleActivation)) throw err;
        }
      }
      return done;
    });
  }

  private ending(ctx: AuditContext, reason: string | null) {
    return { ended_at: iso(this.clock.now()), ended_by: actorName(ctx.actor), end_reason: reason };
  }

  private activate(trx: Kysely<Database>, ctx: AuditContext, row: PimActivationsTable) {
    const now = this.clock.now();
    return this.apply(trx, ctx, row, 'activate', null, {
      activated_at: iso(now),
      expires_at: iso(addMs(now, row.duration * 1000)),
      // an outbox handler carries the effect out and records what it found
      ...(HAS_EFFECT.has(row.target_kind ?? 'aws-role')
        ? { effect_state: 'pending', effect_detail: null, effect_at: iso(now) }
        : {}),
    });
  }

  private mayAnswer(row: PimActivationsTable, approver: PimPerson, what: 'approve' | 'deny'): void {
    // The state is checked first: answering a closed request is a conflict whoever asks.
    nextState(row.id, row.state as ActivationState, what);
    if (row.user_id === approver.id)
      throw new PimForbidden(`nobody may ${what} their own request (activation ${row.id})`);
    if (!isApprover(JSON.parse(row.approvers) as Approver[], approver))
      throw new PimForbidden(`${approver.userName} is not an approver of activation ${row.id}`);
  }

  private unmet(
    e: Eligibility,
    duration: number,
    justification: string | null,
    ticket: string | null,
  ): { field: string; message: string } | null {
    if (duration > e.maxDuration)
      return {
        field: 'durationSeconds',
        message: `${e.target} may be activated for at most ${e.maxDuration} seconds (asked ${duration})`,
      };
    if (e.requireJustification && !justification)
      return { field: 'justification', message: `activating ${e.target} needs a justification (--reason)` };
    if (e.requireTicket && !ticket)
      return { field: 'ticket', message: `activating ${e.target} needs a ticket number (--ticket)` };
    return null;
  }

  /** Why the request needs nobody's approval, or null when it does. */
  private autoApproval(
    e: Eligibility,
    person: PimPerson,
    duration: number,
    ticket: string | null,
  ): string | null {
    if (e.approvers.length === 0) return 'no approval required';
    const a = e.autoApprove;
    if (!a) return null;
    const conditions: string[] = [];
    if (a.maxDuration !== undefined) {
      if (duration > a.maxDuration) return null;
      conditions.push(`duration at most ${a.maxDuration}s`);
    }
    if (a.requesterGroups?.length) {
      const mine = new Set(person.groups.map((g) => g.id));
      const hit = a.requesterGroups.find((g) => mine.has(g.id));
      if (!hit) return null;
      conditions.push(`member of ${hit.name}`);
    }
    if (a.withTicket) {
      if (!ticket) return null;
      conditions.push('ticket given');
    }
    return conditions.length > 0 ? `auto-approved: ${conditions.join(', ')}` : null;
  }

  /** Reads, checks and changes one activation; a concurrent change makes it start over on the new row. */
  private async mutate(
    id: string,
    change: (trx: Kysely<Database>, row: PimActivationsTable) => Promise<PimActivationsTable>,
  ): Promise<Activation> {
    for (let attempt = 0; ; attempt++) {
      try {
        return toView(
          await this.store.db.transaction().execute(async (trx) => change(trx, await this.row(trx, id))),
        );
      } catch (err) {
        if (!(err instanceof StaleActivation) || attempt >= 20) throw err;
      }
    }
  }

  private async row(db: Kysely<Database>, id: string): Promise<PimActivationsTable> {
    const row = await db.selectFrom('pim_activations').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFound('activation', id);
    return row;
  }

  /**
   * One transition (or, with event null, an approval that leaves the state as it is): the UPDATE only
   * matches the version read, so of two concurrent changes exactly one lands.
   */
  private async apply(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: PimActivationsTable,
    event: ActivationEvent | null,
    reason: string | null,
    given: Partial<PimActivationsTable>,
  ): Promise<PimActivationsTable> {
    let patch = given;
    const from = row.state as ActivationState;
    const to = event ? nextState(row.id, from, event) : from;
    const now = iso(this.clock.now());
    const kind = row.target_kind ?? 'aws-role';
    // An effect that began (or may have) is undone when the activation ends; its handler confirms.
    // 'pending': its handler has not started, and will find the activation ended: nothing to undo.
    // 'kept': the person held it anyway, by something this activation did not make: never undone.
    const ending = (to === 'expired' || to === 'revoked') && HAS_EFFECT.has(kind) && !!row.effect_state;
    if (ending && row.effect_state === 'pending')
      patch = {
        ...patch,
        effect_state: 'removed',
        effect_detail: `ended before it was carried out`,
        effect_at: now,
      };
    // 'removed': undone already (a group membership's end, due at expiresAt, ran before the scheduler).
    const undo =
      ending &&
      row.effect_state !== 'pending' &&
      row.effect_state !== 'kept' &&
      row.effect_state !== 'removed';
    if (undo) patch = { ...patch, effect_state: 'removing', effect_at: now };
    const res = await trx
      .updateTable('pim_activations')
      .set({ ...patch, state: to, version: row.version + 1, updated_at: now })
      .where('id', '=', row.id)
      .where('version', '=', row.version)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new StaleActivation();
    const next: PimActivationsTable = {
      ...row,
      ...patch,
      state: to,
      version: row.version + 1,
      updated_at: now,
    };
    await this.record(trx, ctx, next, from, event ? to : 'approval-recorded', reason);
    if (from !== to && to === 'active') await this.enqueueEffect(trx, next, 'begin');
    if (undo) await this.enqueueEffect(trx, next, 'end');
    if (
      (to === 'expired' || to === 'revoked') &&
      kind === 'aws-role' &&
      // An admin role ends with its activation (decide() runs on every admin call); AWS sessions outlive it.
      next.account_id !== ADMIN_ACCOUNT &&
      !(await this.standingAssignment(trx, next))
    ) {
      await enqueueEvent(trx, this.clock, {
        type: 'aws.sessions-revoke-requested',
        userId: next.user_id,
        userName: next.user_name,
        account: next.account_id,
        role: next.role_name,
        reason: `activation ${next.id} ${to}`,
      });
    }
    return next;
  }

  /** The outbox event that carries out (or undoes) an activation's effect, in the transition's transaction. */
  private async enqueueEffect(
    trx: Kysely<Database>,
    row: PimActivationsTable,
    phase: 'begin' | 'end',
  ): Promise<void> {
    const stored = storedOf(row);
    const parts = targetParts(stored);
    if (stored.kind === 'permission-set')
      await enqueueEvent(trx, this.clock, {
        type: 'pim.account-assignment-requested',
        activationId: row.id,
        action: phase === 'begin' ? 'create' : 'delete',
        userId: row.user_id,
        userName: row.user_name,
        account: parts.account!,
        permissionSet: parts.permissionSet!,
      });
    if (stored.kind === 'group') {
      const membership = {
        type: 'pim.group-membership-requested' as const,
        activationId: row.id,
        groupId: parts.groupId!,
        userId: row.user_id,
        userName: row.user_name,
      };
      await enqueueEvent(trx, this.clock, {
        ...membership,
        action: phase === 'begin' ? 'add' : 'remove',
        expiresAt: phase === 'begin' ? row.expires_at : null,
      });
      // The end is written now, due at expiresAt: the membership (and its SCIM push to Identity Center)
      // goes at the activation's end, not at whichever scheduler tick notices it. decide() stops
      // counting it at expiresAt in any case (the membership row carries it).
      if (phase === 'begin' && row.expires_at)
        await enqueueEvent(
          trx,
          this.clock,
          { ...membership, action: 'remove', expiresAt: null },
          { notBefore: row.expires_at },
        );
    }
  }

  private async record(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: PimActivationsTable,
    from: ActivationState | null,
    change: string,
    reason: string | null,
  ): Promise<void> {
    const view = toView(row);
    await appendAudit(trx, this.store.engine, this.clock, {
      type: `pim.activation.${change}`,
      outcome: 'success',
      actor: ctx.actor,
      subject: row.user_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {
        activationId: row.id,
        target: view.target,
        from,
        to: row.state,
        reason,
        durationSeconds: row.duration,
        ...(row.ticket ? { ticket: row.ticket } : {}),
        ...(row.expires_at && !FINAL_STATES.has(view.state) ? { expiresAt: row.expires_at } : {}),
        approvals: view.approvals.map((a) => a.userName),
      },
    });
    await this.options.notify?.(trx, view, change, ctx.actor, reason);
  }

  /** Ending an activation must not cut sessions the person holds anyway through a standing assignment. */
  private async standingAssignment(trx: Kysely<Database>, row: PimActivationsTable): Promise<boolean> {
    const groups = trx.selectFrom('group_members').select('group_id').where('user_id', '=', row.user_id);
    const hit = await trx
      .selectFrom('assignments')
      .select('id')
      .where('account_id', '=', row.account_id)
      .where('role_name', '=', row.role_name)
      .where((eb) =>
        eb.or([
          eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', row.user_id)]),
          eb.and([eb('principal_type', '=', 'group'), eb('principal_id', 'in', groups)]),
        ]),
      )
      .executeTakeFirst();
    return hit !== undefined;
  }
}
