import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type AuditContext, actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import type { Store } from '../../store/open.js';
import { enqueueEvent } from '../../store/outbox.js';
import type { Database, ReviewCampaignsTable, ReviewItemsTable } from '../../store/schema.js';
import { isApprover, PimForbidden } from '../pim/activations.js';
import type { Approver } from '../pim/eligibilities.js';
import { storedOf } from '../pim/eligibilities.js';
import { targetText } from '../pim/targets.js';

/** What a campaign reviews: members of these groups, and (optionally) every eligible assignment. */
export interface CampaignScope {
  groups: Array<{ id: string; name: string }>;
  eligibilities: boolean;
}

export interface NewCampaign {
  name: string;
  scope: CampaignScope;
  reviewers: Approver[];
  deadline: Date;
  /** at the deadline, remove what nobody reviewed (else it is kept) */
  removeUnreviewed: boolean;
}

export interface ReviewItem {
  id: string;
  kind: 'membership' | 'eligibility';
  label: string;
  groupId: string | null;
  userId: string | null;
  eligibilityId: string | null;
  decision: 'approve' | 'deny' | null;
  decidedBy: string | null;
  decidedAt: string | null;
  reason: string | null;
  outcome: 'kept' | 'removed' | null;
}

export interface Campaign {
  id: string;
  name: string;
  reviewers: Approver[];
  deadline: string;
  removeUnreviewed: boolean;
  state: 'open' | 'closed';
  createdAt: string;
  createdBy: string;
  closedAt: string | null;
  closedBy: string | null;
  progress: { total: number; approved: number; denied: number; unreviewed: number; removed: number };
}

/** The person deciding: a reviewer, never on their own access. */
export interface Reviewer {
  id: string;
  userName: string;
  groups: Array<{ id: string; name: string }>;
}

const itemView = (r: ReviewItemsTable): ReviewItem => ({
  id: r.id,
  kind: r.kind,
  label: r.label,
  groupId: r.group_id,
  userId: r.user_id,
  eligibilityId: r.eligibility_id,
  decision: r.decision,
  decidedBy: r.decided_by,
  decidedAt: r.decided_at,
  reason: r.reason,
  outcome: r.outcome,
});

/**
 * Access reviews: a campaign snapshots the memberships and eligibilities in scope; reviewers approve or
 * deny each; at the deadline (or when an admin closes it) what was denied, and with removeUnreviewed what
 * nobody reviewed, is removed through the outbox. Closing is one conditional update, so it happens once.
 */
export class ReviewCampaigns {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(ctx: AuditContext, input: NewCampaign): Promise<Campaign> {
    if (input.reviewers.length === 0) throw new InvalidInput('name at least one reviewer', 'reviewers');
    if (input.deadline.getTime() <= this.clock.now().getTime())
      throw new InvalidInput('the deadline must be in the future', 'deadline');
    if (input.scope.groups.length === 0 && !input.scope.eligibilities)
      throw new InvalidInput('review at least one group or the eligibilities', 'groups');
    const now = iso(this.clock.now());
    const id = randomUUID();
    await this.store.db.transaction().execute(async (trx) => {
      const row: ReviewCampaignsTable = {
        id,
        name: input.name,
        reviewers: JSON.stringify(input.reviewers),
        deadline: iso(input.deadline),
        remove_unreviewed: input.removeUnreviewed ? 1 : 0,
        state: 'open',
        created_at: now,
        created_by: actorName(ctx.actor),
        closed_at: null,
        closed_by: null,
      };
      await trx.insertInto('review_campaigns').values(row).execute();
      const items: ReviewItemsTable[] = [];
      const blank = { decision: null, decided_by: null, decided_at: null, reason: null, outcome: null };
      if (input.scope.groups.length > 0) {
        const members = await trx
          .selectFrom('group_members')
          .innerJoin('users', 'users.id', 'group_members.user_id')
          .innerJoin('groups', 'groups.id', 'group_members.group_id')
          .select([
            'group_members.group_id',
            'group_members.user_id',
            'users.user_name',
            'groups.display_name',
          ])
          .where(
            'group_members.group_id',
            'in',
            input.scope.groups.map((g) => g.id),
          )
          .orderBy('groups.display_name_key')
          .orderBy('users.user_name_key')
          .execute();
        for (const m of members)
          items.push({
            id: randomUUID(),
            campaign_id: id,
            kind: 'membership',
            group_id: m.group_id,
            user_id: m.user_id,
            eligibility_id: null,
            label: `${m.user_name} in ${m.display_name}`,
            ...blank,
          });
      }
      if (input.scope.eligibilities) {
        const rows = await trx.selectFrom('pim_eligibilities').selectAll().orderBy('account_id').execute();
        const names = new Map<string, string>();
        for (const g of await trx.selectFrom('groups').select(['id', 'display_name']).execute())
          names.set(g.id, g.display_name);
        for (const u of await trx.selectFrom('users').select(['id', 'user_name']).execute())
          names.set(u.id, u.user_name);
        for (const e of rows)
          items.push({
            id: randomUUID(),
            campaign_id: id,
            kind: 'eligibility',
            group_id: e.principal_type === 'group' ? e.principal_id : null,
            user_id: e.principal_type === 'user' ? e.principal_id : null,
            eligibility_id: e.id,
            label: `${e.principal_type} ${names.get(e.principal_id) ?? e.principal_id} eligible for ${targetText(storedOf(e))}`,
            ...blank,
          });
      }
      for (let i = 0; i < items.length; i += 200)
        await trx
          .insertInto('review_items')
          .values(items.slice(i, i + 200))
          .execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'review.campaign.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: input.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          campaignId: id,
          items: items.length,
          deadline: row.deadline,
          removeUnreviewed: input.removeUnreviewed,
          groups: input.scope.groups.map((g) => g.name),
          eligibilities: input.scope.eligibilities,
          reviewers: input.reviewers.map((r) => `${r.type}:${r.name}`),
        },
      });
    });
    return this.get(id);
  }

  async list(): Promise<Campaign[]> {
    const rows = await this.store.db
      .selectFrom('review_campaigns')
      .selectAll()
      .orderBy('created_at', 'desc')
      .execute();
    return Promise.all(rows.map((r) => this.view(this.store.db, r)));
  }

  async get(id: string): Promise<Campaign> {
    return this.view(this.store.db, await this.row(this.store.db, id));
  }

  async items(id: string): Promise<ReviewItem[]> {
    await this.row(this.store.db, id);
    const rows = await this.store.db
      .selectFrom('review_items')
      .selectAll()
      .where('campaign_id', '=', id)
      .orderBy('kind', 'desc')
      .orderBy('label')
      .execute();
    return rows.map(itemView);
  }

  isReviewer(campaign: Campaign, person: Reviewer): boolean {
    return isApprover(campaign.reviewers, person);
  }

  /** A reviewer's decision on one item; may be changed until the campaign closes. */
  async decide(
    ctx: AuditContext,
    person: Reviewer,
    campaignId: string,
    itemId: string,
    decision: 'approve' | 'deny',
    reason: string | null,
  ): Promise<ReviewItem> {
    return this.store.db.transaction().execute(async (trx) => {
      const campaign = await this.row(trx, campaignId);
      if (!isApprover(JSON.parse(campaign.reviewers) as Approver[], person))
        throw new PimForbidden(`${person.userName} is not a reviewer of ${campaign.name}`);
      const item = await trx
        .selectFrom('review_items')
        .selectAll()
        .where('id', '=', itemId)
        .where('campaign_id', '=', campaignId)
        .executeTakeFirst();
      if (!item) throw new NotFound('review item', itemId);
      if (item.user_id === person.id) throw new PimForbidden('nobody reviews their own access');
      const now = iso(this.clock.now());
      // Conditional on the campaign still being open: a decision never lands after it closed.
      const res = await trx
        .updateTable('review_items')
        .set({ decision, decided_by: person.userName, decided_at: now, reason })
        .where('id', '=', itemId)
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('review_campaigns')
              .select('id')
              .where('id', '=', campaignId)
              .where('state', '=', 'open'),
          ),
        )
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new Conflict(`review ${campaign.name} is closed`);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'review.item.decided',
        outcome: 'success',
        actor: ctx.actor,
        subject: item.label,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { campaignId, itemId, decision, reason, previous: item.decision },
      });
      return itemView({ ...item, decision, decided_by: person.userName, decided_at: now, reason });
    });
  }

  /** Closes one campaign now (an admin), applying its results. */
  async close(ctx: AuditContext, id: string): Promise<Campaign> {
    const closed = await this.store.db
      .transaction()
      .execute(async (trx) => this.closeIn(trx, ctx, await this.row(trx, id)));
    if (!closed) throw new Conflict(`review ${id} is already closed`);
    return this.get(id);
  }

  /** The scheduler: closes campaigns past their deadline, each exactly once across instances. */
  async closeDue(): Promise<number> {
    const ctx: AuditContext = { actor: systemActor('access-review-scheduler') };
    return this.store.db.transaction().execute(async (trx) => {
      let q = trx
        .selectFrom('review_campaigns')
        .selectAll()
        .where('state', '=', 'open')
        .where('deadline', '<=', iso(this.clock.now()))
        .limit(20);
      if (this.store.engine === 'postgres') q = q.forUpdate().skipLocked();
      let n = 0;
      for (const row of await q.execute()) if (await this.closeIn(trx, ctx, row)) n += 1;
      return n;
    });
  }

  private async closeIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    campaign: ReviewCampaignsTable,
  ): Promise<boolean> {
    const now = iso(this.clock.now());
    const res = await trx
      .updateTable('review_campaigns')
      .set({ state: 'closed', closed_at: now, closed_by: actorName(ctx.actor) })
      .where('id', '=', campaign.id)
      .where('state', '=', 'open')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return false;
    const items = await trx
      .selectFrom('review_items')
      .selectAll()
      .where('campaign_id', '=', campaign.id)
      .execute();
    let removed = 0;
    for (const item of items) {
      const goes = item.decision === 'deny' || (item.decision === null && campaign.remove_unreviewed === 1);
      await trx
        .updateTable('review_items')
        .set({ outcome: goes ? 'removed' : 'kept' })
        .where('id', '=', item.id)
        .execute();
      if (!goes) continue;
      removed += 1;
      await enqueueEvent(trx, this.clock, {
        type: 'review.removal-requested',
        campaignId: campaign.id,
        itemId: item.id,
        kind: item.kind,
        groupId: item.group_id,
        userId: item.user_id,
        eligibilityId: item.eligibility_id,
        reason: `access review ${campaign.name}: ${item.decision === 'deny' ? `denied by ${item.decided_by}` : 'not reviewed by the deadline'}`,
      });
    }
    const count = (d: string | null) => items.filter((i) => i.decision === d).length;
    await appendAudit(trx, this.store.engine, this.clock, {
      type: 'review.campaign.closed',
      outcome: 'success',
      actor: ctx.actor,
      subject: campaign.name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {
        campaignId: campaign.id,
        total: items.length,
        approved: count('approve'),
        denied: count('deny'),
        unreviewed: count(null),
        removed,
      },
    });
    return true;
  }

  private async row(db: Kysely<Database>, id: string): Promise<ReviewCampaignsTable> {
    const row = await db.selectFrom('review_campaigns').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFound('review', id);
    return row;
  }

  private async view(db: Kysely<Database>, r: ReviewCampaignsTable): Promise<Campaign> {
    const items = await db
      .selectFrom('review_items')
      .select(['decision', 'outcome'])
      .where('campaign_id', '=', r.id)
      .execute();
    return {
      id: r.id,
      name: r.name,
      reviewers: JSON.parse(r.reviewers) as Approver[],
      deadline: r.deadline,
      removeUnreviewed: r.remove_unreviewed === 1,
      state: r.state,
      createdAt: r.created_at,
      createdBy: r.created_by,
      closedAt: r.closed_at,
      closedBy: r.closed_by,
      progress: {
        total: items.length,
        approved: items.filter((i) => i.decision === 'approve').length,
        denied: items.filter((i) => i.decision === 'deny').length,
        unreviewed: items.filter((i) => i.decision === null).length,
        removed: items.filter((i) => i.outcome === 'removed').length,
      },
    };
  }
}
