import type { Kysely } from 'kysely';
import { type User, userFromRow } from '../../identity/users.js';
import type { Database } from '../../store/schema.js';
import { changedFields, type RemoteGroup, type RemoteUser, remoteUserOf } from './representation.js';
import { PushState } from './state.js';

/** One change to make in Identity Center; each is idempotent, so a plan can be re-run after a crash. */
export type PushStep =
  | { kind: 'user.create'; userId: string; userName: string; user: RemoteUser }
  | { kind: 'user.update'; userId: string; userName: string; user: RemoteUser; fields: string[] }
  | { kind: 'user.delete'; userId: string; userName: string }
  | { kind: 'group.create'; groupId: string; displayName: string; group: RemoteGroup }
  | { kind: 'group.rename'; groupId: string; displayName: string; group: RemoteGroup }
  | { kind: 'group.delete'; groupId: string; displayName: string }
  | {
      kind: 'members.add' | 'members.remove';
      groupId: string;
      displayName: string;
      members: Array<{ userId: string; userName: string }>;
    };

export interface PushPlan {
  steps: PushStep[];
}

/** Which part of the directory to compare: everything (`ferry scim push`) or what one event touched. */
export interface PlanScope {
  userIds?: string[];
  groupIds?: string[];
}

/**
 * Compares Ferry's directory with what was pushed and lists the steps that make Identity Center
 * match: users first (groups reference them), then groups, memberships, and deletions last.
 */
export async function planPush(db: Kysely<Database>, scope: PlanScope = {}): Promise<PushPlan> {
  const state = new PushState(db);
  const all = scope.userIds === undefined && scope.groupIds === undefined;
  const userIds = all ? undefined : (scope.userIds ?? []);
  const groupIds = all ? undefined : (scope.groupIds ?? []);

  const users = await ferryUsers(db, userIds);
  const pushedUsers = await state.users(userIds);
  const groups = await ferryGroups(db, groupIds);
  const pushedGroups = await state.groups(groupIds);
  const desired = await ferryMembers(db, groupIds);
  const pushedMembers = await state.members(groupIds);

  const steps: PushStep[] = [];
  const deletes: PushStep[] = [];
  for (const user of users) {
    const want = remoteUserOf(user);
    const had = pushedUsers.get(user.id);
    if (!had || had.remoteId === null) {
      steps.push({ kind: 'user.create', userId: user.id, userName: user.userName, user: want });
      continue;
    }
    const fields = changedFields(had.pushed, want);
    if (fields.length > 0)
      steps.push({ kind: 'user.update', userId: user.id, userName: user.userName, user: want, fields });
  }
  const present = new Set(users.map((u) => u.id));
  for (const had of pushedUsers.values())
    if (!present.has(had.userId))
      deletes.push({ kind: 'user.delete', userId: had.userId, userName: had.userName });

  const names = await userNames(db, [
    ...new Set([...desired.values(), ...pushedMembers.values()].flatMap((s) => [...s])),
  ]);
  const memberList = (ids: Iterable<string>) =>
    [...ids].sort().map((userId) => ({ userId, userName: names.get(userId)?.userName ?? userId }));
  const groupDeletes: PushStep[] = [];
  for (const group of groups) {
    const want: RemoteGroup = { displayName: group.displayName, externalId: group.id };
    const had = pushedGroups.get(group.id);
    if (!had || had.remoteId === null)
      steps.push({ kind: 'group.create', groupId: group.id, displayName: group.displayName, group: want });
    else if (changedFields(had.pushed, want).length > 0)
      steps.push({ kind: 'group.rename', groupId: group.id, displayName: group.displayName, group: want });
    const wanted = desired.get(group.id) ?? new Set<string>();
    const pushed = pushedMembers.get(group.id) ?? new Set<string>();
    const add = [...wanted].filter((id) => !pushed.has(id));
    // A deleted user left every group with its own deletion: Identity Center drops its memberships.
    const remove = [...pushed].filter((id) => !wanted.has(id) && names.get(id)?.inFerry === true);
    if (add.length > 0)
      steps.push({
        kind: 'members.add',
        groupId: group.id,
        displayName: group.displayName,
        members: memberList(add),
      });
    if (remove.length > 0)
      steps.push({
        kind: 'members.remove',
        groupId: group.id,
        displayName: group.displayName,
        members: memberList(remove),
      });
  }
  const groupsPresent = new Set(groups.map((g) => g.id));
  for (const had of pushedGroups.values())
    if (!groupsPresent.has(had.groupId))
      groupDeletes.push({ kind: 'group.delete', groupId: had.groupId, displayName: had.displayName });
  return { steps: [...steps, ...groupDeletes, ...deletes] };
}

async function ferryUsers(db: Kysely<Database>, ids: string[] | undefined): Promise<User[]> {
  if (ids?.length === 0) return [];
  let q = db.selectFrom('users').selectAll().orderBy('user_name_key');
  if (ids) q = q.where('id', 'in', ids);
  return (await q.execute()).map(userFromRow);
}

async function ferryGroups(db: Kysely<Database>, ids: string[] | undefined) {
  if (ids?.length === 0) return [];
  let q = db.selectFrom('groups').select(['id', 'display_name']).orderBy('display_name_key');
  if (ids) q = q.where('id', 'in', ids);
  return (await q.execute()).map((g) => ({ id: g.id, displayName: g.display_name }));
}

async function ferryMembers(
  db: Kysely<Database>,
  groupIds: string[] | undefined,
): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (groupIds?.length === 0) return out;
  let q = db.selectFrom('group_members').select(['group_id', 'user_id']);
  if (groupIds) q = q.where('group_id', 'in', groupIds);
  for (const r of await q.execute()) {
    const set = out.get(r.group_id) ?? new Set<string>();
    set.add(r.user_id);
    out.set(r.group_id, set);
  }
  return out;
}

/** userName per id, and whether the user still exists in Ferry. */
async function userNames(
  db: Kysely<Database>,
  ids: string[],
): Promise<Map<string, { userName: string; inFerry: boolean }>> {
  const out = new Map<string, { userName: string; inFerry: boolean }>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const r of await db
      .selectFrom('users')
      .select(['id', 'user_name'])
      .where('id', 'in', chunk)
      .execute())
      out.set(r.id, { userName: r.user_name, inFerry: true });
    for (const r of await db
      .selectFrom('identity_center_users')
      .select(['user_id', 'user_name'])
      .where('user_id', 'in', chunk)
      .execute())
      if (!out.has(r.user_id)) out.set(r.user_id, { userName: r.user_name, inFerry: false });
  }
  return out;
}
