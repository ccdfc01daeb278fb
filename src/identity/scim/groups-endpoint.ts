import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import type { Store } from '../../store/open.js';
import type { Database, GroupRow } from '../../store/schema.js';
import { type GroupDirectory, groupFromRow } from '../groups.js';
import { looksLikeId } from '../refs.js';
import { coerceResource } from './coerce.js';
import { invalidValue, scimNotFound } from './errors.js';
import { type GroupState, groupStateOf, type MemberRef, toScimGroup } from './group-resource.js';
import type { ScimLane } from './lane.js';
import { applyPatch, parsePatchBody } from './patch.js';
import type { Projection } from './projection.js';
import {
  type Created,
  checkIfMatch,
  deletionOf,
  forChange,
  inTransaction,
  type ListQuery,
  type PreparedWrite,
} from './request.js';
import { ResourceReader } from './resource-reader.js';
import { GROUP } from './schema.js';

/** /Groups: SCIM operations on Ferry's groups and memberships, one transaction per request. */
export class ScimGroups {
  constructor(
    private readonly store: Store,
    private readonly groups: GroupDirectory,
    private readonly baseUrl: () => string,
    /** the connection asking: it sees and changes only its own groups, and only its own users in them */
    private readonly lane: ScimLane,
  ) {
    this.reader = new ResourceReader<GroupRow, MemberRef>(store, lane, {
      schema: GROUP,
      table: 'groups',
      sortKey: 'display_name_key',
      related: 'members',
      relatedOf: (db, ids) => this.membersOf(db, ids),
      toDoc: (row, members) => toScimGroup(groupFromRow(row), members, this.baseUrl()),
    });
  }

  private readonly reader: ResourceReader<GroupRow, MemberRef>;

  private async membersOf(db: Kysely<Database>, ids: string[]): Promise<Map<string, MemberRef[]>> {
    const out = new Map<string, MemberRef[]>();
    if (ids.length === 0) return out;
    const rows = await db
      .selectFrom('group_members')
      .innerJoin('users', 'users.id', 'group_members.user_id')
      .select(['group_members.group_id', 'users.id', 'users.user_name'])
      .where('group_members.group_id', 'in', ids)
      // PIM (0024): memberships Ferry granted for a while are Ferry's, not the provisioning client's
      .where('group_members.activation_id', 'is', null)
      .orderBy('users.user_name_key')
      .execute();
    // this lane's users only (see ScimLane.managedAmong)
    const managed = await this.lane.managedAmong(db, 'user', [...new Set(rows.map((r) => r.id))]);
    for (const r of rows) {
      if (!managed.has(r.id)) continue;
      const list = out.get(r.group_id) ?? [];
      list.push({ id: r.id, userName: r.user_name });
      out.set(r.group_id, list);
    }
    return out;
  }

  private async row(db: Kysely<Database>, id: string, lock: boolean): Promise<GroupRow> {
    if (!looksLikeId(id)) throw scimNotFound('Group', id);
    const q = db.selectFrom('groups').selectAll().where('id', '=', id.toLowerCase());
    const row = await (lock ? forChange(this.store, q) : q).executeTakeFirst();
    if (!row) throw scimNotFound('Group', id);
    if (lock) await this.lane.checkWrite(db, 'group', row.id);
    else await this.lane.checkRead(db, 'group', row.id);
    return row;
  }

  async get(id: string, projection: Projection): Promise<{ doc: Record<string, unknown>; version: number }> {
    return this.reader.get(await this.row(this.store.db, id, false), projection);
  }

  list(q: ListQuery) {
    return this.reader.list(q);
  }

  async create(ctx: AuditContext, body: unknown): Promise<Created> {
    const w = this.creation(ctx, body);
    const id = await inTransaction(this.store, w.what, w.run);
    return { id, ...(await this.get(id, {})) };
  }

  /** A POST made ready to run in a transaction: the body checked. */
  creation(ctx: AuditContext, body: unknown): PreparedWrite<string> {
    const state = groupStateOf(coerceResource(GROUP, body));
    return {
      what: `displayName ${state.displayName}`,
      run: async (trx) => {
        const id = await this.groups.createIn(trx, ctx, {
          displayName: state.displayName,
          externalId: state.externalId,
        });
        await this.lane.claim(trx, 'group', id);
        const row = await trx.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
        await this.setMembers(trx, ctx, row, [], state.members);
        return id;
      },
    };
  }

  /** PUT: the body is the whole group, members included (left out: no members). */
  async replace(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): Promise<void> {
    const w = this.replacement(ctx, id, body, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  replacement(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): PreparedWrite<void> {
    const state = groupStateOf(coerceResource(GROUP, body));
    return {
      what: `displayName ${state.displayName}`,
      run: (trx) => this.write(trx, ctx, id, ifMatch, () => state),
    };
  }

  async patch(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): Promise<void> {
    const w = this.patching(ctx, id, body, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  patching(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): PreparedWrite<void> {
    const ops = parsePatchBody(body);
    return {
      what: 'the new displayName',
      run: (trx) =>
        this.write(trx, ctx, id, ifMatch, (doc) => {
          applyPatch(GROUP, doc, ops);
          return groupStateOf(doc);
        }),
    };
  }

  private async write(
    trx: Kysely<Database>,
    ctx: AuditContext,
    id: string,
    ifMatch: string | undefined,
    next: (doc: Record<string, unknown>) => GroupState,
  ): Promise<void> {
    let row = await this.row(trx, id, true);
    checkIfMatch(ifMatch, Number(row.version));
    const current = (await this.membersOf(trx, [row.id])).get(row.id) ?? [];
    const state = next(toScimGroup(groupFromRow(row), current, this.baseUrl()));
    const changed = await this.groups.updateIn(trx, ctx, row, {
      displayName: state.displayName,
      externalId: state.externalId,
    });
    if (changed.length > 0) row = await this.row(trx, id, false);
    await this.setMembers(
      trx,
      ctx,
      row,
      current.map((m) => m.id),
      state.members,
    );
  }

  /** Moves membership from `before` to `after`, one audited change per member added or removed. */
  private async setMembers(
    trx: Kysely<Database>,
    ctx: AuditContext,
    group: GroupRow,
    before: string[],
    after: string[],
  ): Promise<void> {
    const had = new Set(before);
    const wanted = new Set(after);
    const added = after.filter((id) => !had.has(id));
    const removed = before.filter((id) => !wanted.has(id));
    if (added.length === 0 && removed.length === 0) return;
    const users = new Map<string, { id: string; user_name: string }>();
    for (let i = 0; i < Math.max(added.length, removed.length); i += 500) {
      const ids = [...added.slice(i, i + 500), ...removed.slice(i, i + 500)];
      // Only this connection's users: another lane's user is "not a known user" here.
      const found = await trx
        .selectFrom('users')
        .select(['id', 'user_name'])
        .where('id', 'in', ids)
        .execute();
      const managed = await this.lane.managedAmong(
        trx,
        'user',
        found.map((r) => r.id),
      );
      const rows = found.filter((r) => managed.has(r.id));
      for (const r of rows) users.set(r.id, r);
    }
    const toAdd = added.map((id) => {
      const user = users.get(id);
      if (!user) throw invalidValue(`member ${id} is not a known user`);
      return user;
    });
    // Many members at once (a group created with its members, Entra's PATCH of several): a few
    // statements per 500 members, each member still with its own outbox event and audit record.
    await this.groups.setMembershipsIn(trx, ctx, group, toAdd, true);
    await this.groups.setMembershipsIn(
      trx,
      ctx,
      group,
      removed.flatMap((id) => users.get(id) ?? []),
      false,
    );
  }

  async delete(ctx: AuditContext, id: string, ifMatch?: string): Promise<void> {
    const w = this.deletion(ctx, id, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  deletion(ctx: AuditContext, id: string, ifMatch?: string): PreparedWrite<void> {
    return deletionOf(
      'group',
      ifMatch,
      (trx) => this.row(trx, id, true),
      (trx, row) => this.groups.deleteIn(trx, ctx, row),
    );
  }
}
