import type { FastifyBaseLogger } from 'fastify';
import { watchAuditOnce } from '../activity/detections/observer.js';
import { Sequencer } from '../audit/sequencer.js';
import type { DomainEvent, DomainEventType } from '../events.js';
import { purgeExpiredOidcArtifacts } from '../federation/oidc/adapter.js';
import { OIDC_SIGNING_PURPOSES } from '../federation/oidc/provider.js';
import { isStorageFull } from '../store/errors.js';
import {
  type ClaimedEvent,
  claimEvents,
  completeEvent,
  failEvent,
  forgetDeadInstances,
  heartbeat,
  LANES,
  type Lane,
  onEventEnqueued,
  retireInstance,
} from '../store/outbox.js';
import { LaneDrains } from './lane-drains.js';
import type { Services } from './services.js';

/**
 * Drains at once per lane: several on the urgent lane, so an offboarding never waits for the slower
 * handlers of the one before it; one on the bulk lane, whose events are handled in order.
 */
const MAX_DRAINS: Record<Lane, number> = { urgent: 4, bulk: 1 };

/** Waits for every promise, then throws the first failure (Promise.all would return while some still run). */
export async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** What a handler may need besides the event: when it happened (e.g. a revocation's cutoff). */
export interface EventMeta {
  id: string;
  createdAt: Date;
  attempts: number;
  /** what the previous try failed with, if one failed */
  lastError: string | null;
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
  options: {
    intervalMs?: number;
    autostart?: boolean;
    auditPollMs?: number;
    /** drain a lane as soon as an event for it is committed (default true) */
    wake?: boolean;
  } = {},
): Workers {
  // The id leases name (services.instanceId): they are taken over when this heartbeat stops.
  const workerId = services.instanceId;
  // Out of space is reported once by the store (and when it ends), not by every retry of every loop.
  const warn = (err: unknown, fields: Record<string, unknown>, msg: string) => {
    if (!isStorageFull(err)) log.warn({ ...fields, err: fields.err ?? err }, msg);
  };
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

  async function handle(claimed: ClaimedEvent): Promise<void> {
    try {
      const meta = {
        id: claimed.id,
        createdAt: new Date(claimed.createdAt),
        attempts: claimed.attempts,
        lastError: claimed.lastError,
      };
      for (const handler of handlers[claimed.event.type] ?? []) await handler(claimed.event, meta);
      await completeEvent(store, clock, claimed.id, workerId);
    } catch (err) {
      warn(err, { eventId: claimed.id, type: claimed.event.type }, 'outbox handler failed; will retry');
      await failEvent(store, clock, claimed.id, workerId, claimed.attempts, (err as Error).message);
    }
  }

  /**
   * Drains one lane until it is empty. The urgent lane (revocation, offboarding) handles a claimed
   * batch in parallel, its handlers being idempotent and about different people, and may run several
   * drains at once (lane-drains.ts); the bulk lane one drain, one event after another, in order.
   */
  /** events of each lane this process has claimed and not yet completed or released */
  const inFlight = new Map<Lane, number>(LANES.map((lane) => [lane, 0]));
  /** a lane's claims, one at a time in this process (see claimFor) */
  const claiming = new Map<Lane, Promise<unknown>>();
  /**
   * Claims a batch of a lane. With nothing of the lane in flight here, a row still claimed by this
   * worker lost its completion or release to a database outage, and is taken back now (not after its
   * lease). Claims of one lane run one after another in this process, so that "nothing in flight" is
   * still true when the claim's statement runs: two drains' claims on two pool connections could
   * otherwise overlap, and one take back the row the other just claimed (the same event handled twice).
   */
  function claimFor(lane: Lane, limit: number) {
    const run = (claiming.get(lane) ?? Promise.resolve()).then(async () => {
      const reclaimOwn = inFlight.get(lane) === 0;
      const batch = await claimEvents(store, clock, workerId, limit, 60_000, { lane, reclaimOwn });
      inFlight.set(lane, inFlight.get(lane)! + batch.length);
      return batch;
    });
    claiming.set(
      lane,
      run.catch(() => {}),
    );
    return run;
  }
  async function drainLane(lane: Lane): Promise<number> {
    let handled = 0;
    for (;;) {
      const batch = await claimFor(lane, lane === 'urgent' ? 16 : 50);
      if (batch.length === 0) return handled;
      try {
        if (lane === 'urgent') await settleAll(batch.map(handle));
        else for (const claimed of batch) await handle(claimed);
      } finally {
        inFlight.set(lane, inFlight.get(lane)! - batch.length);
      }
      handled += batch.length;
    }
  }

  async function drainOnce(): Promise<number> {
    let handled = 0;
    for (const lane of LANES) {
      // A drain woken by the commit may hold an event this one cannot claim: wait for it too, so that
      // what was committed before the call is handled when it returns.
      const drains = lanes.get(lane)!;
      await drains.settled();
      handled += await drainLane(lane);
      await drains.settled();
    }
    return handled;
  }

  // Each lane drains on its own: woken by a commit (this process's enqueue; on PostgreSQL the
  // `ferry_outbox` notification from any instance), and polled by the tick as a fallback.
  const lanes = new Map(
    LANES.map((lane) => [
      lane,
      new LaneDrains(
        () => drainLane(lane),
        MAX_DRAINS[lane],
        (err) => warn(err, { err: (err as Error).message, lane }, 'outbox drain failed; retrying'),
      ),
    ]),
  );
  const kick = (lane: Lane) => {
    if (stopped) return;
    lanes.get(lane)?.wake();
  };
  const kickAll = () => {
    for (const lane of LANES) kick(lane);
  };

  let lastPurge = 0;
  let lastRotationCheck = 0;
  let lastHeadExport = 0;
  let exporting: Promise<unknown> | undefined;
  let lastCloudTrailSync = 0;
  let archiving: Promise<unknown> | undefined;
  let syncingCloudTrail: Promise<unknown> | undefined;
  const tick = async () => {
    try {
      // PIM: end what is due (exactly once across instances), then deliver what that wrote to the outbox.
      await services.activations.runDue();
      await services.reviews.closeDue();
      kickAll();
      // Ferry-side detections read what the sequencer sealed; the alerts they raise wake the bulk lane.
      await watchAuditOnce(store, clock, services.detections);
      const now = clock.now().getTime();
      if (now - lastPurge > 3_600_000) {
        lastPurge = now;
        await forgetDeadInstances(store);
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
      const archiver = services.auditArchiver;
      if (archiver && !archiving) {
        // Beside the tick, on one instance at a time (the lease): archive, then prune, what is old
        // enough, every retention.interval. A destination that fails is retried with backoff (its
        // status row) and shows in /readyz and /metrics; nothing else waits for it.
        archiving = archiver.tick(log).finally(() => {
          archiving = undefined;
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
      warn(err, { err: (err as Error).message }, 'background work failed; retrying');
    }
  };

  const interval = options.intervalMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  let beat: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      sequencer.start();
      running = tick().finally(schedule);
    }, interval);
    timer.unref();
  };
  if (options.autostart !== false) {
    // A heartbeat of its own (not the tick, which may wait on slow work): claims of an instance that
    // stops beating are taken over by the others (store/outbox.ts).
    const beatOnce = () =>
      heartbeat(store, workerId).catch((err) =>
        warn(err, { err: (err as Error).message }, 'worker heartbeat failed; retrying'),
      );
    void beatOnce();
    beat = setInterval(beatOnce, 1_000);
    beat.unref();
    if (options.wake !== false) {
      unlisten = store.listen?.('ferry_outbox', (lane) =>
        lane === 'urgent' || lane === 'bulk' ? kick(lane) : kickAll(),
      );
      // Where the database notifies at commit (PostgreSQL), that is the wake-up: this process's enqueue
      // happens before its commit, so a drain started then finds nothing and holds the lane busy while
      // the notification arrives. SQLite has one connection: a drain started at enqueue runs after the commit.
      if (!unlisten) unsubscribe = onEventEnqueued((lane) => kick(lane));
    }
    schedule();
  }

  return {
    drainOnce,
    sequencer,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      unsubscribe?.();
      await unlisten?.();
      await running;
      for (const drains of lanes.values()) drains.stop();
      await Promise.all([...lanes.values()].map((drains) => drains.settled()));
      await exporting;
      await syncingCloudTrail;
      await archiving;
      await sequencer.stop();
      // The heartbeat goes on until here: while a drain or the archive still holds a lease, another
      // instance must not take it over as a dead holder's (leases.ts).
      clearInterval(beat);
      if (beat) await retireInstance(store.db, workerId).catch(() => {});
    },
  };
}
