import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import type { Clock } from '../clock.js';
import { Nullable } from '../nullable-schema.js';
import { problemResponses } from '../problem-schema.js';
import type { CloudTrail } from './ingest.js';
import type { LeastPrivilege } from './least-privilege.js';
import { type ActivityViews, sinceOf } from './timeline.js';

export interface ActivityApiOptions {
  cloudtrail: CloudTrail;
  views: ActivityViews;
  leastPrivilege: LeastPrivilege;
  clock: Clock;
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  auditContext: (req: FastifyRequest) => AuditContext;
}

export const SourceSchema = Type.Object({
  id: Type.String(),
  bucket: Type.String(),
  prefix: Type.String(),
  region: Nullable(Type.String()),
  createdAt: Type.String(),
  lastSyncAt: Nullable(Type.String()),
  lastError: Nullable(Type.String()),
  positions: Type.Array(Type.Object({ folder: Type.String(), afterKey: Type.String() })),
});

const Skipped = Type.Object({
  bucket: Type.String(),
  key: Type.String(),
  reason: Type.String(),
  recordsKept: Type.Integer(),
});

export const SyncResultSchema = Type.Object({
  sources: Type.Array(
    Type.Object({
      sourceId: Type.String(),
      bucket: Type.String(),
      prefix: Type.String(),
      files: Type.Integer(),
      records: Type.Integer(),
      stored: Type.Integer(),
      duplicates: Type.Integer(),
      rejected: Type.Integer(),
      aheadOfClock: Type.Integer(),
      skipped: Type.Array(Skipped),
      error: Nullable(Type.String()),
      busy: Type.Optional(Type.Boolean()),
    }),
  ),
  stored: Type.Integer(),
  skipped: Type.Array(Skipped),
  pruned: Type.Integer(),
});
export type SyncResultView = Static<typeof SyncResultSchema>;

export const ActivityItemSchema = Type.Object({
  time: Type.String(),
  source: Type.Union([Type.Literal('ferry'), Type.Literal('cloudtrail')]),
  eventName: Type.String(),
  person: Nullable(Type.String()),
  accessKeyId: Nullable(Type.String()),
  account: Nullable(Type.String()),
  role: Nullable(Type.String()),
  outcome: Type.Union([
    Type.Literal('success'),
    Type.Literal('failure'),
    Type.Literal('error'),
    Type.Literal('denied'),
  ]),
  eventSource: Nullable(Type.String()),
  errorCode: Nullable(Type.String()),
  attribution: Nullable(Type.String()),
  issuedByFerry: Nullable(Type.Boolean()),
  sourceIpAddress: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  id: Type.String(),
});
export type ActivityItemView = Static<typeof ActivityItemSchema>;

const Ref = Type.String({ minLength: 1, maxLength: 256 });
const Since = Type.String({ minLength: 1, maxLength: 64 });

/**
 * Admin API for AWS activity: CloudTrail sources and sync under /api/v1/cloudtrail, timelines at
 * /api/v1/activity, least privilege from use at /api/v1/access/least-privilege.
 */
export const activityApi: FastifyPluginAsync<ActivityApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];

  app.get(
    '/cloudtrail/sources',
    {
      schema: {
        tags: ['activity'],
        summary: 'The S3 places CloudTrail log files are read from, with the position in each folder',
        security,
        response: { 200: Type.Object({ items: Type.Array(SourceSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: await opts.cloudtrail.sources() }),
  );

  app.post<{ Body: { bucket: string; prefix?: string; region?: string } }>(
    '/cloudtrail/sources',
    {
      schema: {
        tags: ['activity'],
        summary: "Read CloudTrail log files from a bucket (a trail's or an organization trail's)",
        security,
        body: Type.Object(
          {
            bucket: Type.String({ minLength: 3, maxLength: 63 }),
            prefix: Type.Optional(Type.String({ maxLength: 512 })),
            region: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: SourceSchema, ...problemResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await opts.cloudtrail.addSource(opts.auditContext(req), req.body)),
  );

  app.delete<{ Params: { id: string } }>(
    '/cloudtrail/sources/:id',
    {
      schema: {
        tags: ['activity'],
        summary: 'Stop reading a source (its records stay until retention removes them)',
        security,
        params: Type.Object({ id: Ref }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await opts.cloudtrail.removeSource(opts.auditContext(req), req.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/cloudtrail/sync',
    {
      schema: {
        tags: ['activity'],
        summary: 'Read new log files from every source now; malformed files are skipped and listed',
        security,
        response: { 200: SyncResultSchema, ...problemResponses },
      },
    },
    async (req) => opts.cloudtrail.sync(opts.auditContext(req), req.log),
  );

  app.get<{
    Querystring: { user?: string; account?: string; role?: string; since?: string; limit?: number };
  }>(
    '/activity',
    {
      schema: {
        tags: ['activity'],
        summary:
          "A timeline: Ferry's sign-ins, decisions and credentials, then the AWS calls made with them (by user, or by account and role)",
        security,
        querystring: Type.Object(
          {
            user: Type.Optional(Ref),
            account: Type.Optional(Ref),
            role: Type.Optional(Ref),
            since: Type.Optional(Since),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 20_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(ActivityItemSchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const { since, ...q } = req.query;
      return { items: await opts.views.timeline({ ...q, since: sinceOf(since, opts.clock, '24h') }) };
    },
  );

  app.get<{ Querystring: { account: string; role?: string; permissionSet?: string; since?: string } }>(
    '/access/least-privilege',
    {
      schema: {
        tags: ['activity'],
        summary:
          'Actions a role used (CloudTrail) vs what its policies allow, and a narrower policy checked against every recorded call',
        security,
        querystring: Type.Object(
          {
            account: Ref,
            role: Type.Optional(Ref),
            permissionSet: Type.Optional(Ref),
            since: Type.Optional(Since),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({}, { additionalProperties: true }), ...problemResponses },
      },
    },
    async (req) => {
      const { since, ...q } = req.query;
      return opts.leastPrivilege.report({ ...q, since: sinceOf(since, opts.clock, '30d') });
    },
  );
};
