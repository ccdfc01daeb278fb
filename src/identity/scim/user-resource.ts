import type { Address, Email, PhoneNumber, User } from '../users.js';
import { isObject } from './coerce.js';
import { invalidValue } from './errors.js';
import { ENTERPRISE_SCHEMA, USER_SCHEMA } from './schema.js';

/**
 * Which SCIM attributes live in a Ferry user's free `attributes` map, and under which key. The keys
 * are the directory's own (department, costCenter, jobTitle…), so the admin API, SAML attribute maps
 * and session tags see what Entra ID provisioned. Other keys in the map are left alone by SCIM.
 */
const CORE_KEYS = {
  title: 'jobTitle',
  nickName: 'nickName',
  profileUrl: 'profileUrl',
  userType: 'userType',
  preferredLanguage: 'preferredLanguage',
  locale: 'locale',
  timezone: 'timezone',
} as const;
const NAME_KEYS = {
  formatted: 'name.formatted',
  middleName: 'name.middleName',
  honorificPrefix: 'name.honorificPrefix',
  honorificSuffix: 'name.honorificSuffix',
} as const;
const ENTERPRISE_KEYS = ['employeeNumber', 'costCenter', 'organization', 'division', 'department'] as const;
const MANAGER_KEY = 'manager';

export const SCIM_ATTRIBUTE_KEYS: readonly string[] = [
  ...Object.values(CORE_KEYS),
  ...Object.values(NAME_KEYS),
  ...ENTERPRISE_KEYS,
  MANAGER_KEY,
];

export interface UserGroupRef {
  id: string;
  displayName: string;
}

/** The SCIM representation of a Ferry user, complete (projection happens later). */
export function toScimUser(user: User, groups: UserGroupRef[], base: string): Record<string, unknown> {
  const a = user.attributes;
  const doc: Record<string, unknown> = { schemas: [USER_SCHEMA], id: user.id };
  if (user.externalId !== null) doc.externalId = user.externalId;
  doc.userName = user.userName;
  const name: Record<string, string> = {};
  if (user.givenName !== null) name.givenName = user.givenName;
  if (user.familyName !== null) name.familyName = user.familyName;
  for (const [sub, key] of Object.entries(NAME_KEYS)) if (a[key] !== undefined) name[sub] = a[key];
  if (Object.keys(name).length > 0) doc.name = name;
  if (user.displayName !== null) doc.displayName = user.displayName;
  for (const [attr, key] of Object.entries(CORE_KEYS)) if (a[key] !== undefined) doc[attr] = a[key];
  doc.active = user.active;
  if (user.emails.length > 0) doc.emails = user.emails;
  if (user.phoneNumbers.length > 0) doc.phoneNumbers = user.phoneNumbers;
  if (user.addresses.length > 0) doc.addresses = user.addresses;
  if (groups.length > 0) {
    doc.groups = groups.map((g) => ({
      value: g.id,
      $ref: `${base}/Groups/${g.id}`,
      display: g.displayName,
      type: 'direct',
    }));
  }
  const ext: Record<string, unknown> = {};
  for (const key of ENTERPRISE_KEYS) if (a[key] !== undefined) ext[key] = a[key];
  if (a[MANAGER_KEY] !== undefined)
    ext.manager = { value: a[MANAGER_KEY], $ref: `${base}/Users/${a[MANAGER_KEY]}` };
  if (Object.keys(ext).length > 0) {
    doc[ENTERPRISE_SCHEMA] = ext;
    (doc.schemas as string[]).push(ENTERPRISE_SCHEMA);
  }
  doc.meta = {
    resourceType: 'User',
    created: user.createdAt,
    lastModified: user.updatedAt,
    location: `${base}/Users/${user.id}`,
    version: etagOf(user.version),
  };
  return doc;
}

export const etagOf = (version: number): string => `W/"${version}"`;

/** What a SCIM User document says about a Ferry user. */
export interface UserState {
  userName: string;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  externalId: string | null;
  emails: Email[];
  phoneNumbers: PhoneNumber[];
  addresses: Address[];
  active: boolean | undefined;
  /** the SCIM-managed keys of `attributes` (absent ones are removed) */
  scimAttributes: Record<string, string>;
  password: string | undefined;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function checkPrimary(list: Array<{ primary?: boolean }>, what: string): void {
  if (list.filter((e) => e.primary === true).length > 1) {
    throw invalidValue(`at most one of ${what} may be primary`);
  }
}

/** Reads a normalized SCIM User (see coerceResource) into the directory's terms. */
export function userStateOf(doc: Record<string, unknown>): UserState {
  const userName = str(doc.userName);
  if (userName === null || userName.trim() === '') throw invalidValue('userName is required');
  const name = isObject(doc.name) ? doc.name : {};
  const ext = isObject(doc[ENTERPRISE_SCHEMA]) ? (doc[ENTERPRISE_SCHEMA] as Record<string, unknown>) : {};
  const scimAttributes: Record<string, string> = {};
  for (const [attr, key] of Object.entries(CORE_KEYS)) {
    const v = str(doc[attr]);
    if (v !== null) scimAttributes[key] = v;
  }
  for (const [sub, key] of Object.entries(NAME_KEYS)) {
    const v = str(name[sub]);
    if (v !== null) scimAttributes[key] = v;
  }
  for (const key of ENTERPRISE_KEYS) {
    const v = str(ext[key]);
    if (v !== null) scimAttributes[key] = v;
  }
  const manager = isObject(ext.manager) ? str(ext.manager.value) : null;
  if (manager !== null) scimAttributes[MANAGER_KEY] = manager;
  const emails = ((doc.emails as Email[] | undefined) ?? []).filter((e) => typeof e.value === 'string');
  const phoneNumbers = ((doc.phoneNumbers as PhoneNumber[] | undefined) ?? []).filter(
    (e) => typeof e.value === 'string',
  );
  const addresses = (doc.addresses as Address[] | undefined) ?? [];
  checkPrimary(emails, 'emails');
  checkPrimary(phoneNumbers, 'phoneNumbers');
  checkPrimary(addresses, 'addresses');
  return {
    userName,
    displayName: str(doc.displayName),
    givenName: str(name.givenName),
    familyName: str(name.familyName),
    externalId: str(doc.externalId),
    emails,
    phoneNumbers,
    addresses,
    active: typeof doc.active === 'boolean' ? doc.active : undefined,
    scimAttributes,
    password: str(doc.password) ?? undefined,
  };
}

/** A user's attributes with the SCIM-managed keys replaced by the given ones. */
export function mergeAttributes(
  current: Record<string, string>,
  scim: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(current)) if (!SCIM_ATTRIBUTE_KEYS.includes(k)) out[k] = v;
  return { ...out, ...scim };
}
