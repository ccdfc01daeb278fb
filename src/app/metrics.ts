import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SigninOutcome } from '../identity/signin.js';

/** One registry per server instance, so tests can run several servers in one process. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'ferry_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly signins = new Counter({
    name: 'ferry_signins_total',
    help: 'Sign-in steps by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly auditExportFailures = new Gauge({
    name: 'ferry_audit_export_failures',
    help: 'Failed attempts to publish the audit tree head since the last success, by destination',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly auditExportedTreeSize = new Gauge({
    name: 'ferry_audit_exported_tree_size',
    help: 'Tree size of the newest audit head published, by destination',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly auditArchiveFailures = new Gauge({
    name: 'ferry_audit_archive_failures',
    help: 'Failed scheduled archive runs since the last success, by destination (retried with backoff)',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly auditArchivedBelow = new Gauge({
    name: 'ferry_audit_archived_leaves',
    help: 'Leaves of the audit tree archived and pruned from the database (leaves below this), by destination',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly auditUnsealed = new Gauge({
    name: 'ferry_audit_unsealed_events',
    help: 'Audit events committed but not yet sealed into the signed tree',
    registers: [this.registry],
  });

  readonly alertsRaised = new Counter({
    name: 'ferry_alerts_raised_total',
    help: 'Alerts raised by the detections, by rule, severity and whether a suppression window held them',
    labelNames: ['rule', 'severity', 'suppressed'] as const,
    registers: [this.registry],
  });
  readonly alertDeliveries = new Counter({
    name: 'ferry_alert_deliveries_total',
    help: 'Alert deliveries by sink and outcome (delivered, retrying, failed, rate-limited)',
    labelNames: ['sink', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly pimNotifications = new Counter({
    name: 'ferry_pim_notifications_total',
    help: 'PIM webhook deliveries by webhook and outcome (delivered, retrying, dropped after permanent refusals)',
    labelNames: ['webhook', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' });
    // Start every outcome at zero so dashboards and rate() see the series from the first scrape.
    for (const outcome of [
      'success',
      'failure',
      'locked',
      'second-factor-required',
      'busy',
    ] satisfies SigninOutcome[]) {
      this.signins.inc({ outcome }, 0);
    }
  }

  alertRaised(rule: string, severity: string, suppressed: boolean): void {
    this.alertsRaised.inc({ rule, severity, suppressed: String(suppressed) });
  }

  alertDelivery(sink: string, outcome: string): void {
    this.alertDeliveries.inc({ sink, outcome });
  }

  pimNotification(webhook: string, outcome: string): void {
    this.pimNotifications.inc({ webhook, outcome });
  }

  signin(outcome: SigninOutcome): void {
    this.signins.inc({ outcome });
  }
}
