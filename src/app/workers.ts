import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { watchAuditOnce } from '../activity/detections/observer.js';
import { Sequencer } from '../audit/sequencer.js';
import type { DomainEvent, DomainEventType } from '../events.js';
import { purgeExpiredOidcArtifacts } from '../federation/oidc/adapter.js';
import { OIDC_SIGNING_PURPOSES } from '../federation/oidc/provider.js';
import { claimEvents, completeEvent, failEvent } from '../store/outbox.js';
import type { Services } from './services.js';

/** What a handler may need besides the event: when it happened (e.g. a revocation's cutoff). */
export interface EventMeta {
  id: string;
  createdAt: Date;
  attempts: number;
}

export type EventHandler = (event: DomainEvent, meta: EventMeta) => Promise<void>;

/** Handlers by event type; each must be idempotent, since delivery is at least once. */
export type EventHandlers = Partial<Record<DomainEventType, EventHandler[]>>;

export interface Workers {
  /** drains the outbox once (tests call it to avoid waiting for the timer) */
  drainOnce(): Promise<number>;
  /** the audit sequencer of this instance (tests call sealAll to avoid waiting for it) */
  sequencer: Sequencer;
  stop(): Promise<void>;
}

/**
 * Background work of one instance: drain the outbox into the registered handlers and purge ended
 * sessions. Several instances may run this at once; claims keep them from doing the same event twice.
 */
export function startWorkers(
  services: Services,
  handlers: EventHandlers,
  log: FastifyBaseLogger,
  options: { intervalMs?: number; autostart?: boolean; auditPollMs?: number } = {},
): Workers {
  const workerId = randomUUID();
  const { store, clock } = services;
  // Seals committed audit events into the signed Merkle tree: woken by this process's appends,
  // polling for other instances'; one instance at a time holds its lease.
  // It starts with the first tick, not at once: a backlog sealed during start-up would hold SQLite's
  // one connection batch after batch while start-up waits for it.
  const sequencer = new Sequencer(
    { store, clock, keys: services.auditKeys, log },
    // SQLite seals in smaller batches: each holds the only connection, and requests queue behind it.
    { pollMs: options.auditPollMs, batchSize: store.engine === 'sqlite' ? 200 : 1000 },
  );
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();

  async function drainOnce(): Promise<number> {
    let handled = 0;
    for (;;) {
      const batch = await claimEvents(store, clock, workerId, 50, 60_000);
      if (batch.length === 0) return handled;
      for (const claimed of batch) {
        try {
          const meta = { id: claimed.id, createdAt: new Date(claimed.createdAt), attempts: claimed.attempts };
          for (const handle of handlers[claimed.event.type] ?? []) await handle(claimed.event, meta);
          await completeEvent(store, clock, claimed.id, workerId);
        } catch (err) {
          log.warn(
            { err, eventId: claimed.id, type: claimed.event.type },
            'outbox handler failed; will retry',
          );
          await failEvent(store, clock, claimed.id, workerId, claimed.attempts, (err as Error).message);
        }
        handled += 1;
      }
    }
  }

  let lastPurge = 0;
  let lastRotationCheck = 0;
  let lastHeadExport = 0;
  let exporting: Promise<unknown> | undefined;
  let lastCloudTrailSync = 0;
  let syncingCloudTrail: Promise<unknown> | undefined;
  const tick = async () => {
    try {
      // PIM: end what is due (exactly once across instances), then deliver what that wrote to the outbox.
      await services.activations.runDue();
      await services.reviews.closeDue();
      await drainOnce();
      // Ferry-side detections read what the sequencer sealed; alerts they raise go out on the next drain.
      await watchAuditOnce(store, clock, services.detections);
      const now = clock.now().getTime();
      if (now - lastPurge > 3_600_000) {
        lastPurge = now;
        await services.sessions.purgeEnded();
        await purgeExpiredOidcArtifacts(services.store, clock);
        await services.entraSignin?.purgeExpired();
      }
      if (!exporting && now - lastHeadExport >= services.config.audit.export.interval) {
        lastHeadExport = now;
        // Beside the tick, not in it: a destination that hangs until its timeout delays only itself.
        exporting = services.auditExporter
          .exportDue()
          .catch((err) => log.warn({ err }, 'audit head export failed; retrying'))
          .finally(() => {
            exporting = undefined;
          });
      }
      const { syncInterval } = services.config.cloudtrail;
      if (syncInterval > 0 && !syncingCloudTrail && now - lastCloudTrailSync >= syncInterval) {
        lastCloudTrailSync = now;
        // Beside the tick: a large backlog of log files must not hold up the outbox and PIM.
        syncingCloudTrail = services.cloudtrail
          .sync(undefined, log)
          .catch((err) => log.warn({ err }, 'cloudtrail sync failed; retrying'))
          .finally(() => {
            syncingCloudTrail = undefined;
          });
      }
      if (now - lastRotationCheck > 60_000) {
        lastRotationCheck = now;
        // One audit event per ended lock with the number of attempts it refused.
        await services.throttle.summariseEnded();
        await services.signingKeys.rotateDue('saml', services.config.saml.keyRotationGrace);
        for (const purpose of OIDC_SIGNING_PURPOSES)
          await services.signingKeys.rotateDue(purpose, services.config.oidc.keyRotationGrace);
      }
    } catch (err) {
      // The database may be away; the next tick tries again.
      log.warn({ err: (err as Error).message }, 'background work failed; retrying');
    }
  };

  const interval = options.intervalMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      sequencer.start();
      running = tick().finally(schedule);
    }, interval);
    timer.unref();
  };
  if (options.autostart !== false) schedule();

  return {
    drainOnce,
    sequencer,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await exporting;
      await syncingCloudTrail;
      await sequencer.stop();
    },
  };
}
