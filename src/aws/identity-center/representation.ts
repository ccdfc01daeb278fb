import type { User } from '../../identity/users.js';

/**
 * A user as Identity Center stores it. Its SCIM endpoint requires userName, displayName and
 * name.givenName/familyName, and keeps one email, one phone number and one address (the primary).
 */
export interface RemoteUser {
  userName: string;
  externalId: string;
  displayName: string;
  name: { givenName: string; familyName: string };
  active: boolean;
  emails?: Array<{ value: string; type: string; primary: true }>;
  phoneNumbers?: Array<{ value: string; type: string; primary: true }>;
  title?: string;
}

const primaryOf = <T extends { primary?: boolean }>(values: T[]): T | undefined =>
  values.find((v) => v.primary) ?? values[0];

/** Ferry's user in Identity Center's shape; missing names fall back to the UPN's local part. */
export function remoteUserOf(user: User): RemoteUser {
  const local = user.userName.split('@')[0] || user.userName;
  const displayName =
    user.displayName?.trim() || [user.givenName, user.familyName].filter(Boolean).join(' ') || local;
  const out: RemoteUser = {
    userName: user.userName,
    externalId: user.id,
    displayName,
    name: {
      givenName: user.givenName?.trim() || displayName.split(' ')[0] || local,
      familyName: user.familyName?.trim() || displayName.split(' ').slice(1).join(' ') || local,
    },
    active: user.active,
  };
  const email = primaryOf(user.emails);
  if (email) out.emails = [{ value: email.value, type: email.type ?? 'work', primary: true }];
  const phone = primaryOf(user.phoneNumbers);
  if (phone) out.phoneNumbers = [{ value: phone.value, type: phone.type ?? 'work', primary: true }];
  const title = user.attributes.jobTitle ?? user.attributes.title;
  if (title) out.title = title;
  return out;
}

/** What is pushed of a group besides its members. */
export interface RemoteGroup {
  displayName: string;
  externalId: string;
}

/** The top-level attributes whose values differ: what a dry run shows as an update. */
export function changedFields(before: object, after: object): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}
