import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import { DatabaseUnavailable, isDatabaseUnavailable, isStorageFull } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import { auditContextOf } from '../admin-auth.js';
import type { GroupDirectory } from '../groups.js';
import { PasswordPolicyViolation } from '../passwords.js';
import type { UserDirectory } from '../users.js';
import { BULK_MAX_PAYLOAD_BYTES, parseBulkRequest, runBulk } from './bulk.js';
import type { ScimConnections } from './connections.js';
import {
  resourceType,
  resourceTypesList,
  schemaResource,
  schemasList,
  serviceProviderConfig,
} from './discovery.js';
import { invalidSyntax, ScimError } from './errors.js';
import { ScimGroups } from './groups-endpoint.js';
import type { ScimLane } from './lane.js';
import { parseProjection } from './projection.js';
import { type ListQuery, notModified } from './request.js';
import { GROUP, USER } from './schema.js';
import { etagOf } from './user-resource.js';
import { ScimUsers } from './users-endpoint.js';

export interface ScimRoutesOptions {
  store: Store;
  users: UserDirectory;
  groups: GroupDirectory;
  connections: ScimConnections;
  /** the server's public URL; resource locations are `<publicUrl>/scim/v2/…` */
  publicUrl: () => string;
}

const SCIM_JSON = 'application/scim+json; charset=utf-8';

/** Any error as the SCIM Error schema (RFC 7644 §3.12): never a stack, never a problem+json. */
export function toScimError(err: unknown): ScimError {
  if (err instanceof ScimError) return err;
  if (err instanceof NotFound) return new ScimError(404, err.message);
  if (err instanceof Conflict) return new ScimError(409, err.message, 'uniqueness');
  if (err instanceof InvalidInput || err instanceof PasswordPolicyViolation) {
    return new ScimError(400, err.message, 'invalidValue');
  }
  if (err instanceof DatabaseUnavailable || isDatabaseUnavailable(err)) {
    return new ScimError(
      503,
      isStorageFull(err)
        ? 'the database has no room to write (disk full); retry shortly'
        : 'the database is unreachable; retry shortly',
    );
  }
  const fe = err as Partial<FastifyError>;
  if (fe.validation) return invalidSyntax(fe.message ?? 'invalid request');
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ScimError(
      413,
      `the request body is too large (a /Bulk request may have ${BULK_MAX_PAYLOAD_BYTES} bytes: maxPayloadSize in /ServiceProviderConfig)`,
    );
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 400) return invalidSyntax(fe.message ?? 'invalid request');
  if (status > 400 && status < 500) return new ScimError(status, fe.message ?? 'request rejected');
  return new ScimError(500, 'an unexpected error occurred');
}

const first = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;

const header = (req: FastifyRequest, name: string): string | undefined => first(req.headers[name]);

/**
 * The SCIM 2.0 service provider (RFC 7643/7644) Entra ID provisions into, mounted at /scim/v2.
 * Every path needs a provisioning connection's bearer token; every change is audited with the
 * connection as the actor.
 */
export const scimRoutes: FastifyPluginAsync<ScimRoutesOptions> = async (app, opts) => {
  const base = () => `${opts.publicUrl().replace(/\/$/, '')}/scim/v2`;
  // Each request acts in its connection's lane (issue 14 point 11), set when it authenticates.
  const lanes = new WeakMap<FastifyRequest, ScimLane>();
  const laneOf = (req: FastifyRequest): ScimLane => {
    const lane = lanes.get(req);
    if (!lane) throw new ScimError(401, 'a bearer token is required');
    return lane;
  };

  // application/scim+json and application/json alike; an empty body (DELETE from Entra) is no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/scim+json', 'application/json'],
    { parseAs: 'string' },
    (_req, body, done) => {
      const text = String(body);
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch {
        done(invalidSyntax('the body is not valid JSON'), undefined);
      }
    },
  );

  app.setErrorHandler((err, req, reply) => {
    const e = toScimError(err);
    if (e.status >= 500 && !isStorageFull(err)) req.log.error({ err }, 'SCIM request failed');
    if (e.status === 503) reply.header('retry-after', '5');
    return reply.code(e.status).type(SCIM_JSON).send(e.body());
  });

  app.addHook('onRequest', async (req, reply) => {
    const m = /^Bearer\s+(\S+)$/i.exec(header(req, 'authorization') ?? '');
    const connection = m ? await opts.connections.authenticate(m[1]!) : null;
    if (!connection) {
      reply.header('www-authenticate', m ? 'Bearer error="invalid_token"' : 'Bearer');
      throw new ScimError(401, m ? 'the bearer token is invalid or revoked' : 'a bearer token is required');
    }
    req.actor = { type: 'scim-connection', id: connection.id, name: connection.name };
    lanes.set(req, opts.connections.laneOf(connection));
  });

  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type(SCIM_JSON)
      .send(new ScimError(404, `no SCIM endpoint ${req.method} ${req.url.split('?')[0]}`).body()),
  );

  const send = (reply: FastifyReply, body: unknown, version?: number) => {
    if (version !== undefined) reply.header('etag', etagOf(version));
    return reply.type(SCIM_JSON).send(body);
  };

  app.get('/ServiceProviderConfig', async (_req, reply) => send(reply, serviceProviderConfig(base())));
  app.get('/Schemas', async (_req, reply) => send(reply, schemasList(base())));
  app.get<{ Params: { id: string } }>('/Schemas/:id', async (req, reply) =>
    send(reply, schemaResource(base(), req.params.id)),
  );
  app.get('/ResourceTypes', async (_req, reply) => send(reply, resourceTypesList(base())));
  app.get<{ Params: { id: string } }>('/ResourceTypes/:id', async (req, reply) =>
    send(reply, resourceType(base(), req.params.id)),
  );
  // RFC 7644 §3.7. The body limit is the advertised maxPayloadSize (a larger body is answered 413).
  app.post<{ Body: unknown }>('/Bulk', { bodyLimit: BULK_MAX_PAYLOAD_BYTES }, async (req, reply) => {
    const request = parseBulkRequest(req.body);
    const lane = laneOf(req);
    const result = await runBulk(
      {
        store: opts.store,
        users: new ScimUsers(opts.store, opts.users, base, lane),
        groups: new ScimGroups(opts.store, opts.groups, base, lane),
        baseUrl: base(),
        errorOf: (err) => {
          const e = toScimError(err);
          if (e.status >= 500 && !isStorageFull(err)) req.log.error({ err }, 'SCIM bulk operation failed');
          return e;
        },
      },
      auditContextOf(req),
      request,
    );
    return send(reply, result);
  });

  const endpoints = [
    {
      path: '/Users',
      rs: USER,
      of: (req: FastifyRequest) => new ScimUsers(opts.store, opts.users, base, laneOf(req)),
    },
    {
      path: '/Groups',
      rs: GROUP,
      of: (req: FastifyRequest) => new ScimGroups(opts.store, opts.groups, base, laneOf(req)),
    },
  ] as const;

  for (const { path, rs, of: ep } of endpoints) {
    const listQuery = (q: Record<string, unknown>): ListQuery => ({
      filter: first(q.filter),
      startIndex: first(q.startIndex),
      count: first(q.count),
      attributes: first(q.attributes),
      excludedAttributes: first(q.excludedAttributes),
    });

    app.get<{ Querystring: Record<string, unknown> }>(path, async (req, reply) =>
      send(reply, await ep(req).list(listQuery(req.query ?? {}))),
    );

    // POST /.search (RFC 7644 §3.4.3): the same query in a body, so filters stay out of URLs and logs.
    app.post<{ Body: Record<string, unknown> | undefined }>(`${path}/.search`, async (req, reply) => {
      const b = req.body ?? {};
      const list = (v: unknown) => (Array.isArray(v) ? v.join(',') : first(v));
      const num = (v: unknown) => (typeof v === 'number' ? String(v) : first(v));
      return send(
        reply,
        await ep(req).list({
          filter: first(b.filter),
          startIndex: num(b.startIndex),
          count: num(b.count),
          attributes: list(b.attributes),
          excludedAttributes: list(b.excludedAttributes),
        }),
      );
    });

    app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
      `${path}/:id`,
      async (req, reply) => {
        const projection = parseProjection(
          rs,
          first(req.query?.attributes),
          first(req.query?.excludedAttributes),
        );
        const { doc, version } = await ep(req).get(req.params.id, projection);
        if (notModified(header(req, 'if-none-match'), version))
          return reply.code(304).header('etag', etagOf(version)).send();
        return send(reply, doc, version);
      },
    );

    app.post<{ Body: unknown }>(path, async (req, reply) => {
      const { doc, version } = await ep(req).create(auditContextOf(req), req.body);
      return send(
        reply.code(201).header('location', (doc.meta as { location: string }).location),
        doc,
        version,
      );
    });

    app.put<{ Params: { id: string }; Body: unknown }>(`${path}/:id`, async (req, reply) => {
      await ep(req).replace(auditContextOf(req), req.params.id, req.body, header(req, 'if-match'));
      const { doc, version } = await ep(req).get(req.params.id, {});
      return send(reply, doc, version);
    });

    app.patch<{ Params: { id: string }; Body: unknown; Querystring: Record<string, unknown> }>(
      `${path}/:id`,
      async (req, reply) => {
        await ep(req).patch(auditContextOf(req), req.params.id, req.body, header(req, 'if-match'));
        const projection = parseProjection(
          rs,
          first(req.query?.attributes),
          first(req.query?.excludedAttributes),
        );
        const { doc, version } = await ep(req).get(req.params.id, projection);
        return send(reply, doc, version);
      },
    );

    app.delete<{ Params: { id: string } }>(`${path}/:id`, async (req, reply) => {
      await ep(req).delete(auditContextOf(req), req.params.id, header(req, 'if-match'));
      return reply.code(204).send();
    });
  }
};
