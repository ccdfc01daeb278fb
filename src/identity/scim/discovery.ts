import { BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_BYTES } from './bulk.js';
import { scimNotFound } from './errors.js';
import { listResponse, MAX_RESULTS } from './request.js';
import {
  type AttrDef,
  ENTERPRISE_SCHEMA,
  enterpriseAttributes,
  GROUP_SCHEMA,
  groupAttributes,
  USER_SCHEMA,
  userAttributes,
} from './schema.js';

/** What Ferry's SCIM service supports (RFC 7643 §5). */
export function serviceProviderConfig(base: string) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    documentationUri: 'https://ferry.dev/docs/scim',
    patch: { supported: true },
    bulk: { supported: true, maxOperations: BULK_MAX_OPERATIONS, maxPayloadSize: BULK_MAX_PAYLOAD_BYTES },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: true },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'A provisioning connection token from `ferry scim token create`',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

const published = (a: AttrDef): Record<string, unknown> => ({
  name: a.name,
  type: a.type,
  multiValued: a.multiValued,
  description: a.description,
  required: a.required,
  caseExact: a.caseExact,
  mutability: a.mutability,
  returned: a.returned,
  uniqueness: a.uniqueness,
  ...(a.canonicalValues ? { canonicalValues: a.canonicalValues } : {}),
  ...(a.type === 'reference' ? { referenceTypes: ['uri'] } : {}),
  ...(a.subAttributes ? { subAttributes: a.subAttributes.map(published) } : {}),
});

const SCHEMAS = [
  { id: USER_SCHEMA, name: 'User', description: 'User Account', attributes: userAttributes },
  {
    id: ENTERPRISE_SCHEMA,
    name: 'EnterpriseUser',
    description: 'Enterprise User',
    attributes: enterpriseAttributes,
  },
  { id: GROUP_SCHEMA, name: 'Group', description: 'Group', attributes: groupAttributes },
];

export function schemaResource(base: string, id: string) {
  const s = SCHEMAS.find((x) => x.id.toLowerCase() === id.toLowerCase());
  if (!s) throw scimNotFound('Schema', id);
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: s.id,
    name: s.name,
    description: s.description,
    attributes: s.attributes.filter((a) => a.name !== 'id' && a.name !== 'meta').map(published),
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${s.id}` },
  };
}

export const schemasList = (base: string) => {
  const all = SCHEMAS.map((s) => schemaResource(base, s.id));
  return listResponse(all.length, { startIndex: 1, count: all.length }, all);
};

const RESOURCE_TYPES = [
  {
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'User Account',
    schema: USER_SCHEMA,
    schemaExtensions: [{ schema: ENTERPRISE_SCHEMA, required: false }],
  },
  {
    id: 'Group',
    name: 'Group',
    endpoint: '/Groups',
    description: 'Group',
    schema: GROUP_SCHEMA,
    schemaExtensions: [],
  },
];

export function resourceType(base: string, id: string) {
  const t = RESOURCE_TYPES.find((x) => x.id.toLowerCase() === id.toLowerCase());
  if (!t) throw scimNotFound('ResourceType', id);
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    ...t,
    meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/${t.id}` },
  };
}

export const resourceTypesList = (base: string) => {
  const all = RESOURCE_TYPES.map((t) => resourceType(base, t.id));
  return listResponse(all.length, { startIndex: 1, count: all.length }, all);
};
