import type { Command } from 'commander';
import { clientOf, UsageError } from './context.js';
import { out, printJson, t, table } from './output.js';
import { Prompter } from './prompt.js';

interface DeliveryView {
  sink: string;
  state: string;
  attempts: number;
  lastError: string | null;
}
interface AlertView {
  id: string;
  rule: string;
  severity: string;
  title: string;
  subject: string;
  account: string | null;
  firstSeenAt: string;
  occurrences: number;
  suppressedReason: string | null;
  deliveries: DeliveryView[];
}
interface SinkView {
  name: string;
  type: string;
  minSeverity: string;
  settings: Record<string, unknown>;
  createdAt: string;
}

const SEVERITIES = ['low', 'medium', 'high', 'critical'];

/** `ferry alerts list|test|sink …`: what the detections raised and where alerts go. */
export function registerAlertCommands(program: Command): void {
  const alerts = program.command('alerts').description('alerts raised by the detections, and their sinks');

  alerts
    .command('list')
    .description('recent alerts, newest first, with where each was delivered')
    .option('--limit <n>', 'how many', '20')
    .option('--rule <rule>', 'only this rule')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { limit: string; rule?: string; json?: boolean }) {
      const q = new URLSearchParams({ limit: opts.limit, ...(opts.rule ? { rule: opts.rule } : {}) });
      const res = await clientOf(this).get<{ alerts: AlertView[] }>(`/api/v1/alerts?${q}`);
      if (opts.json) return printJson(res.alerts);
      if (res.alerts.length === 0) return out(t`no alerts\n`);
      out(
        table(
          res.alerts.map((a) => ({
            time: a.firstSeenAt,
            severity: a.severity,
            rule: a.rule,
            alert: a.occurrences > 1 ? `${a.title} (×${a.occurrences})` : a.title,
            sent: a.suppressedReason
              ? `suppressed: ${a.suppressedReason}`
              : a.deliveries.map((d) => `${d.sink}:${d.state}`).join(' ') || '-',
          })),
          ['time', 'severity', 'rule', 'alert', 'sent'],
        ),
      );
    });

  alerts
    .command('test')
    .description('send a sample alert to one sink now')
    .argument('<sink>', 'the sink name')
    .action(async function (this: Command, sink: string) {
      await clientOf(this).request('POST', `/api/v1/alerts/sinks/${encodeURIComponent(sink)}/test`);
      out(t`sample alert sent to ${sink}\n`);
    });

  const sinks = alerts.command('sink').description('where alerts go');
  sinks
    .command('list')
    .description('the sinks (never their secrets)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ sinks: SinkView[] }>('/api/v1/alerts/sinks');
      if (opts.json) return printJson(res.sinks);
      out(
        table(
          res.sinks.map((s) => ({
            name: s.name,
            type: s.type,
            'min severity': s.minSeverity,
            settings: JSON.stringify(s.settings),
          })),
          ['name', 'type', 'min severity', 'settings'],
        ),
      );
    });

  sinks
    .command('add')
    .description(
      'add a webhook (HMAC key), slack (URL) or email (SMTP password) sink; the secret is read from stdin or a hidden prompt',
    )
    .argument('<name>', 'a short name')
    .requiredOption('--type <type>', 'webhook | slack | email')
    .option('--url <url>', 'webhook: where to POST (slack: the URL is asked for as the secret)')
    .option('--min-severity <severity>', 'low | medium | high | critical', 'low')
    .option('--host <host>', 'email: SMTP server')
    .option('--port <port>', 'email: SMTP port', '587')
    .option('--tls', 'email: TLS from the first byte (port 465)')
    .option('--require-tls', 'email: refuse to send without STARTTLS')
    .option('--user <user>', 'email: SMTP user (the password is asked for)')
    .option('--from <address>', 'email: sender')
    .option('--to <address...>', 'email: recipients')
    .action(async function (
      this: Command,
      name: string,
      opts: {
        type: string;
        url?: string;
        minSeverity: string;
        host?: string;
        port: string;
        tls?: boolean;
        requireTls?: boolean;
        user?: string;
        from?: string;
        to?: string[];
      },
    ) {
      if (!SEVERITIES.includes(opts.minSeverity))
        throw new UsageError(`--min-severity must be one of ${SEVERITIES.join(', ')}`);
      const ask = async (label: string) => (await new Prompter().ask(t`${label}: `, { secret: true })).trim();
      let body: Record<string, unknown>;
      if (opts.type === 'webhook') {
        if (!opts.url) throw new UsageError('a webhook sink needs --url');
        body = { url: opts.url, secret: await ask('HMAC key (32+ characters)') };
      } else if (opts.type === 'slack') {
        body = { url: await ask('Slack incoming webhook URL') };
      } else if (opts.type === 'email') {
        if (!opts.host || !opts.from || !opts.to?.length)
          throw new UsageError('an email sink needs --host, --from and --to');
        body = {
          host: opts.host,
          port: Number(opts.port),
          ...(opts.tls ? { secure: true } : {}),
          ...(opts.requireTls ? { requireTls: true } : {}),
          ...(opts.user ? { user: opts.user, password: await ask('SMTP password') } : {}),
          from: opts.from,
          to: opts.to,
        };
      } else throw new UsageError('--type must be webhook, slack or email');
      const sink = await clientOf(this).request<SinkView>('POST', '/api/v1/alerts/sinks', {
        name,
        type: opts.type,
        minSeverity: opts.minSeverity,
        ...body,
      });
      out(
        t`added ${sink.type} sink ${sink.name} (alerts of ${sink.minSeverity} and above); try it: ferry alerts test ${sink.name}\n`,
      );
    });

  sinks
    .command('remove')
    .description('remove a sink')
    .argument('<name>', 'the sink name')
    .action(async function (this: Command, name: string) {
      await clientOf(this).request('DELETE', `/api/v1/alerts/sinks/${encodeURIComponent(name)}`);
      out(t`removed ${name}\n`);
    });
}
