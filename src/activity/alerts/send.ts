import { isIP } from 'node:net';
import { SIGNATURE_HEADER, signature } from '../../access/pim/notifications.js';
import { guardedPost } from '../../outbound/post.js';
import { OutboundTargetRefused } from '../../outbound/target-guard.js';
import type { AlertView } from '../detections/service.js';
import type { ResolvedSink } from './sinks.js';
import { AlertSinkTargetRefused, checkedAddresses, type TargetPolicy } from './target-guard.js';

/**
 * One delivery failed; the outbox retries it with backoff, unless it is `permanent` (a target Ferry
 * refuses to reach: trying again cannot help). The message never holds a secret.
 */
export class AlertDeliveryFailed extends Error {
  constructor(
    sink: string,
    detail: string,
    readonly permanent = false,
  ) {
    super(`alert sink ${sink}: ${detail}`);
    this.name = 'AlertDeliveryFailed';
  }
}

/** The target's addresses, checked against the policy now (at send time: DNS may have changed). */
async function reachable(sink: ResolvedSink, host: string, targets: TargetPolicy) {
  try {
    return await checkedAddresses(host, targets);
  } catch (err) {
    if (err instanceof AlertSinkTargetRefused)
      throw new AlertDeliveryFailed(sink.name, `refused: ${err.message}`, true);
    throw new AlertDeliveryFailed(sink.name, (err as Error).message);
  }
}

export const ALERT_ID_HEADER = 'ferry-alert-id';

/** The JSON a webhook receives (and what `ferry alerts list --json` prints per alert). */
export function webhookBody(alert: AlertView, consoleUrl: string | null): Record<string, unknown> {
  const { deliveries: _d, ...rest } = alert;
  return { type: 'ferry.alert', version: 1, alert: rest, ...(consoleUrl ? { link: consoleUrl } : {}) };
}

const escapeSlack = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const SLACK_ICON: Record<string, string> = {
  critical: ':rotating_light:',
  high: ':warning:',
  medium: ':large_orange_diamond:',
  low: ':information_source:',
};

/** Slack incoming webhook: `text` (notifications, fallback) and Block Kit blocks. */
export function slackBody(alert: AlertView): Record<string, unknown> {
  const text = `${SLACK_ICON[alert.severity] ?? ''} [${alert.severity}] ${escapeSlack(alert.title)}`.trim();
  const facts = [
    `*rule* ${alert.rule}`,
    `*subject* ${escapeSlack(alert.subject)}`,
    ...(alert.account ? [`*account* ${alert.account}`] : []),
    `*first seen* ${alert.firstSeenAt}`,
    `*evidence* ${escapeSlack(alert.evidence)}`,
  ];
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${text}*` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: facts.join(' · ') }] },
    ],
  };
}

export function emailText(alert: AlertView): { subject: string; text: string } {
  const lines = [
    alert.title,
    '',
    `severity:    ${alert.severity}`,
    `rule:        ${alert.rule}`,
    `subject:     ${alert.subject}`,
    ...(alert.account ? [`account:     ${alert.account}`] : []),
    `first seen:  ${alert.firstSeenAt}`,
    `occurrences: ${alert.occurrences}`,
    `evidence:    ${alert.evidence}`,
    `alert id:    ${alert.id}`,
    '',
    JSON.stringify(alert.details, null, 2),
  ];
  return {
    subject: `[Ferry ${alert.severity}] ${alert.title}`.replace(/[\r\n]+/g, ' ').slice(0, 250),
    text: `${lines.join('\n')}\n`,
  };
}

async function post(
  sink: ResolvedSink,
  url: string,
  body: string,
  headers: Record<string, string>,
  targets: TargetPolicy,
): Promise<void> {
  try {
    await guardedPost(url, body, { headers, targets, userAgent: 'Ferry-Alerts/1' });
  } catch (err) {
    if (err instanceof OutboundTargetRefused)
      throw new AlertDeliveryFailed(sink.name, `refused: ${err.message}`, true);
    // the message names the address at most; the Slack URL (a secret) is not in it
    throw new AlertDeliveryFailed(sink.name, (err as Error).message);
  }
}

/** Sends one alert to one sink; throws AlertDeliveryFailed on anything but success. */
export async function sendAlert(
  sink: ResolvedSink,
  alert: AlertView,
  options: { nowSeconds: number; consoleUrl: string | null; targets: TargetPolicy },
): Promise<void> {
  const { targets } = options;
  if (sink.type === 'webhook') {
    const body = JSON.stringify(webhookBody(alert, options.consoleUrl));
    return post(
      sink,
      String(sink.settings.url),
      body,
      {
        [SIGNATURE_HEADER]: signature(sink.secret, options.nowSeconds, body),
        [ALERT_ID_HEADER]: alert.id,
      },
      targets,
    );
  }
  if (sink.type === 'slack') return post(sink, sink.secret, JSON.stringify(slackBody(alert)), {}, targets);
  const s = sink.settings as {
    host: string;
    port: number;
    secure: boolean;
    requireTls: boolean;
    user: string | null;
    from: string;
    to: string[];
  };
  // Connect to the address just checked; TLS still verifies (and SNI names) the host name.
  const [address] = await reachable(sink, s.host, targets);
  // nodemailer loads with the first e-mail alert, not at start (ADR 0046).
  const { createTransport } = await import('nodemailer');
  const transport = createTransport({
    host: address!.address,
    ...(isIP(s.host) ? {} : { servername: s.host, tls: { servername: s.host } }),
    port: s.port,
    secure: s.secure,
    // Credentials never travel in plaintext: a sink with a user requires TLS even if it was stored
    // with requireTls false (before that was refused at creation).
    requireTLS: s.requireTls || (s.user !== null && !s.secure),
    ...(s.user ? { auth: { user: s.user, pass: sink.secret } } : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    logger: false,
  });
  try {
    const { subject, text } = emailText(alert);
    await transport.sendMail({
      from: s.from,
      to: s.to,
      subject,
      text,
      headers: { 'X-Ferry-Alert-Id': alert.id },
    });
  } catch (err) {
    const e = err as Error & { code?: string; responseCode?: number };
    throw new AlertDeliveryFailed(
      sink.name,
      `SMTP ${e.code ?? ''} ${e.responseCode ?? ''} ${e.message.split('\n')[0]}`.replace(/\s+/g, ' '),
    );
  } finally {
    transport.close();
  }
}
