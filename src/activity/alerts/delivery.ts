import { type AuditContext, actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { addMs, type Clock, iso } from '../../clock.js';
import { NotFound } from '../../errors.js';
import { Problem } from '../../problem.js';
import type { Store } from '../../store/open.js';
import { type AlertView, alertFromRow } from '../detections/service.js';
import { AlertDeliveryFailed, sendAlert } from './send.js';
import type { AlertSinks } from './sinks.js';
import type { TargetPolicy } from './target-guard.js';

export type DeliveryOutcome = 'delivered' | 'retrying' | 'failed' | 'rate-limited';

export interface DeliveryMetrics {
  alertDelivery(sink: string, outcome: DeliveryOutcome): void;
}

export interface AlertDeliveryDeps {
  store: Store;
  clock: Clock;
  sinks: AlertSinks;
  metrics?: DeliveryMetrics;
  /** where a person reads the alert (Ferry's public URL), put into webhook bodies */
  consoleUrl?: () => string | null;
  /** which addresses sinks may reach (alerts.allowPrivateTargets, alerts.allowTargetNetworks) */
  targets: TargetPolicy;
}

export interface AlertDeliveryOptions {
  /** a sink gets at most this many alerts per hour; the rest are recorded as rate-limited */
  maxPerSinkPerHour: number;
  /** tries per alert and sink (the outbox backs off between them) before it is recorded as failed */
  maxAttempts: number;
}

const sender = { actor: systemActor('alerts') };

/**
 * Carries one alert to one sink from the outbox handler: at least once, idempotent (a delivered row is
 * not sent again), rate-limited per sink, retried by the outbox with exponential backoff, and every
 * outcome but a retry is an audit event.
 */
export class AlertDelivery {
  constructor(
    private readonly deps: AlertDeliveryDeps,
    private readonly options: AlertDeliveryOptions,
  ) {}

  async deliver(alertId: string, sinkName: string): Promise<DeliveryOutcome | 'skipped'> {
    const { store, clock } = this.deps;
    const row = await store.db
      .selectFrom('alert_deliveries')
      .selectAll()
      .where('alert_id', '=', alertId)
      .where('sink', '=', sinkName)
      .executeTakeFirst();
    if (row?.state !== 'pending') return 'skipped';
    const alertRow = await store.db
      .selectFrom('alerts')
      .selectAll()
      .where('id', '=', alertId)
      .executeTakeFirst();
    const sink = await this.deps.sinks.resolve(sinkName);
    if (!alertRow || !sink)
      return this.finish(alertId, sinkName, 'failed', row.attempts, 'the sink was removed');
    const since = iso(addMs(clock.now(), -3_600_000));
    const recent = await store.db
      .selectFrom('alert_deliveries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sink', '=', sinkName)
      .where('delivered_at', '>=', since)
      .executeTakeFirstOrThrow();
    if (Number(recent.n) >= this.options.maxPerSinkPerHour)
      return this.finish(
        alertId,
        sinkName,
        'rate-limited',
        row.attempts,
        `more than ${this.options.maxPerSinkPerHour} alerts in the last hour`,
      );
    const attempts = Number(row.attempts) + 1;
    try {
      await sendAlert(sink, alertFromRow(alertRow), {
        nowSeconds: Math.floor(clock.now().getTime() / 1000),
        consoleUrl: this.deps.consoleUrl?.() ?? null,
        targets: this.deps.targets,
      });
    } catch (err) {
      const message = (err as Error).message.slice(0, 500);
      // A refused target fails at once: retrying cannot make an internal address external.
      if (attempts >= this.options.maxAttempts || (err instanceof AlertDeliveryFailed && err.permanent))
        return this.finish(alertId, sinkName, 'failed', attempts, message);
      await store.db
        .updateTable('alert_deliveries')
        .set({ attempts, last_error: message, updated_at: iso(clock.now()) })
        .where('alert_id', '=', alertId)
        .where('sink', '=', sinkName)
        .execute();
      this.deps.metrics?.alertDelivery(sinkName, 'retrying');
      throw err;
    }
    return this.finish(alertId, sinkName, 'delivered', attempts, null);
  }

  private async finish(
    alertId: string,
    sink: string,
    state: 'delivered' | 'failed' | 'rate-limited',
    attempts: number,
    error: string | null,
  ): Promise<DeliveryOutcome> {
    const { store, clock } = this.deps;
    const now = iso(clock.now());
    await store.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('alert_deliveries')
        .set({
          state,
          attempts,
          last_error: error,
          updated_at: now,
          delivered_at: state === 'delivered' ? now : null,
        })
        .where('alert_id', '=', alertId)
        .where('sink', '=', sink)
        .execute();
      await appendAudit(trx, store.engine, clock, {
        type:
          state === 'delivered'
            ? 'alert.delivered'
            : state === 'failed'
              ? 'alert.delivery-failed'
              : 'alert.rate-limited',
        outcome: state === 'delivered' ? 'success' : 'failure',
        actor: sender.actor,
        subject: sink,
        data: { alertId, sink, attempts, ...(error ? { error } : {}) },
      });
    });
    this.deps.metrics?.alertDelivery(sink, state);
    return state;
  }

  /** `ferry alerts test SINK`: sends a sample alert at once (not stored, not rate-limited) and audits it. */
  async test(ctx: AuditContext, sinkName: string): Promise<AlertView> {
    const { store, clock } = this.deps;
    const sink = await this.deps.sinks.resolve(sinkName);
    if (!sink) throw new NotFound('alert sink', sinkName);
    const now = iso(clock.now());
    const sample: AlertView = {
      id: `test-${now}`,
      rule: 'root-activity',
      severity: 'low',
      title: `Test alert from Ferry to ${sinkName}: if you read this, the sink works`,
      subject: 'ferry-alerts-test',
      account: null,
      firstSeenAt: now,
      lastSeenAt: now,
      occurrences: 1,
      evidence: 'ferry alerts test',
      details: { test: true, requestedBy: actorName(ctx.actor) },
      suppressedReason: null,
      createdAt: now,
      deliveries: [],
    };
    let error: string | null = null;
    try {
      await sendAlert(sink, sample, {
        nowSeconds: Math.floor(clock.now().getTime() / 1000),
        consoleUrl: this.deps.consoleUrl?.() ?? null,
        targets: this.deps.targets,
      });
    } catch (err) {
      error = (err as Error).message.slice(0, 500);
    }
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'alert.test-sent',
        outcome: error ? 'failure' : 'success',
        actor: ctx.actor,
        subject: sinkName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { sink: sinkName, type: sink.type, ...(error ? { error } : {}) },
      }),
    );
    this.deps.metrics?.alertDelivery(sinkName, error ? 'failed' : 'delivered');
    if (error) throw new SinkTestFailed(sinkName, error);
    return sample;
  }
}

/** The sample did not arrive; the detail says why (never the sink's secret). */
export class SinkTestFailed extends Problem {
  constructor(
    readonly sink: string,
    detail: string,
  ) {
    super(502, 'alert-sink-unreachable', 'Bad Gateway', detail, { sink });
  }
}
