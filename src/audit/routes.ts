import { Readable } from 'node:stream';
import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import { InvalidInput } from '../errors.js';
import type { AuditSigningKeys } from '../keys/audit-signing-keys.js';
import { Nullable } from '../nullable-schema.js';
import type { Store } from '../store/open.js';
import type { ArchiveStore } from './archive.js';
import { type EventExportFormat, exportEvents, OCSF_VERSION } from './export.js';
import { latestAudit, listAudit } from './ledger.js';
import { headFromRow, verifyLedger } from './verify.js';

export interface AuditApiOptions {
  store: Store;
  /** the keys signed tree heads are checked with */
  keys: AuditSigningKeys;
  /** authentication for the audit API (the admin token check) */
  authenticate: preHandlerAsyncHookHandler;
  /** the archive audit.retention writes segments to (null: none configured) */
  archive?: ArchiveStore | null;
}

const AuditEventSchema = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  time: Type.String(),
  type: Type.String(),
  outcome: Type.String(),
  actor: Type.Object({}, { additionalProperties: true }),
  subject: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  data: Type.Object({}, { additionalProperties: true }),
  prevHash: Type.String(),
  hash: Type.String(),
  leafIndex: Nullable(Type.Integer()),
});

const TreeHeadSchema = Type.Object({
  format: Type.Literal('ferry-audit-tree-head/v1'),
  treeSize: Type.Integer(),
  rootHash: Type.String(),
  timestamp: Type.String(),
  keyId: Type.String(),
  signature: Type.String(),
});

export const auditApi: FastifyPluginAsync<AuditApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const Query = Type.Object(
    {
      since: Type.Optional(Type.String({ format: 'date-time', description: 'events at or after this time' })),
      after: Type.Optional(Type.Integer({ minimum: 0, description: 'events after this sequence number' })),
      last: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 1000, description: 'only the newest N events' }),
      ),
      type: Type.Optional(Type.String({ maxLength: 128 })),
      subject: Type.Optional(Type.String({ maxLength: 256 })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    },
    { additionalProperties: false },
  );

  app.get<{
    Querystring: {
      since?: string;
      after?: number;
      last?: number;
      type?: string;
      subject?: string;
      limit?: number;
    };
  }>(
    '/audit/events',
    {
      schema: {
        tags: ['audit'],
        summary: 'Read the audit trail in sequence order',
        security,
        querystring: Query,
        response: { 200: Type.Object({ items: Type.Array(AuditEventSchema) }) },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.last !== undefined && q.since === undefined && q.after === undefined) {
        return { items: await latestAudit(opts.store.db, q.last) };
      }
      const since = q.since ? new Date(q.since).toISOString() : undefined;
      return {
        items: await listAudit(opts.store.db, {
          since,
          afterSeq: q.after,
          type: q.type,
          subject: q.subject,
          limit: q.limit,
        }),
      };
    },
  );

  app.get<{ Querystring: { format?: EventExportFormat; since?: string; until?: string } }>(
    '/audit/export',
    {
      schema: {
        tags: ['audit'],
        summary: `Export events for a SIEM: JSON lines, or OCSF ${OCSF_VERSION} records (Authentication, Account Change, Group Management, API Activity), one per line`,
        security,
        querystring: Type.Object(
          {
            format: Type.Optional(
              Type.Union([Type.Literal('jsonl'), Type.Literal('ocsf')], { default: 'jsonl' }),
            ),
            since: Type.Optional(
              Type.String({ format: 'date-time', description: 'events at or after this time' }),
            ),
            until: Type.Optional(
              Type.String({ format: 'date-time', description: 'events before this time' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: {
            description: 'one JSON object per line (application/x-ndjson)',
            content: { 'application/x-ndjson': { schema: Type.String() } },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const lines = exportEvents(opts.store.db, {
        format: q.format ?? 'jsonl',
        since: q.since ? new Date(q.since).toISOString() : undefined,
        until: q.until ? new Date(q.until).toISOString() : undefined,
      });
      return reply.type('application/x-ndjson').send(Readable.from(lines));
    },
  );

  app.get<{ Querystring: { archive?: boolean } }>(
    '/audit/verify',
    {
      schema: {
        tags: ['audit'],
        summary:
          'Recompute the Merkle tree from the events and check it against every signed tree head; names what was edited, removed, inserted or reordered',
        security,
        querystring: Type.Object(
          {
            archive: Type.Optional(
              Type.Boolean({
                default: false,
                description:
                  'also check every archived segment of pruned events, in the archive audit.retention.destination names (as `ferry audit verify --archive`); reads the whole archive',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            events: Type.Integer(),
            treeSize: Type.Integer(),
            headsChecked: Type.Integer(),
            unsealed: Type.Integer(),
            archived: Type.Integer({ description: 'leaves below this were archived and pruned' }),
            archiveChecked: Type.Boolean(),
            firstBad: Type.Union([
              Type.Object({
                leafIndex: Nullable(Type.Integer()),
                id: Nullable(Type.String()),
                reason: Type.String(),
                file: Type.Optional(Nullable(Type.String())),
              }),
              Type.Null(),
            ]),
          }),
        },
      },
    },
    async (req) => {
      // Only the configured archive: a location from the caller would let the API read any directory
      // or bucket the server can reach.
      if (req.query.archive && !opts.archive)
        throw new InvalidInput(
          'archive=true needs an archive: set audit.retention.destination in the server config',
          'archive',
        );
      return verifyLedger(opts.store.db, {
        keys: await opts.keys.trusted(),
        ...(req.query.archive && opts.archive ? { archive: opts.archive } : {}),
      });
    },
  );

  app.get(
    '/audit/head',
    {
      schema: {
        tags: ['audit'],
        summary: 'The latest signed tree head and the public key that signed it',
        security,
        response: {
          200: Type.Object({ head: Type.Union([TreeHeadSchema, Type.Null()]), publicKey: Type.String() }),
        },
      },
    },
    async () => {
      const row = await opts.store.db
        .selectFrom('audit_tree_heads')
        .selectAll()
        .orderBy('tree_size', 'desc')
        .limit(1)
        .executeTakeFirst();
      const key = await opts.keys.current();
      return { head: row ? headFromRow(row) : null, publicKey: key.publicKeyPem };
    },
  );
};
