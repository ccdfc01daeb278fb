import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ActivityItemView, SyncResultView } from '../activity/routes.js';
import { clientOf, enc, UsageError } from './context.js';
import { type Inert, joinInert, json, note, out, printJson, t, table } from './output.js';

interface SourceView {
  id: string;
  bucket: string;
  prefix: string;
  region: string | null;
  lastSyncAt: string | null;
  lastError: string | null;
  positions: Array<{ folder: string; afterKey: string }>;
}

interface LeastPrivilegeView {
  account: string;
  role: string;
  roleArn: string;
  since: string;
  records: number;
  used: Array<{ action: string; calls: number; lastUsed: string; allowedNow: boolean }>;
  denied: Array<{ action: string; calls: number }>;
  policies: string[];
  unusedGrants: Array<{ policy: string; action: string }>;
  proposed: unknown;
  validation: { checked: number; allowed: number; failures: Array<{ action: string; result: string }> };
  authorizationDetails: unknown;
}

const query = (params: Record<string, string | undefined>) =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${enc(v!)}`)
    .join('&');

/** A timeline line; AWS errors and AccessDenied stand out (marked, and in capitals for denied). */
function line(i: ActivityItemView): Inert {
  const mark =
    i.outcome === 'denied'
      ? '!! DENIED'
      : i.outcome === 'error'
        ? '!  error '
        : i.outcome === 'failure'
          ? '!  refused'
          : '         ';
  const where = i.account ? t` ${i.account}${i.role ? t`/${i.role}` : ''}` : '';
  const what =
    i.source === 'cloudtrail'
      ? t`${i.eventSource?.replace(/\.amazonaws\.com$/, '') ?? ''}:${i.eventName}`
      : t`ferry ${i.eventName}`;
  const key = i.accessKeyId ? t` key ${i.accessKeyId}` : '';
  const who = i.person
    ? t` ${i.person}`
    : i.source === 'cloudtrail'
      ? t` (not issued by Ferry: ${i.attribution ?? 'none'})`
      : '';
  const why = i.errorCode ? t` ${i.errorCode}` : '';
  const detail = i.detail ? t` — ${i.detail.slice(0, 160)}` : '';
  return t`${i.time}  ${mark}  ${what}${where}${who}${key}${why}${detail}\n`;
}

/** `ferry cloudtrail …`, `ferry activity` and `ferry access least-privilege`. */
export function registerActivityCommands(program: Command): void {
  const cloudtrail = program.command('cloudtrail').description('CloudTrail log files Ferry reads from S3');

  cloudtrail
    .command('add-source')
    .description("read CloudTrail log files from a bucket (a trail's, or an organization trail's)")
    .requiredOption('--bucket <bucket>', 'the S3 bucket the trail delivers to')
    .option('--prefix <prefix>', "the trail's S3 key prefix (AWSLogs/ follows it)")
    .option('--region <region>', "the bucket's region (default: the server's aws.region)")
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: { bucket: string; prefix?: string; region?: string; json?: boolean },
    ) {
      const s = await clientOf(this).request<SourceView>('POST', '/api/v1/cloudtrail/sources', {
        bucket: opts.bucket,
        ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
        ...(opts.region !== undefined ? { region: opts.region } : {}),
      });
      if (opts.json) return printJson(s);
      out(
        t`added s3://${s.bucket}/${s.prefix} (${s.id}); run \`ferry cloudtrail sync\` or wait for the worker\n`,
      );
    });

  cloudtrail
    .command('sources')
    .description('list sources with their last sync and position')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: SourceView[] }>('/api/v1/cloudtrail/sources');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((s) => ({
            ...s,
            place: `s3://${s.bucket}/${s.prefix}`,
            folders: s.positions.length,
            lastError: s.lastError ?? '',
          })),
          ['place', 'region', 'folders', 'lastSyncAt', 'lastError', 'id'],
        ),
      );
    });

  cloudtrail
    .command('remove-source <id>')
    .description('stop reading a source (its records stay until retention removes them)')
    .action(async function (this: Command, id: string) {
      await clientOf(this).request('DELETE', `/api/v1/cloudtrail/sources/${enc(id)}`);
      out(t`removed ${id}\n`);
    });

  cloudtrail
    .command('sync')
    .description('read new log files from every source now (exit 1 when a source stopped early)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).request<SyncResultView>('POST', '/api/v1/cloudtrail/sync');
      if (res.sources.some((s) => s.error)) process.exitCode = 1;
      if (opts.json) return printJson(res);
      for (const s of res.sources) {
        out(
          t`s3://${s.bucket}/${s.prefix}: ${s.busy ? 'busy (another instance is syncing it)' : `${s.files} files, ${s.records} records, ${s.stored} stored, ${s.duplicates} duplicates, ${s.rejected} rejected`}\n`,
        );
        if (s.error) note(t`  stopped: ${s.error} (its position is kept; the next sync resumes there)\n`);
      }
      for (const k of res.skipped)
        note(t`  skipped s3://${k.bucket}/${k.key}: ${k.reason} (${k.recordsKept} records kept)\n`);
      if (res.pruned) out(t`${res.pruned} records removed by retention\n`);
    });

  program
    .command('activity')
    .description('a timeline: Ferry sign-in, decision and credential, then the AWS calls made with it')
    .option('--user <upn>', 'a person (UPN or id)')
    .option('--account <account>', 'an AWS account (id or alias)')
    .option('--role <role>', 'with --account: one role')
    .option('--since <when>', 'how far back: 1h, 7d, or an ISO-8601 time', '24h')
    .option('--json', 'print JSON (an array of events)')
    .action(async function (
      this: Command,
      opts: { user?: string; account?: string; role?: string; since: string; json?: boolean },
    ) {
      if (!opts.user && !opts.account) throw new UsageError('give --user, or --account (and --role)');
      if (opts.role && !opts.account) throw new UsageError('--role needs --account');
      const res = await clientOf(this).get<{ items: ActivityItemView[] }>(
        `/api/v1/activity?${query({ user: opts.user, account: opts.account, role: opts.role, since: opts.since })}`,
      );
      if (opts.json) return printJson(res.items);
      if (res.items.length === 0) return out(t`no activity since ${opts.since}\n`);
      out(joinInert(res.items.map(line)));
      const denied = res.items.filter((i) => i.outcome === 'denied').length;
      const errors = res.items.filter((i) => i.outcome === 'error').length;
      if (denied || errors) out(t`\n${denied} access denied, ${errors} other AWS errors\n`);
    });

  const access =
    program.commands.find((c) => c.name() === 'access') ??
    program.command('access').description('access questions');
  access
    .command('least-privilege')
    .description('actions a role used (CloudTrail) vs what its policies allow, and a narrower policy')
    .requiredOption('--account <account>', 'AWS account (id or alias)')
    .option('--role <role>', 'the IAM role')
    .option('--permission-set <name>', 'or: the role an IAM Identity Center permission set made')
    .option('--since <when>', 'the window: 30d, 90d, or an ISO-8601 time', '30d')
    .option(
      '--out <file>',
      'write the proposal as get-account-authorization-details JSON (for `ferry access simulate --input` and `ferry migrate plan --input`)',
    )
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        account: string;
        role?: string;
        permissionSet?: string;
        since: string;
        out?: string;
        json?: boolean;
      },
    ) {
      if (!opts.role === !opts.permissionSet)
        throw new UsageError('give exactly one of --role or --permission-set');
      const r = await clientOf(this).get<LeastPrivilegeView>(
        `/api/v1/access/least-privilege?${query({ account: opts.account, role: opts.role, permissionSet: opts.permissionSet, since: opts.since })}`,
      );
      if (opts.out) writeFileSync(opts.out, `${JSON.stringify(r.authorizationDetails, null, 2)}\n`);
      if (opts.json) return printJson(r);
      out(t`${r.roleArn}: ${r.records} recorded calls since ${r.since}\n\nused:\n`);
      out(
        table(
          r.used.map((u) => ({ ...u, allowedNow: u.allowedNow ? 'yes' : 'no' })),
          ['action', 'calls', 'lastUsed', 'allowedNow'],
        ),
      );
      if (r.denied.length) out(t`\naccess denied:\n${table(r.denied, ['action', 'calls'])}`);
      if (r.unusedGrants.length)
        out(t`\ngranted, never used:\n${table(r.unusedGrants, ['action', 'policy'])}`);
      out(
        t`\nproposed policy (${r.validation.allowed}/${r.validation.checked} recorded actions allowed by it):\n${json(r.proposed, 2)}\n`,
      );
      if (opts.out)
        out(
          t`\nwrote ${opts.out}; try: ferry access simulate --input ${opts.out} --role ${r.role} --action ACTION\n`,
        );
    });
}
