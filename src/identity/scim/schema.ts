import { invalidPath } from './errors.js';

/** The schema URNs Ferry serves (RFC 7643 §8.7). */
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type AttrType = 'string' | 'boolean' | 'complex' | 'dateTime' | 'reference';

/** One attribute definition, as the /Schemas endpoint publishes it (RFC 7643 §7). */
export interface AttrDef {
  name: string;
  type: AttrType;
  multiValued: boolean;
  caseExact: boolean;
  mutability: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned: 'always' | 'never' | 'default' | 'request';
  required: boolean;
  uniqueness: 'none' | 'server' | 'global';
  description: string;
  subAttributes?: AttrDef[];
  canonicalValues?: string[];
}

const attr = (name: string, description: string, more: Partial<AttrDef> = {}): AttrDef => ({
  name,
  type: 'string',
  multiValued: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  required: false,
  uniqueness: 'none',
  description,
  ...more,
});
const complex = (name: string, description: string, subAttributes: AttrDef[], more: Partial<AttrDef> = {}) =>
  attr(name, description, { type: 'complex', subAttributes, ...more });
const multi = (name: string, description: string, subAttributes: AttrDef[], more: Partial<AttrDef> = {}) =>
  complex(name, description, subAttributes, { multiValued: true, ...more });
const typeAttr = (values: string[]) => attr('type', 'a label for the value', { canonicalValues: values });
const primary = attr('primary', 'the preferred value', { type: 'boolean' });

const meta = complex(
  'meta',
  'resource metadata',
  [
    attr('resourceType', 'User or Group', { mutability: 'readOnly', caseExact: true }),
    attr('created', 'when the resource was created', { type: 'dateTime', mutability: 'readOnly' }),
    attr('lastModified', 'when the resource last changed', { type: 'dateTime', mutability: 'readOnly' }),
    attr('location', 'the resource URI', { type: 'reference', mutability: 'readOnly', caseExact: true }),
    attr('version', 'the resource version (weak ETag)', { mutability: 'readOnly', caseExact: true }),
  ],
  { mutability: 'readOnly' },
);
const id = attr('id', 'identifier issued by Ferry', {
  mutability: 'readOnly',
  returned: 'always',
  caseExact: true,
  uniqueness: 'server',
});
const externalId = attr('externalId', "the provisioning client's identifier (Entra ID object id)", {
  caseExact: true,
});

export const userAttributes: AttrDef[] = [
  id,
  externalId,
  attr('userName', 'unique sign-in name (UPN)', { required: true, uniqueness: 'server' }),
  complex('name', "the person's name", [
    attr('formatted', 'full name, formatted for display'),
    attr('familyName', 'family name'),
    attr('givenName', 'given name'),
    attr('middleName', 'middle name'),
    attr('honorificPrefix', 'e.g. Ms.'),
    attr('honorificSuffix', 'e.g. III'),
  ]),
  attr('displayName', 'name shown to people'),
  attr('nickName', 'casual name'),
  attr('profileUrl', 'profile page', { type: 'reference' }),
  attr('title', 'job title'),
  attr('userType', 'e.g. Employee, Contractor'),
  attr('preferredLanguage', 'e.g. en-US'),
  attr('locale', 'e.g. en-US'),
  attr('timezone', 'e.g. Europe/Berlin'),
  attr('active', 'false disables the user and ends their access at once', { type: 'boolean' }),
  attr('password', 'initial password for Ferry sign-in', { mutability: 'writeOnly', returned: 'never' }),
  multi('emails', 'email addresses', [
    attr('value', 'the address'),
    attr('display', 'display form'),
    typeAttr(['work', 'home', 'other']),
    primary,
  ]),
  multi('phoneNumbers', 'phone numbers', [
    attr('value', 'the number'),
    attr('display', 'display form'),
    typeAttr(['work', 'home', 'mobile', 'fax', 'pager', 'other']),
    primary,
  ]),
  multi('addresses', 'postal addresses', [
    attr('formatted', 'full address'),
    attr('streetAddress', 'street'),
    attr('locality', 'city'),
    attr('region', 'state or region'),
    attr('postalCode', 'postal code'),
    attr('country', 'country'),
    typeAttr(['work', 'home', 'other']),
    primary,
  ]),
  multi(
    'groups',
    'groups the user belongs to (change them through /Groups)',
    [
      attr('value', 'group id', { mutability: 'readOnly', caseExact: true }),
      attr('$ref', 'group URI', { type: 'reference', mutability: 'readOnly', caseExact: true }),
      attr('display', 'group name', { mutability: 'readOnly' }),
      attr('type', 'direct', { mutability: 'readOnly', canonicalValues: ['direct'] }),
    ],
    { mutability: 'readOnly' },
  ),
  meta,
];

export const enterpriseAttributes: AttrDef[] = [
  attr('employeeNumber', 'employee number'),
  attr('costCenter', 'cost center'),
  attr('organization', 'organization'),
  attr('division', 'division'),
  attr('department', 'department'),
  complex('manager', "the user's manager", [
    attr('value', "the manager's id", { caseExact: true }),
    attr('$ref', "the manager's URI", { type: 'reference', caseExact: true }),
    attr('displayName', "the manager's name", { mutability: 'readOnly' }),
  ]),
];

export const groupAttributes: AttrDef[] = [
  id,
  externalId,
  attr('displayName', 'group name', { required: true, uniqueness: 'server' }),
  multi('members', 'users in the group', [
    attr('value', 'user id', { mutability: 'immutable', caseExact: true }),
    attr('$ref', 'user URI', { type: 'reference', mutability: 'immutable', caseExact: true }),
    attr('display', 'user name', { mutability: 'readOnly' }),
    attr('type', 'User', { mutability: 'immutable', canonicalValues: ['User'] }),
  ]),
  meta,
];

/** A resource type: its core schema and the extensions it may carry. */
export interface ResourceSchema {
  name: 'User' | 'Group';
  core: string;
  schemas: Record<string, AttrDef[]>;
}

export const USER: ResourceSchema = {
  name: 'User',
  core: USER_SCHEMA,
  schemas: { [USER_SCHEMA]: userAttributes, [ENTERPRISE_SCHEMA]: enterpriseAttributes },
};
export const GROUP: ResourceSchema = {
  name: 'Group',
  core: GROUP_SCHEMA,
  schemas: { [GROUP_SCHEMA]: groupAttributes },
};

/** An attribute reference resolved against a schema: names are canonical from here on. */
export interface AttrRef {
  /** the schema URN the attribute belongs to (core or an extension) */
  schema: string;
  attr: AttrDef;
  sub?: AttrDef;
}

export const findAttr = (defs: readonly AttrDef[], name: string): AttrDef | undefined => {
  const lower = name.toLowerCase();
  return defs.find((d) => d.name.toLowerCase() === lower);
};

/** The schema URN a name starts with (case-insensitively), if any, and the rest after its colon. */
export function splitUrn(rs: ResourceSchema, path: string): { schema: string; rest: string } | null {
  const lower = path.toLowerCase();
  for (const urn of Object.keys(rs.schemas)) {
    const u = urn.toLowerCase();
    if (lower === u) return { schema: urn, rest: '' };
    if (lower.startsWith(`${u}:`)) return { schema: urn, rest: path.slice(urn.length + 1) };
  }
  return null;
}

/**
 * Resolves `attr`, `attr.sub`, or either prefixed with a schema URN (`urn:…:enterprise:2.0:User:department`),
 * case-insensitively as RFC 7643 §2.1 requires. Throws `make(detail)` for an unknown name.
 */
export function resolveAttrPath(
  rs: ResourceSchema,
  path: string,
  make: (detail: string) => Error = invalidPath,
): AttrRef {
  const urn = splitUrn(rs, path);
  const schema = urn?.schema ?? rs.core;
  const rest = urn ? urn.rest : path;
  if (path.toLowerCase().startsWith('urn:') && !urn) throw make(`unknown schema in "${path}"`);
  const parts = rest.split('.');
  if (parts.length === 0 || parts.length > 2 || parts.some((p) => p.length === 0)) {
    throw make(`"${path}" is not an attribute path`);
  }
  const attrDef = findAttr(rs.schemas[schema]!, parts[0]!);
  if (!attrDef) throw make(`unknown attribute "${path}"`);
  if (parts.length === 1) return { schema, attr: attrDef };
  const sub = attrDef.subAttributes ? findAttr(attrDef.subAttributes, parts[1]!) : undefined;
  if (!sub) throw make(`unknown attribute "${path}"`);
  return { schema, attr: attrDef, sub };
}

/** The object that holds an attribute of `schema` in a resource: the resource itself or its extension object. */
export function containerOf(
  rs: ResourceSchema,
  doc: Record<string, unknown>,
  schema: string,
  create: boolean,
): Record<string, unknown> | undefined {
  if (schema === rs.core) return doc;
  const existing = doc[schema];
  if (existing && typeof existing === 'object' && !Array.isArray(existing)) {
    return existing as Record<string, unknown>;
  }
  if (!create) return undefined;
  const made: Record<string, unknown> = {};
  doc[schema] = made;
  return made;
}

export const refName = (r: AttrRef): string =>
  `${r.schema === USER_SCHEMA || r.schema === GROUP_SCHEMA ? '' : `${r.schema}:`}${r.attr.name}${r.sub ? `.${r.sub.name}` : ''}`;
