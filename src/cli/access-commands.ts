import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { onFirstUse } from '../lazy-module.js';
import { clientOf, enc, UsageError } from './context.js';
import { IdentityCenterItemsFailed, syncIdentityCenter } from './iic-commands.js';
import { out, printJson, t, table } from './output.js';

/** The YAML parser loads when a file is read, not at start (ADR 0046). */
const yaml = onFirstUse<typeof import('yaml')>('yaml');

/** 12h, 90m or plain seconds → seconds. */
function seconds(text: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`expected seconds or a duration like 12h (got ${text})`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'] ?? 1);
}

interface Change {
  action: 'create' | 'update' | 'delete';
  kind: string;
  name: string;
  detail?: string;
}

/** AWS accounts, roles, assignments and the declarative tenant file. */
export function registerAccessCommands(program: Command): void {
  program
    .command('apply <file>')
    .description('apply a tenant file (groups, AWS accounts and roles, assignments, SSH logins); idempotent')
    .option('--dry-run', 'print what would change and change nothing')
    .option('--prune', 'also remove assignments and SSH login mappings the file does not list')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      file: string,
      opts: { dryRun?: boolean; prune?: boolean; json?: boolean },
    ) {
      let document: unknown;
      try {
        document = yaml.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message.split('\n')[0]}`);
      }
      const client = clientOf(this);
      const res = await client.request<{
        dryRun: boolean;
        changes: Change[];
        identityCenter?: {
          syncNeeded: boolean;
          problems: Array<{ name: string; error: string }>;
          unmanaged: string[];
        };
      }>('POST', '/api/v1/tenant/apply', {
        document: document ?? {},
        dryRun: opts.dryRun ?? false,
        prune: opts.prune ?? false,
      });
      if (opts.json && !res.identityCenter?.syncNeeded) return printJson(res);
      const sign = { create: '+', update: '~', delete: '-' } as const;
      const problems = res.identityCenter?.problems ?? [];
      if (!opts.json)
        for (const c of res.changes) {
          out(t`${sign[c.action]} ${c.kind} ${c.name}${c.detail ? `  (${c.detail})` : ''}\n`);
        }
      for (const p of problems) out(t`! ${p.name}: ${p.error}\n`);
      // Permission sets: Identity Center is made to match next, with progress, each item reported.
      let synced = 0;
      let failed = problems.length;
      if (res.identityCenter?.syncNeeded) {
        const sync = await syncIdentityCenter(client);
        synced = sync.result.applied.length;
        failed += sync.failed;
        if (opts.json) printJson({ ...res, identityCenter: sync.result });
      }
      if (!opts.json && res.changes.length === 0 && synced === 0 && failed === 0) out(t`no changes\n`);
      if (res.dryRun && res.changes.length > 0) out(t`(dry run: nothing was changed)\n`);
      if (failed > 0) throw new IdentityCenterItemsFailed(failed);
    });

  const aws = program.command('aws').description('AWS accounts and roles known to Ferry');
  const accounts = aws.command('accounts').description('the AWS accounts registry');
  accounts
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>('/api/v1/aws/accounts');
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['id', 'alias', 'partition', 'samlProviderArn']));
    });
  accounts
    .command('add <id>')
    .description('register (or update) an AWS account')
    .requiredOption('--alias <alias>', 'a short name, e.g. Account1')
    .option('--partition <partition>', 'aws, aws-us-gov or aws-cn', 'aws')
    .option('--saml-provider <name>', 'the IAM SAML provider name in that account', 'Ferry')
    .option('--endpoint-url <url>', "the account's AWS endpoint when it is not AWS itself (a local AWS)")
    .action(async function (
      this: Command,
      id: string,
      opts: { alias: string; partition: string; samlProvider: string; endpointUrl?: string },
    ) {
      const a = await clientOf(this).request<{ id: string; alias: string }>(
        'PUT',
        `/api/v1/aws/accounts/${enc(id)}`,
        {
          alias: opts.alias,
          partition: opts.partition,
          samlProviderName: opts.samlProvider,
          ...(opts.endpointUrl ? { endpointUrl: opts.endpointUrl } : {}),
        },
      );
      out(t`registered ${a.id} (${a.alias})\n`);
    });

  const roles = aws.command('roles').description("an account's IAM roles");
  roles
    .command('list <account>')
    .option('--json', 'print JSON')
    .action(async function (this: Command, account: string, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ roles: Array<Record<string, unknown>> }>(
        `/api/v1/aws/accounts/${enc(account)}`,
      );
      if (opts.json) return printJson(res.roles);
      out(table(res.roles, ['name', 'maxSessionDuration', 'arn']));
    });
  roles
    .command('add <account> <role>')
    .description('register (or update) a role')
    .option('--max-session <duration>', 'the role MaxSessionDuration, e.g. 12h', '1h')
    .option('--path <path>', 'the role path', '/')
    .action(async function (
      this: Command,
      account: string,
      role: string,
      opts: { maxSession: string; path: string },
    ) {
      const r = await clientOf(this).request<{ arn: string }>(
        'PUT',
        `/api/v1/aws/accounts/${enc(account)}/roles/${enc(role)}`,
        {
          maxSessionDuration: seconds(opts.maxSession),
          path: opts.path,
        },
      );
      out(t`registered ${r.arn}\n`);
    });

  const assignments = program.command('assignments').description('who may have which AWS role');
  assignments
    .command('list')
    .option('--group <group>')
    .option('--user <user>')
    .option('--workload <workload>', 'a workload identity (client id or name)')
    .option('--account <account>')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: { group?: string; user?: string; workload?: string; account?: string; json?: boolean },
    ) {
      const q = new URLSearchParams();
      if (opts.group) q.set('group', opts.group);
      if (opts.user) q.set('user', opts.user);
      if (opts.workload) q.set('workload', opts.workload);
      if (opts.account) q.set('account', opts.account);
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/assignments?${q}`,
      );
      if (opts.json) return printJson(res.items);
      // With --user, assignments through a group are listed too, marked with the group.
      out(
        table(
          res.items.map((a) => ({
            ...a,
            via: a.via === 'group' ? `group ${String(a.viaGroup)}` : (a.via ?? ''),
          })),
          opts.user ? ['id', 'target', 'via'] : ['id', 'principalType', 'principalId', 'target'],
        ),
      );
    });
  assignments
    .command('add')
    .description('assign an AWS role to a group, a user or a workload identity')
    .option('--group <group>')
    .option('--user <user>')
    .option('--workload <workload>', 'a workload identity (client id or name)')
    .requiredOption('--account <account>', 'account id or alias')
    .requiredOption('--role <role>')
    .action(async function (
      this: Command,
      opts: { group?: string; user?: string; workload?: string; account: string; role: string },
    ) {
      const a = await clientOf(this).request<{ target: string; principalName?: string }>(
        'POST',
        '/api/v1/assignments',
        opts,
      );
      out(t`${a.principalName ?? opts.group ?? opts.user ?? opts.workload} → ${a.target}\n`);
    });
  assignments.command('remove <id>').action(async function (this: Command, id: string) {
    await clientOf(this).request('DELETE', `/api/v1/assignments/${enc(id)}`);
    out(t`removed ${id}\n`);
  });
}
