import { SIGNATURE_HEADER, signature } from '../../access/pim/notifications.js';
import type { AlertView } from '../detections/service.js';
import type { ResolvedSink } from './sinks.js';

/** One delivery failed; the outbox retries it with backoff. The message never holds a secret. */
export class AlertDeliveryFailed extends Error {
  constructor(sink: string, detail: string) {
    super(`alert sink ${sink}: ${detail}`);
    this.name = 'AlertDeliveryFailed';
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
): Promise<void> {
  let res: Response;
  // fetch refuses a URL with user:password@: they go as HTTP Basic, as a browser would send them.
  const target = new URL(url);
  const basic: Record<string, string> =
    target.username || target.password
      ? {
          authorization: `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`,
        }
      : {};
  target.username = '';
  target.password = '';
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Ferry-Alerts/1', ...basic, ...headers },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // fetch's message names the host at most; the Slack URL (a secret) is not in it
    throw new AlertDeliveryFailed(sink.name, (err as Error).message);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new AlertDeliveryFailed(sink.name, `HTTP ${res.status}`);
}

/** Sends one alert to one sink; throws AlertDeliveryFailed on anything but success. */
export async function sendAlert(
  sink: ResolvedSink,
  alert: AlertView,
  options: { nowSeconds: number; consoleUrl: string | null },
): Promise<void> {
  if (sink.type === 'webhook') {
    const body = JSON.stringify(webhookBody(alert, options.consoleUrl));
    return post(sink, String(sink.settings.url), body, {
      [SIGNATURE_HEADER]: signature(sink.secret, options.nowSeconds, body),
      [ALERT_ID_HEADER]: alert.id,
    });
  }
  if (sink.type === 'slack') return post(sink, sink.secret, JSON.stringify(slackBody(alert)), {});
  const s = sink.settings as {
    host: string;
    port: number;
    secure: boolean;
    requireTls: boolean;
    user: string | null;
    from: string;
    to: string[];
  };
  // nodemailer loads with the first e-mail alert, not at start (ADR 0046).
  const { createTransport } = await import('nodemailer');
  const transport = createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    requireTLS: s.requireTls,
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
