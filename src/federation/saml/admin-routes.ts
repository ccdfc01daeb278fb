import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { PrincipalRef } from '../../access/assignments.js';
import type { AuditContext } from '../../audit/actor.js';
import type { SigningKey, SigningKeys } from '../../keys/signing-keys.js';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import type { ServiceProvider, ServiceProviders } from './service-providers.js';

export interface SamlAdminOptions {
  serviceProviders: ServiceProviders;
  /** a group by id or display name (for assigning SPs to groups) */
  resolveGroup?: (ref: string) => Promise<PrincipalRef>;
  signingKeys: SigningKeys;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const Acs = Type.Object({
  url: Type.String(),
  binding: Type.String(),
  index: Type.Integer(),
  isDefault: Type.Boolean(),
});
const SpSchema = Type.Object({
  id: Type.String(),
  entityId: Type.String(),
  name: Type.String(),
  acsUrls: Type.Array(Acs),
  nameIdFormat: Type.String(),
  attributeMap: Type.Record(Type.String(), Type.String()),
  signingCertificates: Type.Array(Type.String()),
  requireSignedRequests: Type.Boolean(),
  minimumAuthnContext: Type.String(),
  signStatusResponses: Type.Boolean(),
  openToAll: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const SpBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    metadataXml: Type.Optional(
      Type.String({ maxLength: 512 * 1024, description: 'the SP metadata document' }),
    ),
    entityId: Type.Optional(Type.String({ maxLength: 1024 })),
    acsUrls: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })),
    nameIdFormat: Type.Optional(Type.String({ maxLength: 256 })),
    attributeMap: Type.Optional(
      Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 256 })),
    ),
    signingCertificates: Type.Optional(
      Type.Array(Type.String({ maxLength: 16384, description: 'PEM: verifies signed AuthnRequests' }), {
        maxItems: 10,
      }),
    ),
    requireSignedRequests: Type.Optional(Type.Boolean()),
    minimumAuthnContext: Type.Optional(
      Type.Union([Type.Literal('single-factor'), Type.Literal('mfa'), Type.Literal('phishing-resistant')], {
        description: 'the weakest sign-in an assertion to this SP may state, whatever the request asks',
      }),
    ),
    signStatusResponses: Type.Optional(
      Type.Boolean({ description: 'sign NoPassive/NoAuthnContext status responses (default true)' }),
    ),
    openToAll: Type.Optional(
      Type.Boolean({
        description: 'reachable by every active user while no group is assigned (default false)',
      }),
    ),
  },
  { additionalProperties: false },
);
const SpChanges = Type.Partial(SpBody, { additionalProperties: false });
const Groups = Type.Object(
  {
    groups: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      maxItems: 100,
      description: 'the groups whose members may sign in to the SP; empty: nobody unless openToAll',
    }),
  },
  { additionalProperties: false },
);
const KeySchema = Type.Object({
  id: Type.String(),
  state: Type.String(),
  algorithm: Type.String(),
  createdAt: Type.String(),
  activatedAt: Nullable(Type.String()),
  certificatePem: Type.String(),
});
const keyView = (k: SigningKey) => ({
  id: k.id,
  state: k.state,
  algorithm: k.algorithm,
  createdAt: k.createdAt,
  activatedAt: k.activatedAt,
  certificatePem: k.certificatePem,
});
const spView = (sp: ServiceProvider) => sp;

/** Admin API for SAML: service providers and signing keys. */
export const samlAdminApi: FastifyPluginAsync<SamlAdminOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['saml'];
  const Ref = Type.Object({ ref: Type.String({ maxLength: 1024 }) });

  app.get(
    '/saml/service-providers',
    {
      schema: {
        tags,
        summary: 'List SAML service providers',
        security,
        response: { 200: Type.Object({ items: Type.Array(SpSchema) }) },
      },
    },
    async () => ({ items: (await opts.serviceProviders.list()).map(spView) }),
  );
  app.post<{ Body: Static<typeof SpBody> }>(
    '/saml/service-providers',
    {
      schema: {
        tags,
        summary: 'Register a SAML service provider from its metadata or from an entity id and ACS URLs',
        security,
        body: SpBody,
        response: { 201: SpSchema, ...problemResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(spView(await opts.serviceProviders.add(opts.auditContext(req), req.body))),
  );
  app.get<{ Params: { ref: string } }>(
    '/saml/service-providers/:ref',
    {
      schema: {
        tags,
        summary: 'A service provider by id or entity id',
        security,
        params: Ref,
        response: { 200: SpSchema, ...problemResponses },
      },
    },
    async (req) => spView(await opts.serviceProviders.get(req.params.ref)),
  );
  app.patch<{ Params: { ref: string }; Body: Static<typeof SpChanges> }>(
    '/saml/service-providers/:ref',
    {
      schema: {
        tags,
        summary:
          'Change a service provider (re-import metadata, minimum authentication context, openness, …)',
        security,
        params: Ref,
        body: SpChanges,
        response: { 200: SpSchema, ...problemResponses },
      },
    },
    async (req) =>
      spView(await opts.serviceProviders.update(opts.auditContext(req), req.params.ref, req.body)),
  );
  app.get<{ Params: { ref: string } }>(
    '/saml/service-providers/:ref/groups',
    {
      schema: {
        tags,
        summary: 'The groups assigned to a service provider',
        security,
        params: Ref,
        response: { 200: Groups, ...problemResponses },
      },
    },
    async (req) => ({ groups: await opts.serviceProviders.groupsOf(req.params.ref) }),
  );
  app.put<{ Params: { ref: string }; Body: Static<typeof Groups> }>(
    '/saml/service-providers/:ref/groups',
    {
      schema: {
        tags,
        summary: 'Assign a service provider to exactly these groups (decide() lets only their members in)',
        security,
        params: Ref,
        body: Groups,
        response: { 200: Groups, ...problemResponses },
      },
    },
    async (req) => {
      const resolve = opts.resolveGroup;
      if (!resolve) throw new Error('resolveGroup is not configured');
      const groups = await Promise.all(req.body.groups.map((g) => resolve(g)));
      return {
        groups: await opts.serviceProviders.setGroups(opts.auditContext(req), req.params.ref, groups),
      };
    },
  );
  app.delete<{ Params: { ref: string } }>(
    '/saml/service-providers/:ref',
    {
      schema: {
        tags,
        summary: 'Remove a service provider',
        security,
        params: Ref,
        response: problemResponses,
      },
    },
    async (req, reply) => {
      await opts.serviceProviders.remove(opts.auditContext(req), req.params.ref);
      return reply.code(204).send();
    },
  );

  app.get(
    '/keys/saml',
    {
      config: { permission: 'keys:read' },
      schema: {
        tags,
        summary: 'SAML signing keys: current, and next during a rotation',
        security,
        response: { 200: Type.Object({ items: Type.Array(KeySchema) }) },
      },
    },
    async () => ({ items: (await opts.signingKeys.published('saml')).map(keyView) }),
  );
  app.post(
    '/keys/saml/rotate',
    {
      config: { permission: 'keys:write' },
      schema: {
        tags,
        summary: 'Stage a next signing key: published in the metadata now, used after the grace period',
        security,
        response: { 200: KeySchema, ...problemResponses },
      },
    },
    async (req) => keyView(await opts.signingKeys.rotate('saml', opts.auditContext(req))),
  );
  app.post(
    '/keys/saml/activate',
    {
      config: { permission: 'keys:write' },
      schema: {
        tags,
        summary: 'Start signing with the staged key now; the old key is retired',
        security,
        response: { 200: KeySchema, ...problemResponses },
      },
    },
    async (req) => keyView(await opts.signingKeys.activateNext('saml', opts.auditContext(req))),
  );
};
