import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import { listIssued } from '../audit/issued.js';
import { InvalidInput } from '../errors.js';
import type { SshCaKey, SshCaKeys } from '../keys/ssh-ca-keys.js';
import { Nullable } from '../nullable-schema.js';
import { ProblemSchema, problemResponses } from '../problem-schema.js';
import type { Store } from '../store/open.js';
import type { SshAuthority } from './authority.js';

export interface SshApiOptions {
  authority: SshAuthority;
  caKeys: SshCaKeys;
  store: Store;
  /** a person acting for themself (requireCaller) */
  authenticateCaller: preHandlerAsyncHookHandler;
  /** an admin API token */
  authenticateAdmin: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const Certificate = Type.Object({
  certificate: Type.String({ description: 'the line to save as <key>-cert.pub' }),
  serial: Type.String(),
  keyId: Type.String({ description: '"<UPN> serial <n>": what sshd logs' }),
  principals: Type.Array(Type.String()),
  validAfter: Type.String(),
  validBefore: Type.String(),
  extensions: Type.Array(Type.String()),
  criticalOptions: Type.Record(Type.String(), Type.String()),
  caFingerprint: Type.String(),
  publicKeyFingerprint: Type.String(),
});
const UserCertBody = Type.Object(
  {
    publicKey: Type.String({ minLength: 1, maxLength: 16384, description: 'an OpenSSH public key line' }),
    host: Type.String({
      minLength: 1,
      maxLength: 253,
      description: 'the host to log in to, or * for every host',
    }),
    login: Type.Optional(
      Type.String({ minLength: 1, maxLength: 32, description: 'the Linux login (principal)' }),
    ),
    duration: Type.Optional(
      Type.Integer({ minimum: 1, description: 'seconds; capped at what access allows' }),
    ),
    caAlgorithm: Type.Optional(Type.Union([Type.Literal('ssh-ed25519'), Type.Literal('rsa-sha2-512')])),
  },
  { additionalProperties: false },
);
const HostCertBody = Type.Object(
  {
    publicKey: Type.String({ minLength: 1, maxLength: 16384 }),
    hostnames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 64 }),
    duration: Type.Optional(Type.Integer({ minimum: 60, description: 'seconds' })),
  },
  { additionalProperties: false },
);
const Issued = Type.Object({
  serial: Type.String(),
  subject: Type.String(),
  target: Type.String(),
  issuedAt: Type.String(),
  expiresAt: Type.String(),
  revokedAt: Nullable(Type.String()),
  keyId: Type.Optional(Type.String()),
});

type IssuedRow = Awaited<ReturnType<typeof listIssued>>[number];
const toIssued = (c: IssuedRow) => ({
  serial: c.externalId,
  subject: c.subject,
  target: c.target,
  issuedAt: c.issuedAt,
  expiresAt: c.expiresAt,
  revokedAt: c.revokedAt,
  keyId: typeof c.details.keyId === 'string' ? c.details.keyId : undefined,
});

/** The SSH CA under /api/v1/ssh: certificates for people, host certificates, and what servers fetch. */
export const sshApi: FastifyPluginAsync<SshApiOptions> = async (app, opts) => {
  const { authority } = opts;
  const tags = ['ssh'];

  app.post<{ Body: Static<typeof UserCertBody> }>(
    '/ssh/certificates',
    {
      onRequest: opts.authenticateCaller,
      schema: {
        tags,
        summary: 'A short-lived certificate for your public key, to log in to one host as one login',
        description: 'decide() answers for ssh:<login>@<host>; a denial is a 403 problem with its reasons.',
        security: [{ bearer: [] }],
        body: UserCertBody,
        response: { 201: Certificate, ...problemResponses, 403: ProblemSchema },
      },
    },
    async (req, reply) => {
      const caller = req.caller!;
      const cert = await authority.issueUserCertificate(
        caller.principal,
        {
          ip: req.ip,
          client: caller.via === 'access-token' ? 'cli' : 'browser',
          userAgent: req.headers['user-agent'] ?? null,
          deviceAssertion: String(req.headers['x-ferry-device-posture'] ?? '') || null,
        },
        req.body,
        opts.auditContext(req),
      );
      return reply.code(201).send(cert);
    },
  );

  app.get(
    '/ssh/ca.pub',
    { schema: { tags, summary: "The user CA keys, for sshd's TrustedUserCAKeys (public)" } },
    async (_req, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'public, max-age=300')
        .send(await authority.trustedUserCaKeys()),
  );

  app.get<{ Querystring: { hosts?: string } }>(
    '/ssh/known_hosts',
    {
      schema: {
        tags,
        summary: 'A @cert-authority known_hosts line for the host CA (public)',
        querystring: Type.Object(
          {
            hosts: Type.Optional(
              Type.String({ minLength: 1, maxLength: 1024, description: 'host pattern, default *' }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'public, max-age=300')
        .send(await authority.knownHosts(req.query.hosts ?? '*')),
  );

  app.get(
    '/ssh/krl',
    { schema: { tags, summary: "Revoked user certificates, for sshd's RevokedKeys (OpenSSH KRL, public)" } },
    async (_req, reply) =>
      reply
        .type('application/octet-stream')
        .header('cache-control', 'no-cache')
        .send(await authority.krl()),
  );

  app.post<{ Body: Static<typeof HostCertBody> }>(
    '/ssh/host-certificates',
    {
      config: { permission: 'keys:write' },
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: "Sign a server's host key for the given host names",
        security: [{ bearer: [] }],
        body: HostCertBody,
        response: { 201: Certificate, ...problemResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await authority.signHostCertificate(req.body, opts.auditContext(req))),
  );

  const CaKey = Type.Object({
    id: Type.String(),
    use: Type.String(),
    algorithm: Type.String(),
    publicKey: Type.String(),
    state: Type.String(),
    createdAt: Type.String(),
    activatedAt: Nullable(Type.String()),
  });
  const caView = (k: SshCaKey) => ({
    id: k.id,
    use: k.use,
    algorithm: k.algorithm,
    publicKey: k.publicKey,
    state: k.state,
    createdAt: k.createdAt,
    activatedAt: k.activatedAt,
  });
  const CaKeyBody = Type.Object(
    {
      use: Type.Union([Type.Literal('user'), Type.Literal('host')]),
      algorithm: Type.Union([Type.Literal('ssh-ed25519'), Type.Literal('rsa-sha2-512')]),
    },
    { additionalProperties: false },
  );

  app.get(
    '/ssh/ca-keys',
    {
      config: { permission: 'keys:read' },
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'The CA keys: current and staged ones are published, retired ones still name KRL entries',
        security: [{ bearer: [] }],
        response: { 200: Type.Object({ items: Type.Array(CaKey) }), ...problemResponses },
      },
    },
    async () => {
      await authority.ensureKeys();
      const all = [...(await opts.caKeys.all('user')), ...(await opts.caKeys.all('host'))];
      return { items: all.map(caView) };
    },
  );

  app.post<{ Body: Static<typeof CaKeyBody> }>(
    '/ssh/ca-keys/rotate',
    {
      config: { permission: 'keys:write' },
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Stage a new CA key: published at once, signs only once activated',
        security: [{ bearer: [] }],
        body: CaKeyBody,
        response: { 201: CaKey, ...problemResponses },
      },
    },
    async (req, reply) => {
      await authority.ensureKeys();
      const key = await opts.caKeys.rotate(req.body.use, req.body.algorithm, opts.auditContext(req));
      return reply.code(201).send(caView(key));
    },
  );

  app.post<{ Body: Static<typeof CaKeyBody> }>(
    '/ssh/ca-keys/activate',
    {
      config: { permission: 'keys:write' },
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Make the staged CA key current (after servers have fetched ca.pub or known_hosts)',
        security: [{ bearer: [] }],
        body: CaKeyBody,
        response: { 200: CaKey, ...problemResponses },
      },
    },
    async (req) =>
      caView(await opts.caKeys.activateNext(req.body.use, req.body.algorithm, opts.auditContext(req))),
  );

  app.get<{ Querystring: { user?: string; limit?: number } }>(
    '/ssh/certificates',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'User certificates issued, newest first',
        security: [{ bearer: [] }],
        querystring: Type.Object(
          {
            user: Type.Optional(Type.String({ maxLength: 256, description: 'user id' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Issued) }), ...problemResponses },
      },
    },
    async (req) => ({
      items: (
        await listIssued(opts.store.db, {
          kind: 'ssh-certificate',
          userId: req.query.user,
          limit: req.query.limit,
        })
      ).map(toIssued),
    }),
  );

  app.post<{ Params: { serial: string }; Body: { reason?: string } | undefined }>(
    '/ssh/certificates/:serial/revoke',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Revoke one user certificate: its serial goes into the KRL',
        security: [{ bearer: [] }],
        params: Type.Object({ serial: Type.String({ maxLength: 20 }) }),
        // The body ({ reason }) is optional, which a body schema can't say: checked below.
        response: { 200: Issued, ...problemResponses },
      },
    },
    async (req) => {
      const reason = (req.body as { reason?: unknown } | undefined)?.reason;
      if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500))
        throw new InvalidInput('reason is text of at most 500 characters', 'reason');
      return toIssued(
        await authority.revoke(
          opts.auditContext(req),
          req.params.serial,
          reason ?? 'revoked by an administrator',
        ),
      );
    },
  );
};
