import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ArchiveStatus } from '../audit/archive-schedule.js';
import type { ExportStatus } from '../audit/export.js';
import { unsealedBacklog } from '../audit/sequencer.js';
import { secretsEqual } from '../identity/secrets.js';
import { Unauthorized } from '../problem.js';
import type { Store } from '../store/open.js';
import type { Metrics } from './metrics.js';

export interface OperationsOptions {
  store: Store;
  metrics: Metrics;
  /** how long /readyz waits for the database before calling it unreachable */
  readyTimeoutMs?: number;
  /** when set, /metrics answers only `Authorization: Bearer <token>` */
  metricsToken?: string | null;
  /** where audit tree heads are published, and how that goes (detail only: never makes /readyz fail) */
  auditExport?: () => Promise<ExportStatus[]>;
  /** how the scheduled audit archive goes (detail only, like the export: never makes /readyz fail) */
  auditArchive?: () => Promise<ArchiveStatus | null>;
  /** further detail for /readyz from other modules (e.g. alert sinks the config file could not own) */
  detail?: () => Promise<Record<string, unknown>>;
  /**
   * Whether this caller may read /readyz's full detail beside the metrics token: an admin holding
   * audit:read (API token or signed-in person). Called only when the request carries credentials.
   */
  detailAllowed?: (req: FastifyRequest, reply: FastifyReply) => Promise<boolean>;
}

/**
 * /readyz without credentials says which component is not ready and nothing more: a destination's
 * name (a host, a bucket, a directory), its last error or the database server's message could tell an
 * anonymous caller about the network Ferry runs in. The full detail is for the metrics token or an
 * admin with audit:read.
 */
function redacted(component: unknown): { ok: false } | undefined {
  if (Array.isArray(component)) return component.some((c) => redacted(c)) ? { ok: false } : undefined;
  if (typeof component === 'object' && component !== null && (component as { ok?: unknown }).ok === false)
    return { ok: false };
  return undefined;
}

/** /healthz (the process is up), /readyz (it can serve: the database answers), /metrics (Prometheus). */
export const operationsRoutes: FastifyPluginAsync<OperationsOptions> = async (app, opts) => {
  const hide = { schema: { hide: true } };
  app.get('/healthz', hide, async () => ({ status: 'ok' }));

  const metricsToken = opts.metricsToken ?? null;
  const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  /** The metrics token (constant-time compare), or an admin with audit:read; never throws. */
  const mayReadDetail = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const token = bearer(req);
    if (token !== undefined && metricsToken !== null && secretsEqual(token, metricsToken)) return true;
    if (req.headers.authorization === undefined && req.headers.cookie === undefined) return false;
    const allowed = await (opts.detailAllowed?.(req, reply) ?? false);
    reply.removeHeader('www-authenticate');
    return allowed;
  };

  app.get('/readyz', hide, async (req, reply) => {
    const timeout = opts.readyTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Reads may work while writes fail for lack of space (SQLite, PostgreSQL): not ready, with the cause. Its
      // probe (only while writes fail) waits its turn on the connection: within the same timeout.
      const writes = await Promise.race([
        opts.store.ping().then(async () => (await opts.store.writable?.()) ?? { ok: true as const }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('database ping timed out')), timeout);
        }),
      ]);
      if (!writes.ok) {
        const full = await mayReadDetail(req, reply);
        return reply
          .code(503)
          .header('retry-after', '5')
          .type('application/problem+json')
          .send({
            type: 'https://ferry.dev/problems/unavailable',
            title: 'Service Unavailable',
            status: 503,
            detail: full ? writes.cause : 'database writes fail',
            database: 'not-writable',
            ...(full ? { since: writes.since } : {}),
          });
      }
      const exports = (await opts.auditExport?.().catch(() => [])) ?? [];
      const archive = (await opts.auditArchive?.().catch(() => null)) ?? null;
      const detail = (await opts.detail?.().catch(() => ({}))) ?? {};
      const ready = {
        status: 'ready',
        database: 'ok',
        ...(exports.length
          ? {
              auditExport: exports.map((e) => ({
                destination: e.destination,
                ok: e.failures === 0,
                treeSize: e.treeSize,
                ...(e.failures
                  ? { failures: e.failures, lastError: e.lastError, nextAttemptAt: e.nextAttemptAt }
                  : {}),
              })),
            }
          : {}),
        ...(archive
          ? {
              auditArchive: {
                destination: archive.destination,
                ok: archive.failures === 0,
                archivedBelow: archive.archivedBelow,
                ...(archive.failures
                  ? {
                      failures: archive.failures,
                      lastError: archive.lastError,
                      nextAttemptAt: archive.nextAttemptAt,
                    }
                  : {}),
              },
            }
          : {}),
        ...detail,
      };
      if (await mayReadDetail(req, reply)) return ready;
      const { status, database, ...components } = ready as Record<string, unknown>;
      const notReady = Object.entries(components).flatMap(([name, c]) => {
        const r = redacted(c);
        return r ? [[name, r] as const] : [];
      });
      return { status, database, ...Object.fromEntries(notReady) };
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'not ready: database unreachable');
      return reply.code(503).header('retry-after', '5').type('application/problem+json').send({
        type: 'https://ferry.dev/problems/unavailable',
        title: 'Service Unavailable',
        status: 503,
        detail: 'the database is unreachable',
      });
    } finally {
      clearTimeout(timer);
    }
  });

  // Metrics name routes and rates that help an attacker time a spray: behind a token when one is set.
  app.get(
    '/metrics',
    {
      ...hide,
      onRequest: async (req, reply) => {
        if (metricsToken === null) return;
        const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        if (m && secretsEqual(m[1]!, metricsToken)) return;
        reply.header('www-authenticate', m ? 'Bearer error="invalid_token"' : 'Bearer realm="metrics"');
        throw new Unauthorized('/metrics needs the metrics token (metrics.token)');
      },
    },
    async (_req, reply) => {
      try {
        for (const e of (await opts.auditExport?.()) ?? []) {
          opts.metrics.auditExportFailures.set({ destination: e.destination }, e.failures);
          opts.metrics.auditExportedTreeSize.set({ destination: e.destination }, e.treeSize);
        }
        const archive = await opts.auditArchive?.();
        if (archive) {
          opts.metrics.auditArchiveFailures.set({ destination: archive.destination }, archive.failures);
          opts.metrics.auditArchivedBelow.set({ destination: archive.destination }, archive.archivedBelow);
        }
        opts.metrics.auditUnsealed.set((await unsealedBacklog(opts.store.db)).count);
      } catch {
        // the database is away: /readyz says so; the process metrics still answer
      }
      return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
    },
  );
};
