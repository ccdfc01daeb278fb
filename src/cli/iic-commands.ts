import type { Command } from 'commander';
import type { SyncPlan, SyncResult } from '../aws/identity-center/permission-set-sync.js';
import type { FerryClient } from './client.js';
import { clientOf, enc, UsageError } from './context.js';
import { note, out, printJson, progressBar, t, table } from './output.js';

/** Raised when some Identity Center items failed; the others were applied and a re-run retries these. */
export class IdentityCenterItemsFailed extends Error {
  constructor(count: number) {
    super(`${count} Identity Center item(s) failed (see above); run apply again once fixed: it converges`);
    this.name = 'IdentityCenterItemsFailed';
  }
}

const sign = { create: '+', update: '~', delete: '-' } as const;

/**
 * Streams the Identity Center sync with a progress bar on stderr (when it is a terminal), prints each
 * applied step and each failure, and returns how many failed.
 */
export async function syncIdentityCenter(
  client: FerryClient,
): Promise<{ result: SyncResult; failed: number }> {
  let bar: ReturnType<typeof progressBar> | null = null;
  let result: SyncResult | null = null;
  let failure: string | null = null;
  await client.streamLines('/api/v1/identity-center/permission-sets/apply', (v) => {
    const line = v as { type: string; total?: number; step?: string; detail?: string } & Partial<SyncResult>;
    if (line.type === 'plan') bar = line.total ? progressBar(line.total) : null;
    else if (line.type === 'progress') bar?.tick(line.step ?? '');
    else if (line.type === 'result') result = { applied: line.applied ?? [], problems: line.problems ?? [] };
    else if (line.type === 'error') failure = line.detail ?? 'unknown error';
  });
  (bar as ReturnType<typeof progressBar> | null)?.end();
  if (failure !== null) throw new Error(`Identity Center sync stopped: ${failure}`);
  if (!result) throw new Error('Identity Center sync: the server closed the stream early');
  const r = result as SyncResult;
  for (const s of r.applied)
    out(
      s.ok
        ? t`${sign[s.action]} iic-${s.kind} ${s.name}${s.drift ? '  (drift reverted)' : ''}\n`
        : t`! iic-${s.kind} ${s.name}: ${s.error ?? 'failed'}\n`,
    );
  for (const p of r.problems) out(t`! ${p.name}: ${p.error}\n`);
  return { result: r, failed: r.applied.filter((s) => !s.ok).length + r.problems.length };
}

/** `ferry iic …`: IAM Identity Center permission sets and account assignments, drift and sync. */
export function registerIicCommands(program: Command): void {
  const iic = program
    .command('iic')
    .description('IAM Identity Center: permission sets, account assignments, drift');
  iic
    .command('drift')
    .description('compare Identity Center with what Ferry declares; exit 2 when anything differs')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const plan = await clientOf(this).get<SyncPlan>('/api/v1/identity-center/permission-sets/plan');
      if (opts.json) printJson(plan);
      else {
        for (const s of plan.steps)
          out(
            t`${sign[s.action]} ${s.kind} ${s.name}${s.drift ? '  [drift: changed outside Ferry]' : ''}${s.details.length ? `  (${s.details.join('; ')})` : ''}\n`,
          );
        for (const u of plan.unmanaged)
          out(t`? unmanaged assignment on a Ferry permission set (left alone): ${u}\n`);
        for (const p of plan.problems) out(t`! ${p.name}: ${p.error}\n`);
        if (plan.steps.length === 0 && plan.problems.length === 0) out(t`in sync\n`);
      }
      if (plan.steps.length > 0 || plan.problems.length > 0) process.exitCode = 2;
    });
  iic
    .command('apply')
    .description('make Identity Center match what Ferry declares (creates, updates, provisions, assigns)')
    .action(async function (this: Command) {
      const { result, failed } = await syncIdentityCenter(clientOf(this));
      if (result.applied.length === 0 && failed === 0) out(t`no changes\n`);
      if (failed > 0) throw new IdentityCenterItemsFailed(failed);
    });

  const sets = iic.command('permission-sets').description('declared permission sets');
  sets
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        '/api/v1/identity-center/permission-sets',
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['name', 'sessionDuration', 'managedPolicies', 'description']));
    });
  sets
    .command('put <name>')
    .description('create or replace a permission set (run `ferry iic apply` to make Identity Center match)')
    .option('--description <text>')
    .option('--session-duration <duration>', 'ISO-8601 PT1H..PT12H (or 4h)', 'PT1H')
    .option('--relay-state <url>')
    .option(
      '--managed-policy <arn>',
      'an AWS managed policy ARN (repeatable)',
      (v, a: string[]) => [...a, v],
      [],
    )
    .option('--inline-policy <json>', 'an inline policy document (JSON)')
    .action(async function (
      this: Command,
      name: string,
      opts: {
        description?: string;
        sessionDuration: string;
        relayState?: string;
        managedPolicy: string[];
        inlinePolicy?: string;
      },
    ) {
      const res = await clientOf(this).request<{ changed: boolean }>(
        'PUT',
        `/api/v1/identity-center/permission-sets/${enc(name)}`,
        {
          sessionDuration: opts.sessionDuration,
          managedPolicies: opts.managedPolicy,
          ...(opts.description ? { description: opts.description } : {}),
          ...(opts.relayState ? { relayState: opts.relayState } : {}),
          ...(opts.inlinePolicy ? { inlinePolicy: opts.inlinePolicy } : {}),
        },
      );
      out(res.changed ? t`permission set ${name} saved\n` : t`permission set ${name} unchanged\n`);
    });
  sets.command('remove <name>').action(async function (this: Command, name: string) {
    await clientOf(this).request('DELETE', `/api/v1/identity-center/permission-sets/${enc(name)}`);
    out(t`permission set ${name} removed (Identity Center follows at the next \`ferry iic apply\`)\n`);
  });

  const assignments = iic.command('assignments').description('permission set assignments');
  assignments
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        '/api/v1/identity-center/permission-set-assignments',
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['id', 'principalType', 'principalId', 'scopeType', 'scopeId', 'permissionSet']));
    });
  assignments
    .command('add')
    .option('--group <group>')
    .option('--user <user>')
    .option('--account <account>', '12-digit id or alias')
    .option('--ou <ou>', 'ou-…, r-… or a path such as /Root/Workloads')
    .requiredOption('--permission-set <name>')
    .action(async function (
      this: Command,
      opts: { group?: string; user?: string; account?: string; ou?: string; permissionSet: string },
    ) {
      if (!opts.group === !opts.user) throw new UsageError('give --group or --user');
      if (!opts.account === !opts.ou) throw new UsageError('give --account or --ou');
      const res = await clientOf(this).request<{ created: boolean; assignment: { id: string } }>(
        'POST',
        '/api/v1/identity-center/permission-set-assignments',
        opts,
      );
      out(res.created ? t`assigned (${res.assignment.id})\n` : t`already assigned (${res.assignment.id})\n`);
    });
  assignments.command('remove <id>').action(async function (this: Command, id: string) {
    await clientOf(this).request('DELETE', `/api/v1/identity-center/permission-set-assignments/${enc(id)}`);
    out(t`removed\n`);
  });

  const aws = program.commands.find((c) => c.name() === 'aws') ?? program.command('aws');
  aws
    .command('discover')
    .description('read AWS Organizations: register its accounts with names and OU paths, record the OU tree')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).request<{
        managementAccountId: string | null;
        delegatedAdministrators: Array<{ accountId: string; name: string }>;
        units: Array<{ id: string; path: string }>;
        accounts: Array<{ id: string; alias: string; ouPath: string; status: string; registered: boolean }>;
        moved: Array<{ accountId: string; from: string; to: string }>;
      }>('POST', '/api/v1/aws/discover');
      if (opts.json) return printJson(res);
      out(table(res.accounts, ['id', 'alias', 'ouPath', 'status', 'registered']));
      out(t`${res.units.length} OU(s); management account ${res.managementAccountId ?? 'unknown'}\n`);
      for (const d of res.delegatedAdministrators)
        out(t`delegated administrator: ${d.accountId} (${d.name})\n`);
      for (const m of res.moved) note(t`moved: ${m.accountId} ${m.from} → ${m.to}\n`);
    });
}
