import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import type { Store } from '../../store/open.js';
import type { Database } from '../../store/schema.js';
import { IDENTITY_CENTER_LIMITS } from './limits.js';
import { type PlanScope, type PushPlan, type PushStep, planPush } from './plan.js';
import type { RemoteGroup, RemoteUser } from './representation.js';
import { type IdentityCenterScimClient, ScimPushFailed } from './scim-client.js';
import { PushState } from './state.js';

export interface PushProgress {
  done: number;
  total: number;
  step: PushStep;
}

export interface PushOptions {
  onProgress?: (p: PushProgress) => void;
  /**
   * Runs after Identity Center accepted a request and before Ferry records it: the window a crash
   * would hit. Tests throw here to show that a re-run neither duplicates nor loses anything.
   */
  beforeRecord?: (step: PushStep) => void | Promise<void>;
  /**
   * Aborts when the push's lease is lost (store/leases.ts): another instance may be pushing now, so
   * no further step is sent (a re-run plans from what Identity Center then holds).
   */
  signal?: AbortSignal;
}

export interface PushResult {
  applied: number;
  requests: {
    users: { created: number; updated: number; deleted: number };
    groups: { created: number; renamed: number; deleted: number };
    members: { added: number; removed: number };
  };
}

/**
 * Carries a plan out against Identity Center. Every step is idempotent: a create first records a
 * pending row, so a re-run after a crash looks the object up (`userName eq` / `displayName eq`)
 * instead of creating it twice; a 409 does the same; member changes are recorded per accepted chunk.
 */
export class PushRun {
  private readonly state: PushState;
  readonly result: PushResult = {
    applied: 0,
    requests: {
      users: { created: 0, updated: 0, deleted: 0 },
      groups: { created: 0, renamed: 0, deleted: 0 },
      members: { added: 0, removed: 0 },
    },
  };

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly client: IdentityCenterScimClient,
    private readonly ctx: AuditContext,
    private readonly options: PushOptions = {},
  ) {
    this.state = new PushState(store.db);
  }

  async apply(plan: PushPlan): Promise<PushResult> {
    const total = plan.steps.length;
    let done = 0;
    for (const step of plan.steps) {
      this.options.signal?.throwIfAborted();
      await this.applyStep(step);
      done += 1;
      this.result.applied += 1;
      this.options.onProgress?.({ done, total, step });
    }
    return this.result;
  }

  private async applyStep(step: PushStep): Promise<void> {
    switch (step.kind) {
      case 'user.create':
      case 'user.update':
        return void (await this.ensureUser(step.userId, step.userName, step.user, step));
      case 'user.delete':
        return this.deleteUser(step);
      case 'group.create':
      case 'group.rename':
        return void (await this.ensureGroup(step.groupId, step.group, step));
      case 'group.delete':
        return this.deleteGroup(step);
      case 'members.add':
      case 'members.remove':
        return this.changeMembers(step);
    }
  }

  /** Creates or replaces one user; returns its Identity Center id. */
  private async ensureUser(
    userId: string,
    userName: string,
    user: RemoteUser,
    step: PushStep,
  ): Promise<string> {
    const had = (await this.state.users([userId])).get(userId);
    let remoteId = had?.remoteId ?? null;
    if (remoteId !== null) {
      try {
        await this.client.replaceUser(remoteId, user);
        await this.options.beforeRecord?.(step);
        await this.recordUser(
          userId,
          remoteId,
          user,
          had?.pushed.active === true && !user.active ? 'deactivated' : 'updated',
        );
        this.result.requests.users.updated += 1;
        return remoteId;
      } catch (err) {
        // Deleted in Identity Center behind Ferry's back: create it again.
        if (!(err instanceof ScimPushFailed && err.status === 404)) throw err;
        remoteId = null;
      }
    }
    // A pending row left by an earlier run means the create may have gone through: look first.
    if (had) remoteId = await this.client.findUserByUserName(had.userName);
    if (remoteId === null) {
      await this.pendingUser(userId, userName, user);
      try {
        remoteId = await this.client.createUser(user);
        this.result.requests.users.created += 1;
      } catch (err) {
        if (!(err instanceof ScimPushFailed && err.status === 409)) throw err;
        remoteId = await this.adoptUser(userName, user);
      }
    } else {
      await this.client.replaceUser(remoteId, user);
      this.result.requests.users.updated += 1;
    }
    await this.options.beforeRecord?.(step);
    await this.recordUser(userId, remoteId, user, 'created');
    return remoteId;
  }

  /** After a 409: the user exists (made by an earlier run, or by hand); take it over and align it. */
  private async adoptUser(userName: string, user: RemoteUser): Promise<string> {
    const found = await this.client.findUserByUserName(userName);
    if (found === null)
      throw new ScimPushFailed(
        'POST',
        '/Users',
        409,
        'uniqueness',
        `${userName} conflicts but cannot be found by userName`,
      );
    await this.client.replaceUser(found, user);
    this.result.requests.users.updated += 1;
    return found;
  }

  private async pendingUser(userId: string, userName: string, user: RemoteUser): Promise<void> {
    const now = iso(this.clock.now());
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('identity_center_users').where('user_id', '=', userId).execute();
      await trx
        .insertInto('identity_center_users')
        .values({
          user_id: userId,
          user_name: userName,
          remote_id: null,
          pushed: JSON.stringify(user),
          pushed_at: now,
        })
        .execute();
    });
  }

  private async recordUser(
    userId: string,
    remoteId: string,
    user: RemoteUser,
    what: 'created' | 'updated' | 'deactivated',
  ): Promise<void> {
    const now = iso(this.clock.now());
    await this.inTransaction(async (trx) => {
      await trx.deleteFrom('identity_center_users').where('user_id', '=', userId).execute();
      await trx
        .insertInto('identity_center_users')
        .values({
          user_id: userId,
          user_name: user.userName,
          remote_id: remoteId,
          pushed: JSON.stringify(user),
          pushed_at: now,
        })
        .execute();
      await this.audit(trx, `identity-center.user-${what}`, user.userName, {
        userId,
        remoteId,
        active: user.active,
      });
    });
  }

  private async deleteUser(step: Extract<PushStep, { kind: 'user.delete' }>): Promise<void> {
    const had = (await this.state.users([step.userId])).get(step.userId);
    const remoteId = had?.remoteId ?? (had ? await this.client.findUserByUserName(had.userName) : null);
    if (remoteId !== null) {
      await this.client.deleteUser(remoteId);
      this.result.requests.users.deleted += 1;
    }
    await this.options.beforeRecord?.(step);
    await this.inTransaction(async (trx) => {
      await trx.deleteFrom('identity_center_members').where('user_id', '=', step.userId).execute();
      await trx.deleteFrom('identity_center_users').where('user_id', '=', step.userId).execute();
      await this.audit(trx, 'identity-center.user-deleted', step.userName, { userId: step.userId, remoteId });
    });
  }

  /** Creates (with its first 100 members) or renames one group; returns its Identity Center id. */
  private async ensureGroup(groupId: string, group: RemoteGroup, step: PushStep): Promise<string> {
    const had = (await this.state.groups([groupId])).get(groupId);
    let remoteId = had?.remoteId ?? null;
    if (remoteId !== null) {
      if (had?.pushed.displayName !== group.displayName) {
        try {
          await this.client.renameGroup(remoteId, group.displayName);
          this.result.requests.groups.renamed += 1;
        } catch (err) {
          if (!(err instanceof ScimPushFailed && err.status === 404)) throw err;
          remoteId = null; // gone in Identity Center: create it again below
        }
        if (remoteId !== null) {
          await this.options.beforeRecord?.(step);
          await this.recordGroup(groupId, remoteId, group, [], 'renamed');
          return remoteId;
        }
      } else return remoteId;
    }
    if (had) remoteId = await this.client.findGroupByDisplayName(had.displayName);
    let initial: Array<{ userId: string; remoteId: string }> = [];
    if (remoteId === null) {
      await this.pendingGroup(groupId, group);
      initial = (await this.memberRemoteIds(groupId)).slice(0, IDENTITY_CENTER_LIMITS.membersPerRequest);
      try {
        remoteId = await this.client.createGroup(
          group,
          initial.map((m) => m.remoteId),
        );
        this.result.requests.groups.created += 1;
        this.result.requests.members.added += initial.length;
      } catch (err) {
        if (!(err instanceof ScimPushFailed && err.status === 409)) throw err;
        initial = []; // its members are unknown (GetGroup shows none): the member step adds Ferry's
        remoteId = await this.client.findGroupByDisplayName(group.displayName);
        if (remoteId === null)
          throw new ScimPushFailed(
            'POST',
            '/Groups',
            409,
            'uniqueness',
            `${group.displayName} conflicts but cannot be found by displayName`,
          );
      }
    }
    await this.options.beforeRecord?.(step);
    await this.recordGroup(
      groupId,
      remoteId,
      group,
      initial.map((m) => m.userId),
      'created',
    );
    return remoteId;
  }

  /** Current Ferry members of a group that are already in Identity Center (creating the missing ones). */
  private async memberRemoteIds(
    groupId: string,
    only?: string[],
  ): Promise<Array<{ userId: string; remoteId: string }>> {
    let q = this.store.db
      .selectFrom('group_members')
      .select('user_id')
      .where('group_id', '=', groupId)
      .orderBy('user_id');
    if (only) q = q.where('user_id', 'in', only);
    const ids = (await q.execute()).map((r) => r.user_id);
    const pushed = new Map<string, string | null>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const [id, u] of await this.state.users(ids.slice(i, i + 500))) pushed.set(id, u.remoteId);
    }
    const out: Array<{ userId: string; remoteId: string }> = [];
    for (const userId of ids) {
      let remoteId = pushed.get(userId) ?? null;
      if (remoteId === null) {
        // A member Ferry has not pushed yet (an event arrived before its user's): push it now.
        const plan = await planPush(this.store.db, { userIds: [userId] });
        const create = plan.steps.find((s) => s.kind === 'user.create' || s.kind === 'user.update');
        if (!create || (create.kind !== 'user.create' && create.kind !== 'user.update')) continue;
        remoteId = await this.ensureUser(userId, create.userName, create.user, create);
      }
      out.push({ userId, remoteId });
    }
    return out;
  }

  private async pendingGroup(groupId: string, group: RemoteGroup): Promise<void> {
    const now = iso(this.clock.now());
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('identity_center_members').where('group_id', '=', groupId).execute();
      await trx.deleteFrom('identity_center_groups').where('group_id', '=', groupId).execute();
      await trx
        .insertInto('identity_center_groups')
        .values({
          group_id: groupId,
          display_name: group.displayName,
          remote_id: null,
          pushed: JSON.stringify(group),
          pushed_at: now,
        })
        .execute();
    });
  }

  private async recordGroup(
    groupId: string,
    remoteId: string,
    group: RemoteGroup,
    members: string[],
    what: 'created' | 'renamed',
  ): Promise<void> {
    const now = iso(this.clock.now());
    await this.inTransaction(async (trx) => {
      await trx.deleteFrom('identity_center_groups').where('group_id', '=', groupId).execute();
      await trx
        .insertInto('identity_center_groups')
        .values({
          group_id: groupId,
          display_name: group.displayName,
          remote_id: remoteId,
          pushed: JSON.stringify(group),
          pushed_at: now,
        })
        .execute();
      await this.insertMembers(trx, groupId, members, now);
      await this.audit(trx, `identity-center.group-${what}`, group.displayName, {
        groupId,
        remoteId,
        ...(members.length ? { membersAdded: members.length } : {}),
      });
    });
  }

  private async changeMembers(
    step: Extract<PushStep, { kind: 'members.add' | 'members.remove' }>,
  ): Promise<void> {
    const group = (await this.state.groups([step.groupId])).get(step.groupId);
    let groupRemoteId = group?.remoteId ?? null;
    if (groupRemoteId === null) {
      if (step.kind === 'members.remove') return; // never pushed: nothing to remove
      groupRemoteId = await this.ensureGroup(
        step.groupId,
        { displayName: step.displayName, externalId: step.groupId },
        step,
      );
    }
    const wanted = step.members.map((m) => m.userId);
    const pushed = (await this.state.members([step.groupId])).get(step.groupId) ?? new Set<string>();
    let targets: Array<{ userId: string; remoteId: string }>;
    if (step.kind === 'members.add') {
      // Creating the group may already have added some; the rest go in chunks of 100.
      targets = (await this.memberRemoteIds(step.groupId, wanted)).filter((m) => !pushed.has(m.userId));
    } else {
      const users = await this.state.users(wanted.filter((id) => pushed.has(id)));
      targets = [...users.values()]
        .filter((u) => u.remoteId !== null)
        .map((u) => ({ userId: u.userId, remoteId: u.remoteId! }));
    }
    const byRemote = new Map(targets.map((t) => [t.remoteId, t.userId]));
    const op = step.kind === 'members.add' ? 'add' : 'remove';
    await this.client.changeMembers(
      groupRemoteId,
      op,
      targets.map((t) => t.remoteId),
      async (chunk) => {
        await this.options.beforeRecord?.(step);
        const userIds = chunk.map((r) => byRemote.get(r)!);
        const now = iso(this.clock.now());
        await this.inTransaction(async (trx) => {
          if (op === 'add') await this.insertMembers(trx, step.groupId, userIds, now);
          else
            await trx
              .deleteFrom('identity_center_members')
              .where('group_id', '=', step.groupId)
              .where('user_id', 'in', userIds)
              .execute();
          await this.audit(
            trx,
            `identity-center.members-${op === 'add' ? 'added' : 'removed'}`,
            step.displayName,
            {
              groupId: step.groupId,
              count: userIds.length,
            },
          );
        });
        if (op === 'add') this.result.requests.members.added += chunk.length;
        else this.result.requests.members.removed += chunk.length;
      },
    );
  }

  private async deleteGroup(step: Extract<PushStep, { kind: 'group.delete' }>): Promise<void> {
    const had = (await this.state.groups([step.groupId])).get(step.groupId);
    const remoteId =
      had?.remoteId ?? (had ? await this.client.findGroupByDisplayName(had.displayName) : null);
    if (remoteId !== null) {
      await this.client.deleteGroup(remoteId);
      this.result.requests.groups.deleted += 1;
    }
    await this.options.beforeRecord?.(step);
    await this.inTransaction(async (trx) => {
      await trx.deleteFrom('identity_center_members').where('group_id', '=', step.groupId).execute();
      await trx.deleteFrom('identity_center_groups').where('group_id', '=', step.groupId).execute();
      await this.audit(trx, 'identity-center.group-deleted', step.displayName, {
        groupId: step.groupId,
        remoteId,
      });
    });
  }

  private async insertMembers(
    trx: Kysely<Database>,
    groupId: string,
    userIds: string[],
    now: string,
  ): Promise<void> {
    if (userIds.length === 0) return;
    await trx
      .deleteFrom('identity_center_members')
      .where('group_id', '=', groupId)
      .where('user_id', 'in', userIds)
      .execute();
    await trx
      .insertInto('identity_center_members')
      .values(userIds.map((user_id) => ({ group_id: groupId, user_id, pushed_at: now })))
      .execute();
  }

  private inTransaction(fn: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
    return this.store.db.transaction().execute(fn);
  }

  private async audit(
    trx: Kysely<Database>,
    type: string,
    subject: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    await appendAudit(trx, this.store.engine, this.clock, {
      type,
      outcome: 'success',
      actor: this.ctx.actor,
      subject,
      ip: this.ctx.ip,
      requestId: this.ctx.requestId,
      data,
    });
  }
}

export type { PlanScope, PushPlan };
