import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import type { Clock } from '../../clock.js';
import type { DomainEvent } from '../../events.js';
import { guardedPost, OutboundHttpStatus } from '../../outbound/post.js';
import { OutboundTargetRefused, type TargetPolicy } from '../../outbound/target-guard.js';
import type { Store } from '../../store/open.js';
import { enqueueEvent } from '../../store/outbox.js';
import type { Database } from '../../store/schema.js';
import type { ActivationNotifier } from './activations.js';

/** One place activation changes are announced: a Slack incoming webhook, or any HTTPS endpoint. */
export interface PimWebhook {
  name: string;
  url: string;
  format: 'slack' | 'generic';
  /** generic: the HMAC-SHA256 key the receiver verifies the signature with */
  secret?: string;
}

/** Header of generic deliveries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (as Stripe does). */
export const SIGNATURE_HEADER = 'ferry-signature';
/** Receivers should refuse deliveries signed longer ago than this (replay). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Enqueues one outbox event per webhook in the transition's own transaction; delivery retries per webhook. */
export function webhookNotifier(clock: Clock, webhooks: PimWebhook[]): ActivationNotifier {
  return async (trx: Kysely<Database>, activation, change, actor, reason) => {
    for (const w of webhooks) {
      await enqueueEvent(trx, clock, {
        type: 'pim.notification',
        webhook: w.name,
        change,
        actor: actorName(actor),
        reason,
        activation: { ...activation },
      });
    }
  };
}

type Notification = Extract<DomainEvent, { type: 'pim.notification' }>;

interface Snapshot {
  id: string;
  state: string;
  userName: string;
  target: string;
  durationSeconds: number;
  justification: string | null;
  ticket: string | null;
  approvalsRequired: number;
  approvals: Array<{ userName: string }>;
  expiresAt: string | null;
}

/** Where a person answers a request: the page shows it and offers Approve and Deny. */
export function activationLinks(publicUrl: string, id: string) {
  const base = `${publicUrl.replace(/\/$/, '')}/pim/activations/${encodeURIComponent(id)}`;
  return { view: base, approve: `${base}?action=approve`, deny: `${base}?action=deny` };
}

const HEADLINES: Record<string, (a: Snapshot) => string> = {
  requested: (a) => `${a.userName} requests ${a.target} for ${humanDuration(a.durationSeconds)}`,
  'approval-recorded': (a) =>
    `${a.approvals.at(-1)?.userName ?? 'someone'} approved ${a.userName}'s request for ${a.target} (${a.approvals.length} of ${a.approvalsRequired})`,
  approved: (a) => `${a.userName}'s request for ${a.target} was approved`,
  active: (a) => `${a.userName} now has ${a.target} until ${a.expiresAt}`,
  denied: (a) => `${a.userName}'s request for ${a.target} was denied`,
  lapsed: (a) => `${a.userName}'s request for ${a.target} lapsed: nobody answered`,
  cancelled: (a) => `${a.userName} cancelled the request for ${a.target}`,
  expired: (a) => `${a.userName}'s activation of ${a.target} expired`,
  revoked: (a) => `${a.userName}'s activation of ${a.target} was revoked`,
};

function humanDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return [h ? `${h}h` : '', m ? `${m}m` : ''].join('') || `${seconds}s`;
}

/** The JSON body one webhook receives. */
export function notificationBody(webhook: PimWebhook, n: Notification, publicUrl: string): unknown {
  const a = n.activation as unknown as Snapshot;
  const links = activationLinks(publicUrl, a.id);
  const headline = (HEADLINES[n.change] ?? ((x: Snapshot) => `${x.target}: ${n.change}`))(a);
  const waiting = a.state === 'requested';
  if (webhook.format === 'generic') {
    return {
      type: `activation.${n.change}`,
      summary: headline,
      actor: n.actor,
      reason: n.reason,
      activation: n.activation,
      links: waiting ? links : { view: links.view },
    };
  }
  // Slack incoming webhook: `text` is the fallback, blocks carry the detail and the buttons.
  const fields = [
    `*Role:* ${a.target}`,
    `*Duration:* ${humanDuration(a.durationSeconds)}`,
    ...(a.justification ? [`*Justification:* ${a.justification}`] : []),
    ...(a.ticket ? [`*Ticket:* ${a.ticket}`] : []),
    ...(n.reason && n.change !== 'requested' ? [`*Reason:* ${n.reason}`] : []),
  ];
  return {
    text: headline,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${escapeSlack(headline)}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: fields.map(escapeSlack).join('\n') } },
      waiting
        ? {
            type: 'actions',
            elements: [
              {
                type: 'button',
                style: 'primary',
                text: { type: 'plain_text', text: 'Approve' },
                url: links.approve,
              },
              {
                type: 'button',
                style: 'danger',
                text: { type: 'plain_text', text: 'Deny' },
                url: links.deny,
              },
            ],
          }
        : {
            type: 'context',
            elements: [{ type: 'mrkdwn', text: `<${links.view}|activation ${a.id}> · ${n.actor}` }],
          },
    ],
  };
}

/** Slack reads <, > and & as markup. */
const escapeSlack = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function signature(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** What a receiver does (exported for tests and for receivers written in TypeScript). */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowSeconds: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): boolean {
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signature(secret, t, body).split('v1=')[1]!, 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

export class WebhookDeliveryFailed extends Error {
  constructor(
    name: string,
    detail: string,
    /** the receiver's HTTP status, when it answered */
    readonly status?: number,
  ) {
    super(`webhook ${name}: ${detail}`);
    this.name = 'WebhookDeliveryFailed';
  }
}

/**
 * A receiver's answer that trying again will not change: a 4xx other than 408 (Request Timeout) and
 * 429 (Too Many Requests), e.g. 404 for a deleted Slack webhook, 401/403 for a rotated secret.
 */
export const isPermanentRefusal = (status: number | undefined): boolean =>
  status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;

/**
 * How many permanent refusals in a row a webhook gets (with the outbox's backoff between them: 2, 4, 8,
 * 16 s, so a receiver being redeployed gets half a minute) before the notification is dropped and
 * recorded. Failures of other kinds (5xx, timeouts) before them do not count: a receiver that was down
 * and answers one 404 while it comes back is tried again.
 */
export const REFUSED_NOTIFICATION_ATTEMPTS = 5;

/** The refusal count a retried notification's error carries into its next try (outbox last_error). */
const REFUSALS_IN_A_ROW = /\(permanent refusal (\d+) of \d+\)$/;

/** Permanent refusals in a row before this try, read from the previous try's error. */
export function refusalsBefore(lastError: string | null): number {
  const m = lastError ? REFUSALS_IN_A_ROW.exec(lastError) : null;
  return m ? Number(m[1]) : 0;
}

/**
 * Posts one notification; throws on anything but 2xx. The webhook's host must pass the same target
 * guard as alert sinks (`targets`: alerts.allowPrivateTargets, alerts.allowTargetNetworks): a URL on an
 * internal address is refused with "refused: …" until the config allows it or names another URL.
 */
export async function sendNotification(
  webhooks: PimWebhook[],
  n: Notification,
  publicUrl: string,
  clock: Clock,
  targets: TargetPolicy,
): Promise<'sent' | 'skipped'> {
  const webhook = webhooks.find((w) => w.name === n.webhook);
  if (!webhook) return 'skipped'; // removed from the config since: nobody to tell
  const body = JSON.stringify(notificationBody(webhook, n, publicUrl));
  const headers: Record<string, string> = {};
  if (webhook.format === 'generic' && webhook.secret)
    headers[SIGNATURE_HEADER] = signature(webhook.secret, Math.floor(clock.now().getTime() / 1000), body);
  try {
    await guardedPost(webhook.url, body, { headers, targets, userAgent: 'Ferry-Webhooks/1' });
    return 'sent';
  } catch (err) {
    if (err instanceof OutboundTargetRefused)
      throw new WebhookDeliveryFailed(webhook.name, `refused: ${err.message}`);
    // names the host or address at most; a Slack URL (a secret) is not in it
    throw new WebhookDeliveryFailed(
      webhook.name,
      (err as Error).message,
      err instanceof OutboundHttpStatus ? err.status : undefined,
    );
  }
}

export type NotificationOutcome = 'delivered' | 'retrying' | 'dropped';

export interface NotificationDeliveryDeps {
  store: Store;
  clock: Clock;
  /** alerts.allowPrivateTargets, alerts.allowTargetNetworks */
  targets: TargetPolicy;
  metrics?: { pimNotification(webhook: string, outcome: NotificationOutcome): void };
}

const notifier = systemActor('pim-notifications');

/**
 * Delivers one notification from the outbox handler (`attempts`: this try included; `lastError`: the
 * previous try's). A failure throws, so the outbox retries it with backoff, except the
 * REFUSED_NOTIFICATION_ATTEMPTS-th permanent refusal (isPermanentRefusal) in a row: then the
 * notification is dropped, recorded as the audit event
 * `pim.notification-dropped` and counted (`ferry_pim_notifications_total{outcome="dropped"}`), and the
 * outbox is done with it. Timeouts, 5xx, 408, 429 and refused targets keep retrying.
 */
export async function deliverNotification(
  deps: NotificationDeliveryDeps,
  webhooks: PimWebhook[],
  n: Notification,
  publicUrl: string,
  { attempts, lastError }: { attempts: number; lastError: string | null },
): Promise<NotificationOutcome | 'skipped'> {
  try {
    if ((await sendNotification(webhooks, n, publicUrl, deps.clock, deps.targets)) === 'skipped')
      return 'skipped';
  } catch (err) {
    const status = err instanceof WebhookDeliveryFailed ? err.status : undefined;
    const refusals = isPermanentRefusal(status) ? refusalsBefore(lastError) + 1 : 0;
    if (refusals < REFUSED_NOTIFICATION_ATTEMPTS) {
      deps.metrics?.pimNotification(n.webhook, 'retrying');
      if (refusals === 0) throw err;
      throw new WebhookDeliveryFailed(
        n.webhook,
        `${(err as Error).message.replace(/^webhook [^:]*: /, '').slice(0, 500)} (permanent refusal ${refusals} of ${REFUSED_NOTIFICATION_ATTEMPTS})`,
        status,
      );
    }
    const { store, clock } = deps;
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'pim.notification-dropped',
        outcome: 'failure',
        actor: notifier,
        subject: n.webhook,
        data: {
          webhook: n.webhook,
          activationId: (n.activation as { id?: string }).id ?? null,
          change: n.change,
          status,
          attempts,
          error: (err as Error).message.slice(0, 500),
        },
      }),
    );
    deps.metrics?.pimNotification(n.webhook, 'dropped');
    return 'dropped';
  }
  deps.metrics?.pimNotification(n.webhook, 'delivered');
  return 'delivered';
}
