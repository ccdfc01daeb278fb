import type { Group } from '../groups.js';
import { looksLikeId } from '../refs.js';
import { isObject } from './coerce.js';
import { invalidValue } from './errors.js';
import { GROUP_SCHEMA } from './schema.js';
import { etagOf } from './user-resource.js';

export interface MemberRef {
  id: string;
  userName: string;
}

/** The SCIM representation of a Ferry group; members are users (Ferry has no nested groups). */
export function toScimGroup(
  group: Group,
  members: MemberRef[] | undefined,
  base: string,
): Record<string, unknown> {
  const doc: Record<string, unknown> = { schemas: [GROUP_SCHEMA], id: group.id };
  if (group.externalId !== null) doc.externalId = group.externalId;
  doc.displayName = group.displayName;
  if (members && members.length > 0) {
    doc.members = members.map((m) => ({
      value: m.id,
      $ref: `${base}/Users/${m.id}`,
      display: m.userName,
      type: 'User',
    }));
  }
  doc.meta = {
    resourceType: 'Group',
    created: group.createdAt,
    lastModified: group.updatedAt,
    location: `${base}/Groups/${group.id}`,
    version: etagOf(group.version),
  };
  return doc;
}

export interface GroupState {
  displayName: string;
  externalId: string | null;
  /** member user ids, without duplicates */
  members: string[];
}

/** Reads a normalized SCIM Group into the directory's terms. */
export function groupStateOf(doc: Record<string, unknown>): GroupState {
  const displayName = typeof doc.displayName === 'string' ? doc.displayName : '';
  if (displayName.trim() === '') throw invalidValue('displayName is required');
  const members = new Set<string>();
  for (const m of (doc.members as unknown[] | undefined) ?? []) {
    if (!isObject(m) || typeof m.value !== 'string')
      throw invalidValue('every member needs a value (a user id)');
    if (typeof m.type === 'string' && m.type.toLowerCase() === 'group') {
      throw invalidValue('Ferry groups contain users only (nested groups are not supported)');
    }
    if (!looksLikeId(m.value)) throw invalidValue(`member ${m.value} is not a user id`);
    members.add(m.value.toLowerCase());
  }
  return {
    displayName,
    externalId: typeof doc.externalId === 'string' ? doc.externalId : null,
    members: [...members],
  };
}
