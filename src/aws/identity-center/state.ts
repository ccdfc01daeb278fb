import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';
import type { RemoteGroup, RemoteUser } from './representation.js';

/** A user as Ferry last pushed it; `remoteId` null while a create is unconfirmed. */
export interface PushedUser {
  userId: string;
  userName: string;
  remoteId: string | null;
  pushed: RemoteUser;
}

export interface PushedGroup {
  groupId: string;
  displayName: string;
  remoteId: string | null;
  pushed: RemoteGroup;
}

/** What Ferry has pushed: read in one place so the planner and the pusher agree. */
export class PushState {
  constructor(private readonly db: Kysely<Database>) {}

  async users(ids?: string[]): Promise<Map<string, PushedUser>> {
    if (ids?.length === 0) return new Map();
    let q = this.db.selectFrom('identity_center_users').selectAll();
    if (ids) q = q.where('user_id', 'in', ids);
    const rows = await q.execute();
    return new Map(
      rows.map((r) => [
        r.user_id,
        {
          userId: r.user_id,
          userName: r.user_name,
          remoteId: r.remote_id,
          pushed: JSON.parse(r.pushed) as RemoteUser,
        },
      ]),
    );
  }

  async groups(ids?: string[]): Promise<Map<string, PushedGroup>> {
    if (ids?.length === 0) return new Map();
    let q = this.db.selectFrom('identity_center_groups').selectAll();
    if (ids) q = q.where('group_id', 'in', ids);
    const rows = await q.execute();
    return new Map(
      rows.map((r) => [
        r.group_id,
        {
          groupId: r.group_id,
          displayName: r.display_name,
          remoteId: r.remote_id,
          pushed: JSON.parse(r.pushed) as RemoteGroup,
        },
      ]),
    );
  }

  /** Pushed member ids per group. */
  async members(groupIds?: string[]): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    if (groupIds?.length === 0) return out;
    let q = this.db.selectFrom('identity_center_members').select(['group_id', 'user_id']);
    if (groupIds) q = q.where('group_id', 'in', groupIds);
    for (const r of await q.execute()) {
      const set = out.get(r.group_id) ?? new Set<string>();
      set.add(r.user_id);
      out.set(r.group_id, set);
    }
    return out;
  }

  async clear(trx: Kysely<Database>): Promise<void> {
    await trx.deleteFrom('identity_center_members').execute();
    await trx.deleteFrom('identity_center_groups').execute();
    await trx.deleteFrom('identity_center_users').execute();
  }
}
