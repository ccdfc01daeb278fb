import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import { InvalidInput } from '../../errors.js';
import { Nullable } from '../../nullable-schema.js';
import { problemResponses } from '../../problem-schema.js';
import { RULES, type RuleId, SEVERITIES } from '../detections/finding.js';
import type { Detections } from '../detections/service.js';
import type { AlertDelivery } from './delivery.js';
import type { AlertSinks, SinkInput } from './sinks.js';

export interface AlertsApiOptions {
  detections: Detections;
  sinks: AlertSinks;
  delivery: AlertDelivery;
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  auditContext: (req: FastifyRequest) => AuditContext;
}

const Severity = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));

export const AlertSchema = Type.Object({
  id: Type.String(),
  rule: Type.String(),
  severity: Type.String(),
  title: Type.String(),
  subject: Type.String(),
  account: Nullable(Type.String()),
  firstSeenAt: Type.String(),
  lastSeenAt: Type.String(),
  occurrences: Type.Integer(),
  evidence: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  suppressedReason: Nullable(Type.String()),
  createdAt: Type.String(),
  deliveries: Type.Array(
    Type.Object({
      sink: Type.String(),
      state: Type.String(),
      attempts: Type.Integer(),
      lastError: Nullable(Type.String()),
      deliveredAt: Nullable(Type.String()),
    }),
  ),
});

export const SinkSchema = Type.Object({
  name: Type.String(),
  type: Type.String(),
  minSeverity: Type.String(),
  settings: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String(),
  createdBy: Type.String(),
});

const SinkBody = Type.Union([
  Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 64 }),
      type: Type.Literal('webhook'),
      url: Type.String({ minLength: 1, maxLength: 2048 }),
      secret: Type.String({ minLength: 32, maxLength: 512 }),
      minSeverity: Type.Optional(Severity),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 64 }),
      type: Type.Literal('slack'),
      url: Type.String({ minLength: 1, maxLength: 2048 }),
      minSeverity: Type.Optional(Severity),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 64 }),
      type: Type.Literal('email'),
      host: Type.String({ minLength: 1, maxLength: 255 }),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      secure: Type.Optional(Type.Boolean()),
      requireTls: Type.Optional(Type.Boolean()),
      user: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
      password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
      from: Type.String({ minLength: 3, maxLength: 320 }),
      to: Type.Array(Type.String({ minLength: 3, maxLength: 320 }), { minItems: 1, maxItems: 50 }),
      minSeverity: Type.Optional(Severity),
    },
    { additionalProperties: false },
  ),
]);

/**
 * Admin API for detections and alerts under /api/v1/alerts: recent alerts, the sinks (never their
 * secrets), and a sample sent to one sink.
 */
export const alertsApi: FastifyPluginAsync<AlertsApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['alerts'];

  app.get<{ Querystring: { limit?: number; since?: string; rule?: string } }>(
    '/alerts',
    {
      schema: {
        tags,
        summary: 'Recent alerts, newest first, with their deliveries',
        security,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            since: Type.Optional(Type.String({ format: 'date-time' })),
            rule: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ alerts: Type.Array(AlertSchema) }), ...problemResponses },
      },
    },
    async (req) => {
      const { limit, since, rule } = req.query;
      if (rule !== undefined && !(RULES as readonly string[]).includes(rule))
        throw new InvalidInput(`rule must be one of ${RULES.join(', ')}`, 'rule');
      return {
        alerts: await opts.detections.list({
          limit,
          ...(since ? { since: new Date(since) } : {}),
          ...(rule ? { rule: rule as RuleId } : {}),
        }),
      };
    },
  );

  app.get(
    '/alerts/sinks',
    {
      schema: {
        tags,
        summary: 'Where alerts go (never their secrets)',
        security,
        response: { 200: Type.Object({ sinks: Type.Array(SinkSchema) }), ...problemResponses },
      },
    },
    async () => ({ sinks: await opts.sinks.list() }),
  );

  app.post<{ Body: SinkInput }>(
    '/alerts/sinks',
    {
      schema: {
        tags,
        summary:
          'Add a sink: an HMAC-signed webhook, a Slack incoming webhook or e-mail over SMTP (400 alert-sink-target-refused when its host resolves to an internal address; 409 alert-sink-declared-in-config when the config file declares the name)',
        security,
        body: SinkBody,
        response: { 201: SinkSchema, ...problemResponses },
      },
    },
    async (req, reply) => reply.code(201).send(await opts.sinks.add(opts.auditContext(req), req.body)),
  );

  app.delete<{ Params: { name: string } }>(
    '/alerts/sinks/:name',
    {
      schema: {
        tags,
        summary:
          'Remove a sink (pending deliveries to it are recorded as failed); a sink the config file declares is removed there (409 alert-sink-declared-in-config)',
        security,
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      await opts.sinks.remove(opts.auditContext(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { name: string } }>(
    '/alerts/sinks/:name/test',
    {
      schema: {
        tags,
        summary:
          'Send a sample alert to one sink now (502 alert-sink-unreachable with the reason when it fails)',
        security,
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ sent: Type.Literal(true), alert: AlertSchema }), ...problemResponses },
      },
    },
    async (req) => ({
      sent: true as const,
      alert: await opts.delivery.test(opts.auditContext(req), req.params.name),
    }),
  );
};
