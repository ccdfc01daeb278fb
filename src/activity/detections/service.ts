import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import type { Store } from '../../store/open.js';
import { enqueueEvent } from '../../store/outbox.js';
import type { AlertsTable, Database } from '../../store/schema.js';
import {
  type Finding,
  isSpikeRule,
  type Observation,
  type RuleId,
  type Severity,
  type SpikeCount,
  severityRank,
} from './finding.js';
import { type DetectionSettings, suppressionOf } from './settings.js';

export interface DeliveryView {
  sink: string;
  state: 'pending' | 'delivered' | 'failed' | 'rate-limited';
  attempts: number;
  lastError: string | null;
  deliveredAt: string | null;
}

export interface AlertView {
  id: string;
  rule: RuleId;
  severity: Severity;
  title: string;
  subject: string;
  account: string | null;
  firstSeenAt: string;
  lastSeenAt: string;
  occurrences: number;
  evidence: string;
  details: Record<string, unknown>;
  suppressedReason: string | null;
  createdAt: string;
  deliveries: DeliveryView[];
}

/** A sink as the detection service needs it: which alerts it wants. */
export interface SinkFilter {
  name: string;
  minSeverity: Severity;
}

export interface DetectionMetrics {
  alertRaised(rule: RuleId, severity: Severity, suppressed: boolean): void;
}

export interface DetectionDeps {
  store: Store;
  clock: Clock;
  settings: DetectionSettings;
  /** the sinks alerts fan out to (read in the raising transaction) */
  sinks: (trx: Kysely<Database>) => Promise<SinkFilter[]>;
  metrics?: DetectionMetrics;
}

const detector = { actor: systemActor('detections') };

const SPIKE_WORDS: Record<SpikeCount['rule'], string> = {
  'access-denied-spike': 'access-denied errors',
  'signin-failure-spike': 'failed sign-ins',
  'provisioning-errors': 'provisioning errors',
  'scim-auth-failures': 'SCIM requests without a valid bearer token',
};

const floorTo = (t: Date, ms: number) => new Date(Math.floor(t.getTime() / ms) * ms);
const minutes = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 60_000)}m`);

export const alertFromRow = (r: AlertsTable, deliveries: DeliveryView[] = []): AlertView => ({
  id: r.id,
  rule: r.rule as RuleId,
  severity: r.severity as Severity,
  title: r.title,
  subject: r.subject,
  account: r.account,
  firstSeenAt: r.first_seen_at,
  lastSeenAt: r.last_seen_at,
  occurrences: Number(r.occurrences),
  evidence: r.evidence,
  details: JSON.parse(r.details) as Record<string, unknown>,
  suppressedReason: r.suppressed_reason,
  createdAt: r.created_at,
  deliveries,
});

/**
 * Turns observations into alerts: counts spikes per subject and window, applies each rule's severity,
 * deduplication window and the suppression windows, records the alert and its `alert.raised` audit
 * event, and asks the outbox to deliver it to every sink that wants its severity, all in one
 * transaction. Storage does the deduplication (a unique key and window), so instances never double up.
 */
export class Detections {
  constructor(private readonly deps: DetectionDeps) {}

  get settings(): DetectionSettings {
    return this.deps.settings;
  }

  async observe(observations: readonly Observation[]): Promise<AlertView[]> {
    if (observations.length === 0) return [];
    return this.deps.store.db.transaction().execute((trx) => this.observeIn(trx, observations));
  }

  /** Within the caller's transaction (the audit cursor advances with it). Returns the new alerts. */
  async observeIn(trx: Kysely<Database>, observations: readonly Observation[]): Promise<AlertView[]> {
    const raised: AlertView[] = [];
    for (const o of observations) {
      const f = o.kind === 'finding' ? o.finding : await this.count(trx, o.count);
      if (!f) continue;
      const alert = await this.raise(trx, f);
      if (alert) raised.push(alert);
    }
    return raised;
  }

  /**
   * Counts the event in a sliding window: the subject's events in (t − window, t] (t: this event's time)
   * are summed, and the threshold reached raises a finding. A burst across a clock boundary counts
   * whole (fixed windows split it in two). The same evidence counted twice is one event; events that
   * have slid out of reach (older than twice the window before t) are removed as the subject counts.
   */
  private async count(trx: Kysely<Database>, c: SpikeCount): Promise<Finding | null> {
    const rule = this.deps.settings.rules[c.rule];
    if (!rule.enabled) return null;
    const t = c.occurredAt.getTime();
    const at = iso(c.occurredAt);
    const windowStart = iso(new Date(t - rule.windowMs));
    await trx
      .insertInto('detection_events')
      .values({
        rule: c.rule,
        subject: c.subject,
        evidence: c.evidence,
        occurred_at: at,
        weight: Math.max(1, Math.floor(c.weight ?? 1)),
      })
      .onConflict((oc) => oc.columns(['rule', 'subject', 'evidence']).doNothing())
      .execute();
    await trx
      .deleteFrom('detection_events')
      .where('rule', '=', c.rule)
      .where('subject', '=', c.subject)
      .where('occurred_at', '<', iso(new Date(t - 2 * rule.windowMs)))
      .execute();
    const row = await trx
      .selectFrom('detection_events')
      .select((eb) => eb.fn.sum<number | string | null>('weight').as('n'))
      .where('rule', '=', c.rule)
      .where('subject', '=', c.subject)
      .where('occurred_at', '>', windowStart)
      .where('occurred_at', '<=', at)
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    if (n < rule.threshold) return null;
    return {
      rule: c.rule,
      title: `${n} ${SPIKE_WORDS[c.rule]} for ${c.subject} within ${minutes(rule.windowMs)} (threshold ${rule.threshold})`,
      subject: c.subject,
      account: c.account,
      occurredAt: c.occurredAt,
      evidence: c.evidence,
      details: { ...c.details, count: n, windowStart, windowEnd: at, threshold: rule.threshold },
    };
  }

  private async raise(trx: Kysely<Database>, f: Finding): Promise<AlertView | null> {
    const { settings, clock } = this.deps;
    const rule = settings.rules[f.rule];
    if (!rule.enabled) return null;
    const now = iso(clock.now());
    const at = iso(f.occurredAt);
    const dedupKey = `${f.rule}:${f.subject}`;
    // A zero window means every finding is its own alert: its evidence is the slot.
    const slot =
      rule.dedupWindowMs > 0 ? iso(floorTo(f.occurredAt, rule.dedupWindowMs)) : `event:${f.evidence}`;
    const suppressed = suppressionOf(settings, f, f.occurredAt);
    const id = randomUUID();
    const row = await trx
      .insertInto('alerts')
      .values({
        id,
        rule: f.rule,
        severity: rule.severity,
        title: f.title.slice(0, 500),
        subject: f.subject.slice(0, 500),
        account: f.account,
        dedup_key: dedupKey.slice(0, 600),
        dedup_slot: slot,
        first_seen_at: at,
        last_seen_at: at,
        occurrences: 1,
        evidence: f.evidence,
        details: JSON.stringify(f.details),
        suppressed_reason: suppressed?.reason ?? null,
        created_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['dedup_key', 'dedup_slot']).doUpdateSet((eb) => ({
          occurrences: eb('alerts.occurrences', '+', 1),
          last_seen_at: eb
            .case()
            .when('alerts.last_seen_at', '<', at)
            .then(at)
            .else(eb.ref('alerts.last_seen_at'))
            .end(),
          // a spike alert keeps the latest count
          ...(isSpikeRule(f.rule)
            ? { title: f.title.slice(0, 500), details: JSON.stringify(f.details) }
            : {}),
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    if (row.id !== id) return null; // a repeat within the deduplication window
    const sinks = suppressed
      ? []
      : (await this.deps.sinks(trx)).filter(
          (s) => severityRank(rule.severity) >= severityRank(s.minSeverity),
        );
    for (const sink of sinks) {
      await trx
        .insertInto('alert_deliveries')
        .values({
          alert_id: id,
          sink: sink.name,
          state: 'pending',
          attempts: 0,
          last_error: null,
          updated_at: now,
          delivered_at: null,
        })
        .execute();
      await enqueueEvent(trx, clock, { type: 'alert.delivery-requested', alertId: id, sink: sink.name });
    }
    await appendAudit(trx, this.deps.store.engine, clock, {
      type: 'alert.raised',
      outcome: 'success',
      actor: detector.actor,
      subject: f.subject.slice(0, 500),
      data: {
        alertId: id,
        rule: f.rule,
        severity: rule.severity,
        title: f.title.slice(0, 500),
        account: f.account,
        evidence: f.evidence,
        sinks: sinks.map((s) => s.name),
        ...(suppressed ? { suppressed: suppressed.reason } : {}),
      },
    });
    this.deps.metrics?.alertRaised(f.rule, rule.severity, suppressed !== null);
    return alertFromRow(
      row,
      sinks.map((s) => ({ sink: s.name, state: 'pending', attempts: 0, lastError: null, deliveredAt: null })),
    );
  }

  /**
   * A provisioning request failed: Entra ID → Ferry (a SCIM request Ferry answered with an error) or
   * Ferry → IAM Identity Center (a push the outbox will retry). Counted per direction and connection.
   */
  async provisioningFailed(p: {
    direction: 'inbound' | 'identity-center';
    connection: string;
    detail: string;
    evidence?: string;
  }): Promise<void> {
    const now = this.deps.clock.now();
    await this.observe([
      {
        kind: 'count',
        count: {
          rule: 'provisioning-errors',
          subject: p.direction === 'inbound' ? `scim ${p.connection} → Ferry` : `Ferry → IAM Identity Center`,
          account: null,
          occurredAt: now,
          evidence: p.evidence ?? `${p.direction}:${iso(now)}:${randomUUID()}`,
          details: { direction: p.direction, connection: p.connection, lastError: p.detail.slice(0, 300) },
        },
      },
    ]);
  }

  /**
   * A SCIM request without a valid bearer token (none, malformed, unknown or revoked). Anyone can send
   * these, so they are not counted per caller or per request: this instance adds them up and writes one
   * count of all of them (`weight`) at most every `scimAuthFlushMs` to the single subject "SCIM
   * authentication failures". An unauthenticated flood thus costs one write per interval, makes at most
   * one alert per deduplication window, and creates no per-person or per-connection counts.
   */
  scimAuthFailed(p: { ip: string | null; reason: 'missing' | 'invalid' }): void {
    const pending = this.#scimAuth;
    pending.count++;
    if (p.ip && pending.addresses.size < 10) pending.addresses.add(p.ip);
    pending.reasons[p.reason]++;
    if (!pending.timer) {
      // A failed write (the database away) loses this interval's count, never the request.
      pending.timer = setTimeout(
        () => void this.flushScimAuthFailures().catch(() => {}),
        this.scimAuthFlushMs,
      );
      pending.timer.unref();
    }
  }

  /** Writes the SCIM authentication failures added up so far (tests and shutdown call it). */
  async flushScimAuthFailures(): Promise<void> {
    const { count, reasons, addresses, timer } = this.#scimAuth;
    if (timer) clearTimeout(timer);
    this.#scimAuth = { count: 0, addresses: new Set(), reasons: { missing: 0, invalid: 0 } };
    if (count === 0) return;
    const now = this.deps.clock.now();
    await this.observe([
      {
        kind: 'count',
        count: {
          rule: 'scim-auth-failures',
          subject: 'SCIM authentication failures',
          account: null,
          occurredAt: now,
          evidence: `scim-auth:${iso(now)}:${randomUUID()}`,
          weight: count,
          details: {
            lastBatch: count,
            withoutToken: reasons.missing,
            withInvalidToken: reasons.invalid,
            sourceAddresses: [...addresses],
          },
        },
      },
    ]);
  }

  /** how long SCIM authentication failures are added up before one write */
  scimAuthFlushMs = 10_000;
  #scimAuth: {
    count: number;
    addresses: Set<string>;
    reasons: { missing: number; invalid: number };
    timer?: NodeJS.Timeout;
  } = { count: 0, addresses: new Set(), reasons: { missing: 0, invalid: 0 } };

  /** The newest alerts first, with their deliveries. */
  async list(options: { limit?: number; since?: Date; rule?: RuleId } = {}): Promise<AlertView[]> {
    const { db } = this.deps.store;
    let q = db
      .selectFrom('alerts')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(options.limit ?? 50, 1000));
    if (options.since) q = q.where('created_at', '>=', iso(options.since));
    if (options.rule) q = q.where('rule', '=', options.rule);
    const rows = await q.execute();
    if (rows.length === 0) return [];
    const deliveries = await db
      .selectFrom('alert_deliveries')
      .selectAll()
      .where(
        'alert_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('sink')
      .execute();
    return rows.map((r) =>
      alertFromRow(
        r,
        deliveries
          .filter((d) => d.alert_id === r.id)
          .map((d) => ({
            sink: d.sink,
            state: d.state,
            attempts: Number(d.attempts),
            lastError: d.last_error,
            deliveredAt: d.delivered_at,
          })),
      ),
    );
  }
}
