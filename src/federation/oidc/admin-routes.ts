import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import type { SigningKey, SigningKeys } from '../../keys/signing-keys.js';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import type { OidcClients } from './clients.js';
import { OIDC_SIGNING_PURPOSES } from './provider.js';

export interface OidcAdminOptions {
  clients: OidcClients;
  signingKeys: SigningKeys;
  /** tells the running provider its keys changed */
  keysChanged: () => void;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const ClientSchema = Type.Object({
  clientId: Type.String(),
  name: Type.String(),
  kind: Type.Union([Type.Literal('relying-party'), Type.Literal('workload')]),
  authMethod: Type.String(),
  redirectUris: Type.Array(Type.String()),
  postLogoutRedirectUris: Type.Array(Type.String()),
  idTokenSigningAlg: Type.String(),
  grantTypes: Type.Array(Type.String()),
  requirePkce: Type.Boolean(),
  active: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

/** A relying party's grants (default authorization_code + refresh_token). */
const GrantList = Type.Array(
  Type.Union([
    Type.Literal('authorization_code'),
    Type.Literal('refresh_token'),
    Type.Literal('device_code'),
  ]),
  { minItems: 1, maxItems: 3 },
);

const ClientBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    kind: Type.Union([Type.Literal('relying-party'), Type.Literal('workload')]),
    authMethod: Type.Optional(
      Type.Union([
        Type.Literal('client_secret_basic'),
        Type.Literal('client_secret_post'),
        Type.Literal('private_key_jwt'),
        Type.Literal('none'),
      ]),
    ),
    redirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })),
    postLogoutRedirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })),
    jwks: Type.Optional(
      Type.Object({
        keys: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, maxItems: 10 }),
      }),
    ),
    idTokenSigningAlg: Type.Optional(Type.Union([Type.Literal('ES256'), Type.Literal('RS256')])),
    grantTypes: Type.Optional(GrantList),
    requirePkce: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** What `PATCH /oidc/clients/{ref}` changes on a relying party; what is left out stays. */
const ClientChange = Type.Object(
  {
    grantTypes: Type.Optional(GrantList),
    requirePkce: Type.Optional(Type.Boolean()),
    redirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })),
    postLogoutRedirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })),
  },
  { additionalProperties: false },
);

/** Relying parties and workload identities of Ferry's OpenID provider (admin API). */
export const oidcAdminApi: FastifyPluginAsync<OidcAdminOptions> = async (app, opts) => {
  const tags = ['oidc'];
  const security = [{ bearer: [] }];
  app.addHook('onRequest', opts.authenticate);

  app.get<{ Querystring: { kind?: 'relying-party' | 'workload' } }>(
    '/oidc/clients',
    {
      schema: {
        tags,
        summary: 'List OpenID clients (relying parties and workload identities)',
        security,
        querystring: Type.Object(
          { kind: Type.Optional(Type.Union([Type.Literal('relying-party'), Type.Literal('workload')])) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(ClientSchema) }), ...problemResponses },
      },
    },
    async (req) => ({ items: await opts.clients.list(req.query.kind) }),
  );

  app.post<{ Body: Static<typeof ClientBody> }>(
    '/oidc/clients',
    {
      schema: {
        tags,
        summary: 'Register a relying party or a workload identity; the secret is in this answer only',
        security,
        body: ClientBody,
        response: {
          201: Type.Object({ client: ClientSchema, clientSecret: Nullable(Type.String()) }),
          ...problemResponses,
        },
      },
    },
    async (req, reply) => {
      const { client, secret } = await opts.clients.create(opts.auditContext(req), req.body);
      return reply.code(201).header('cache-control', 'no-store').send({ client, clientSecret: secret });
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/oidc/clients/:ref',
    {
      schema: {
        tags,
        summary: 'One OpenID client, by client id or name',
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 128 }) }),
        response: { 200: ClientSchema, ...problemResponses },
      },
    },
    async (req) => opts.clients.get(req.params.ref),
  );

  app.patch<{ Params: { ref: string }; Body: Static<typeof ClientChange> }>(
    '/oidc/clients/:ref',
    {
      schema: {
        tags,
        summary: "Change a relying party's grants, PKCE rule or redirect URIs",
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 128 }) }),
        body: ClientChange,
        response: { 200: ClientSchema, ...problemResponses },
      },
    },
    async (req) => opts.clients.update(opts.auditContext(req), req.params.ref, req.body),
  );

  app.delete<{ Params: { ref: string } }>(
    '/oidc/clients/:ref',
    {
      schema: {
        tags,
        summary: 'Remove a client, its tokens and (for a workload) its assignments',
        security,
        params: Type.Object({ ref: Type.String({ maxLength: 128 }) }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await opts.clients.remove(opts.auditContext(req), req.params.ref);
      return reply.code(204).send();
    },
  );

  const KeySchema = Type.Object({
    id: Type.String(),
    purpose: Type.String(),
    state: Type.String(),
    algorithm: Type.String(),
    createdAt: Type.String(),
    activatedAt: Nullable(Type.String()),
  });
  const keyView = (k: SigningKey) => ({
    id: k.id,
    purpose: k.purpose,
    state: k.state,
    algorithm: k.algorithm,
    createdAt: k.createdAt,
    activatedAt: k.activatedAt,
  });
  const keys = { tags: ['keys'], security };

  app.get(
    '/keys/oidc',
    {
      config: { permission: 'keys:read' },
      schema: {
        ...keys,
        summary: 'OpenID signing keys (ES256 and RS256): current, and next during a rotation',
        response: { 200: Type.Object({ items: Type.Array(KeySchema) }) },
      },
    },
    async () => ({
      items: (await Promise.all(OIDC_SIGNING_PURPOSES.map((p) => opts.signingKeys.published(p))))
        .flat()
        .map(keyView),
    }),
  );
  app.post(
    '/keys/oidc/rotate',
    {
      config: { permission: 'keys:write' },
      schema: {
        ...keys,
        summary: 'Stage next ES256 and RS256 keys: in the JWKS now, signing after the grace period',
        response: { 200: Type.Object({ items: Type.Array(KeySchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const ctx = opts.auditContext(req);
      const staged: SigningKey[] = [];
      for (const purpose of OIDC_SIGNING_PURPOSES) staged.push(await opts.signingKeys.rotate(purpose, ctx));
      opts.keysChanged();
      return { items: staged.map(keyView) };
    },
  );
  app.post(
    '/keys/oidc/activate',
    {
      config: { permission: 'keys:write' },
      schema: {
        ...keys,
        summary: 'Start signing with the staged keys now; the old ones leave the JWKS',
        response: { 200: Type.Object({ items: Type.Array(KeySchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const ctx = opts.auditContext(req);
      const active: SigningKey[] = [];
      for (const purpose of OIDC_SIGNING_PURPOSES)
        active.push(await opts.signingKeys.activateNext(purpose, ctx));
      opts.keysChanged();
      return { items: active.map(keyView) };
    },
  );
};
