import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit, auditAppended, auditRow } from '../audit/ledger.js';
import { iso } from '../clock.js';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import { isUniqueViolation } from '../store/errors.js';
import { enqueueEvent, enqueueEvents } from '../store/outbox.js';
import type { Database, GroupRow } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import { looksLikeId } from './refs.js';
import { findUserRow } from './users.js';

export interface Group {
  id: string;
  displayName: string;
  description: string | null;
  externalId: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
}

export interface GroupMember {
  id: string;
  userName: string;
  displayName: string | null;
}

export function groupFromRow(row: GroupRow): Group {
  return {
    id: row.id,
    displayName: row.display_name,
    description: row.description,
    externalId: row.external_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: Number(row.version),
  };
}

export async function findGroupRow(db: Kysely<Database>, ref: string): Promise<GroupRow | undefined> {
  const q = db.selectFrom('groups').selectAll();
  return looksLikeId(ref)
    ? q.where('id', '=', ref.toLowerCase()).executeTakeFirst()
    : q.where('display_name_key', '=', ref.trim().toLowerCase()).executeTakeFirst();
}

/** Group names of a user, as claims and access decisions see them. */
export async function groupNamesOf(db: Kysely<Database>, userId: string, now?: Date): Promise<string[]> {
  const rows = await db
    .selectFrom('group_members')
    .innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select('groups.display_name')
    .where('group_members.user_id', '=', userId)
    // a membership a PIM activation granted ends at its expiresAt, whenever the row is removed
    .$if(now !== undefined, (q) =>
      q.where((eb) =>
        eb.or([
          eb('group_members.expires_at', 'is', null),
          eb('group_members.expires_at', '>', now!.toISOString()),
        ]),
      ),
    )
    .orderBy('groups.display_name_key')
    .execute();
  return rows.map((r) => r.display_name);
}

export class GroupDirectory {
  constructor(private readonly deps: IdentityDeps) {}

  namesOf(userId: string): Promise<string[]> {
    return groupNamesOf(this.deps.store.db, userId, this.deps.clock.now());
  }

  async get(ref: string): Promise<Group & { members: GroupMember[] }> {
    const { db } = this.deps.store;
    const row = await findGroupRow(db, ref);
    if (!row) throw new NotFound('group', ref);
    const members = await db
      .selectFrom('group_members')
      .innerJoin('users', 'users.id', 'group_members.user_id')
      .select(['users.id', 'users.user_name', 'users.display_name'])
      .where('group_members.group_id', '=', row.id)
      .orderBy('users.user_name_key')
      .execute();
    return {
      ...groupFromRow(row),
      members: members.map((m) => ({ id: m.id, userName: m.user_name, displayName: m.display_name })),
    };
  }

  async list(
    q: { query?: string; limit?: number; offset?: number } = {},
  ): Promise<{ items: Group[]; total: number }> {
    let base = this.deps.store.db.selectFrom('groups');
    if (q.query) {
      const like = `%${q.query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      base = base.where('display_name_key', 'like', like);
    }
    const [rows, count] = await Promise.all([
      base
        .selectAll()
        .orderBy('display_name_key')
        .limit(Math.min(q.limit ?? 100, 1000))
        .offset(q.offset ?? 0)
        .execute(),
      base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(groupFromRow), total: Number(count.n) };
  }

  async create(
    ctx: AuditContext,
    input: { displayName: string; description?: string | null; externalId?: string | null },
  ): Promise<Group> {
    const { store } = this.deps;
    try {
      const id = await store.db.transaction().execute((trx) => this.createIn(trx, ctx, input));
      return groupFromRow(
        (await store.db
          .selectFrom('groups')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow()) as GroupRow,
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw new Conflict(`a group named ${input.displayName.trim()} already exists`);
      throw err;
    }
  }

  /** Creates a group inside the caller's transaction; a taken name surfaces as a unique violation. */
  async createIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    input: { displayName: string; description?: string | null; externalId?: string | null },
  ): Promise<string> {
    const { store, clock } = this.deps;
    const displayName = checkGroupName(input.displayName);
    const id = randomUUID();
    const now = iso(clock.now());
    await trx
      .insertInto('groups')
      .values({
        id,
        display_name: displayName,
        display_name_key: displayName.toLowerCase(),
        description: input.description ?? null,
        external_id: input.externalId ?? null,
        created_at: now,
        updated_at: now,
        version: 1,
      })
      .execute();
    await enqueueEvent(trx, clock, { type: 'group.created', groupId: id, displayName });
    await appendAudit(trx, store.engine, clock, {
      type: 'group.created',
      outcome: 'success',
      actor: ctx.actor,
      subject: displayName,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { groupId: id },
    });
    return id;
  }

  /** Renames or re-describes a group inside the caller's transaction; returns what changed. */
  async updateIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: GroupRow,
    changes: { displayName?: string; description?: string | null; externalId?: string | null },
  ): Promise<string[]> {
    const { store, clock } = this.deps;
    const set: Partial<GroupRow> = {};
    const changed: string[] = [];
    if (changes.displayName !== undefined && changes.displayName !== row.display_name) {
      set.display_name = checkGroupName(changes.displayName);
      set.display_name_key = set.display_name.toLowerCase();
      changed.push('displayName');
    }
    if (changes.description !== undefined && changes.description !== row.description) {
      set.description = changes.description;
      changed.push('description');
    }
    if (changes.externalId !== undefined && changes.externalId !== row.external_id) {
      set.external_id = changes.externalId;
      changed.push('externalId');
    }
    if (changed.length === 0) return changed;
    await trx
      .updateTable('groups')
      .set({ ...set, updated_at: iso(clock.now()), version: Number(row.version) + 1 })
      .where('id', '=', row.id)
      .execute();
    await enqueueEvent(trx, clock, {
      type: 'group.updated',
      groupId: row.id,
      displayName: set.display_name ?? row.display_name,
    });
    await appendAudit(trx, store.engine, clock, {
      type: 'group.updated',
      outcome: 'success',
      actor: ctx.actor,
      subject: set.display_name ?? row.display_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { groupId: row.id, changed, ...(set.display_name ? { previousName: row.display_name } : {}) },
    });
    return changed;
  }

  async delete(ctx: AuditContext, ref: string): Promise<void> {
    await this.deps.store.db.transaction().execute(async (trx) => {
      const row = await findGroupRow(trx, ref);
      if (!row) throw new NotFound('group', ref);
      await this.deleteIn(trx, ctx, row);
    });
  }

  /** Deletes a group inside the caller's transaction, with a membership event per member it had. */
  async deleteIn(trx: Kysely<Database>, ctx: AuditContext, row: GroupRow): Promise<void> {
    const { store, clock } = this.deps;
    const members = await trx
      .selectFrom('group_members')
      .select('user_id')
      .where('group_id', '=', row.id)
      .execute();
    for (const m of members) {
      await enqueueEvent(trx, clock, {
        type: 'membership.changed',
        groupId: row.id,
        userId: m.user_id,
        change: 'removed',
      });
    }
    await trx.deleteFrom('group_members').where('group_id', '=', row.id).execute();
    await trx.deleteFrom('groups').where('id', '=', row.id).execute();
    await enqueueEvent(trx, clock, {
      type: 'group.deleted',
      groupId: row.id,
      displayName: row.display_name,
    });
    await appendAudit(trx, store.engine, clock, {
      type: 'group.deleted',
      outcome: 'success',
      actor: ctx.actor,
      subject: row.display_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { groupId: row.id, membersRemoved: members.length },
    });
  }

  /** Adds or removes a member; idempotent (returns false when nothing changed, and audits nothing then). */
  async setMembership(
    ctx: AuditContext,
    groupRef: string,
    userRef: string,
    member: boolean,
  ): Promise<boolean> {
    const { store } = this.deps;
    return store.db
      .transaction()
      .execute(async (trx) => {
        const group = await findGroupRow(trx, groupRef);
        if (!group) throw new NotFound('group', groupRef);
        const user = await findUserRow(trx, userRef);
        if (!user) throw new NotFound('user', userRef);
        return this.setMembershipIn(trx, ctx, group, user, member);
      })
      .catch((err: unknown) => {
        // Two concurrent adds of the same member: the loser changed nothing.
        if (isUniqueViolation(err)) return false;
        throw err;
      });
  }

  /**
   * setMembershipIn for many users at once, with the same rows (per member: the membership, its
   * membership.changed event, its audit event) written a few statements per 500 members instead of five
   * statements each; the group's version moves once. Returns the users whose membership changed.
   */
  async setMembershipsIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    group: GroupRow,
    users: Array<{ id: string; user_name: string }>,
    member: boolean,
  ): Promise<Array<{ id: string; user_name: string }>> {
    const { clock } = this.deps;
    const changed: Array<{ id: string; user_name: string }> = [];
    const seen = new Set<string>();
    const now = iso(clock.now());
    for (let i = 0; i < users.length; i += 500) {
      const slice = users.slice(i, i + 500);
      const existing = new Set(
        (
          await trx
            .selectFrom('group_members')
            .select('user_id')
            .where('group_id', '=', group.id)
            .where(
              'user_id',
              'in',
              slice.map((u) => u.id),
            )
            .execute()
        ).map((r) => r.user_id),
      );
      const todo = slice.filter((u) => existing.has(u.id) !== member && !seen.has(u.id));
      if (todo.length === 0) continue;
      for (const u of todo) seen.add(u.id);
      if (member) {
        await trx
          .insertInto('group_members')
          .values(todo.map((u) => ({ group_id: group.id, user_id: u.id, created_at: now })))
          .execute();
      } else {
        await trx
          .deleteFrom('group_members')
          .where('group_id', '=', group.id)
          .where(
            'user_id',
            'in',
            todo.map((u) => u.id),
          )
          .execute();
      }
      changed.push(...todo);
    }
    if (changed.length === 0) return changed;
    await trx
      .updateTable('groups')
      .set((eb) => ({ updated_at: now, version: eb('version', '+', 1) }))
      .where('id', '=', group.id)
      .execute();
    const change = member ? 'added' : 'removed';
    await enqueueEvents(
      trx,
      clock,
      changed.map((u) => ({ type: 'membership.changed', groupId: group.id, userId: u.id, change })),
    );
    for (let i = 0; i < changed.length; i += 500) {
      const rows = changed.slice(i, i + 500).map(
        (u) =>
          auditRow(clock, {
            type: member ? 'group.member-added' : 'group.member-removed',
            outcome: 'success',
            actor: ctx.actor,
            subject: group.display_name,
            ip: ctx.ip,
            requestId: ctx.requestId,
            data: { groupId: group.id, userId: u.id, userName: u.user_name },
          }).row,
      );
      await trx.insertInto('audit_events').values(rows).execute();
    }
    auditAppended();
    return changed;
  }

  /**
   * Adds or removes one member inside the caller's transaction, with its outbox event and audit row;
   * the group's version moves so SCIM ETags see membership changes. False when nothing changed.
   */
  async setMembershipIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    group: GroupRow,
    user: { id: string; user_name: string },
    member: boolean,
  ): Promise<boolean> {
    const { store, clock } = this.deps;
    const existing = await trx
      .selectFrom('group_members')
      .select('user_id')
      .where('group_id', '=', group.id)
      .where('user_id', '=', user.id)
      .executeTakeFirst();
    if (member === (existing !== undefined)) return false;
    const now = iso(clock.now());
    if (member) {
      await trx
        .insertInto('group_members')
        .values({ group_id: group.id, user_id: user.id, created_at: now })
        .execute();
    } else {
      await trx
        .deleteFrom('group_members')
        .where('group_id', '=', group.id)
        .where('user_id', '=', user.id)
        .execute();
    }
    await trx
      .updateTable('groups')
      .set((eb) => ({ updated_at: now, version: eb('version', '+', 1) }))
      .where('id', '=', group.id)
      .execute();
    const change = member ? 'added' : 'removed';
    await enqueueEvent(trx, clock, {
      type: 'membership.changed',
      groupId: group.id,
      userId: user.id,
      change,
    });
    await appendAudit(trx, store.engine, clock, {
      type: member ? 'group.member-added' : 'group.member-removed',
      outcome: 'success',
      actor: ctx.actor,
      subject: group.display_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { groupId: group.id, userId: user.id, userName: user.user_name },
    });
    return true;
  }

  /**
   * PIM (0024): makes the person a member until `expiresAt`, for one activation; idempotent. A standing
   * membership is left alone ('already-member'): the activation then adds nothing and removes nothing.
   * The membership is an ordinary one otherwise (membership.changed → SCIM push, assignments follow).
   */
  async grantForActivation(
    ctx: AuditContext,
    grant: { groupId: string; userId: string; activationId: string; expiresAt: string },
  ): Promise<ActivationMembership> {
    const { store, clock } = this.deps;
    return store.db.transaction().execute(async (trx) => {
      const group = await findGroupRow(trx, grant.groupId);
      if (!group) throw new NotFound('group', grant.groupId);
      const user = await findUserRow(trx, grant.userId);
      if (!user) throw new NotFound('user', grant.userId);
      const existing = await trx
        .selectFrom('group_members')
        .select(['activation_id'])
        .where('group_id', '=', group.id)
        .where('user_id', '=', user.id)
        .executeTakeFirst();
      if (existing) return existing.activation_id === grant.activationId ? 'added' : 'already-member';
      await trx
        .insertInto('group_members')
        .values({
          group_id: group.id,
          user_id: user.id,
          created_at: iso(clock.now()),
          activation_id: grant.activationId,
          expires_at: grant.expiresAt,
        })
        .execute();
      await this.membershipMoved(trx, ctx, group, user, 'added', grant.activationId, grant.expiresAt);
      return 'added';
    });
  }

  /** PIM (0024): ends the membership one activation granted (never a standing one); idempotent. */
  async endForActivation(
    ctx: AuditContext,
    grant: { groupId: string; userId: string; activationId: string },
  ): Promise<boolean> {
    return this.deps.store.db.transaction().execute(async (trx) => {
      const group = await findGroupRow(trx, grant.groupId);
      const user = await findUserRow(trx, grant.userId);
      if (!group || !user) return false;
      const res = await trx
        .deleteFrom('group_members')
        .where('group_id', '=', group.id)
        .where('user_id', '=', user.id)
        .where('activation_id', '=', grant.activationId)
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) return false;
      await this.membershipMoved(trx, ctx, group, user, 'removed', grant.activationId, null);
      return true;
    });
  }

  private async membershipMoved(
    trx: Kysely<Database>,
    ctx: AuditContext,
    group: GroupRow,
    user: { id: string; user_name: string },
    change: 'added' | 'removed',
    activationId: string,
    expiresAt: string | null,
  ): Promise<void> {
    const { store, clock } = this.deps;
    const now = iso(clock.now());
    await trx
      .updateTable('groups')
      .set((eb) => ({ updated_at: now, version: eb('version', '+', 1) }))
      .where('id', '=', group.id)
      .execute();
    await enqueueEvent(trx, clock, {
      type: 'membership.changed',
      groupId: group.id,
      userId: user.id,
      change,
    });
    await appendAudit(trx, store.engine, clock, {
      type: change === 'added' ? 'group.member-added' : 'group.member-removed',
      outcome: 'success',
      actor: ctx.actor,
      subject: group.display_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {
        groupId: group.id,
        userId: user.id,
        userName: user.user_name,
        activationId,
        ...(expiresAt ? { expiresAt } : {}),
      },
    });
  }
}

/** PIM (0024): what granting a membership for an activation found. */
export type ActivationMembership = 'added' | 'already-member';

function checkGroupName(name: string): string {
  const displayName = name.trim();
  if (displayName.length === 0 || displayName.length > 256) {
    throw new InvalidInput('displayName must be 1-256 characters', 'displayName');
  }
  return displayName;
}
