import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from '../nullable-schema.js';

/** Schemas of the directory API: they validate requests and make the OpenAPI document. */
export const Email = Type.Object(
  {
    value: Type.String({ maxLength: 256 }),
    type: Type.Optional(Type.String({ maxLength: 32 })),
    primary: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Attributes = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), {
  description: 'free directory attributes such as department, costCenter, jobTitle',
});

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  userName: Type.String({ description: 'the UPN, e.g. test-awsadmin@contoso.example' }),
  displayName: Nullable(Type.String()),
  givenName: Nullable(Type.String()),
  familyName: Nullable(Type.String()),
  emails: Type.Array(Email),
  active: Type.Boolean(),
  externalId: Nullable(Type.String()),
  attributes: Attributes,
  hasPassword: Type.Boolean(),
  groups: Type.Optional(Type.Array(Type.String())),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  version: Type.Integer(),
});

const nullableString = (maxLength: number) => Nullable(Type.String({ maxLength }));

export const NewUserBody = Type.Object(
  {
    userName: Type.String({ minLength: 1, maxLength: 256 }),
    displayName: Type.Optional(nullableString(256)),
    givenName: Type.Optional(nullableString(128)),
    familyName: Type.Optional(nullableString(128)),
    emails: Type.Optional(Type.Array(Email, { maxItems: 10 })),
    active: Type.Optional(Type.Boolean()),
    externalId: Type.Optional(nullableString(256)),
    attributes: Type.Optional(Attributes),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 256, writeOnly: true })),
  },
  { additionalProperties: false },
);
export type NewUserBody = Static<typeof NewUserBody>;

/** Every field of a new user may change; `active: false` disables, `password` resets. */
export const UserPatchBody = Type.Partial(NewUserBody, { additionalProperties: false });
export type UserPatchBody = Static<typeof UserPatchBody>;

export const GroupSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  displayName: Type.String(),
  description: Nullable(Type.String()),
  externalId: Nullable(Type.String()),
  members: Type.Optional(
    Type.Array(
      Type.Object({
        id: Type.String(),
        userName: Type.String(),
        displayName: Nullable(Type.String()),
      }),
    ),
  ),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  version: Type.Integer(),
});

export const NewGroupBody = Type.Object(
  {
    displayName: Type.String({ minLength: 1, maxLength: 256 }),
    description: Type.Optional(nullableString(1024)),
    externalId: Type.Optional(nullableString(256)),
  },
  { additionalProperties: false },
);
export type NewGroupBody = Static<typeof NewGroupBody>;

export const SessionSchema = Type.Object({
  id: Type.String(),
  userId: Type.String(),
  state: Type.String(),
  amr: Type.Array(Type.String()),
  authTime: Nullable(Type.String()),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  idleExpiresAt: Type.String(),
  absoluteExpiresAt: Type.String(),
  revokedAt: Nullable(Type.String()),
  revokedReason: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
});

export const ApiTokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  lastUsedAt: Nullable(Type.String()),
  expiresAt: Nullable(Type.String()),
  revokedAt: Nullable(Type.String()),
  scopes: Type.Array(Type.String(), { description: 'permissions it carries; `*` = all' }),
});

export const ListQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 256, description: 'substring of the name' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const Ref = Type.Object({
  ref: Type.String({ minLength: 1, maxLength: 256, description: 'id or name' }),
});
export type Ref = Static<typeof Ref>;

export { ProblemSchema, problemResponses } from '../problem-schema.js';
