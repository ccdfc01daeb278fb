import type { Command } from 'commander';
import type { PushDiff } from '../aws/identity-center/diff.js';
import { clientOf, enc, serverOf, UsageError } from './context.js';
import { type Inert, out, printJson, progressBar, t, table } from './output.js';
import { Prompter } from './prompt.js';

interface TargetView {
  endpoint: string;
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

/** Raised when the server reports that a push stopped; the CLI exits non-zero with its detail. */
class PushFailed extends Error {
  constructor(detail: string) {
    super(`push stopped: ${detail} (run it again: it resumes where it stopped)`);
    this.name = 'PushFailed';
  }
}

interface ConnectionView {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  passwordWrites: boolean;
}

/** `ferry scim token create|list|revoke`: the bearer tokens provisioning clients such as Entra ID use. */
export function registerScimCommands(program: Command): void {
  const scim = program.command('scim').description('SCIM provisioning (Entra ID → Ferry)');
  const token = scim.command('token').description('provisioning connections and their bearer tokens');

  token
    .command('create')
    .description("create a connection and print its token once (Entra ID's Secret Token)")
    .requiredOption('--name <name>', 'what provisions with it, e.g. entra')
    .option(
      '--allow-passwords',
      'let it set passwords of the users it provisions (off by default; never for accounts handed to it)',
    )
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { name: string; allowPasswords?: boolean; json?: boolean }) {
      const res = await clientOf(this).request<{ token: string; connection: ConnectionView }>(
        'POST',
        '/api/v1/scim/tokens',
        { name: opts.name, ...(opts.allowPasswords ? { allowPasswords: true } : {}) },
      );
      if (opts.json) return printJson(res);
      const server = serverOf(this);
      out(
        t`${res.token}\n\nconnection: ${res.connection.name} (${res.connection.id})\ntenant URL: ${server}/scim/v2\nThe token is shown only now; store it in Entra ID's Secret Token field.\n`,
      );
    });

  token
    .command('list')
    .description('list connections (never their tokens)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: ConnectionView[] }>('/api/v1/scim/tokens');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((c) => ({
            ...c,
            state: c.revokedAt ? 'revoked' : 'active',
            passwords: c.passwordWrites ? 'allowed' : 'no',
          })),
          ['name', 'state', 'passwords', 'lastUsedAt', 'createdAt', 'createdBy', 'id'],
        ),
      );
    });

  token
    .command('revoke <id>')
    .description('revoke a connection: its token stops working at once')
    .action(async function (this: Command, id: string) {
      const c = await clientOf(this).request<ConnectionView>('DELETE', `/api/v1/scim/tokens/${enc(id)}`);
      out(t`revoked ${c.name} (${c.id})\n`);
    });

  token
    .command('hand-over <id>')
    .description(
      'let a connection manage an existing user or group (one it did not create); it can never set that password',
    )
    .option('--user <user>', 'the user (UPN or id)')
    .option('--group <group>', 'the group (name or id)')
    .action(async function (this: Command, id: string, opts: { user?: string; group?: string }) {
      if ((opts.user === undefined) === (opts.group === undefined)) {
        throw new UsageError('give exactly one of --user or --group');
      }
      const res = await clientOf(this).request<{ kind: string; name: string; connection: ConnectionView }>(
        'POST',
        `/api/v1/scim/tokens/${enc(id)}/hand-over`,
        opts.user !== undefined ? { user: opts.user } : { group: opts.group },
      );
      out(t`${res.kind} ${res.name} is now managed by ${res.connection.name} (${res.connection.id})\n`);
    });

  registerPushCommands(scim);
}

/** `ferry scim target …` and `ferry scim push`: provisioning out to AWS IAM Identity Center. */
function registerPushCommands(scim: Command): void {
  const target = scim
    .command('target')
    .description('the AWS IAM Identity Center SCIM endpoint Ferry pushes to');

  target
    .command('set')
    .description('set the SCIM endpoint and access token (read from stdin) shown by IAM Identity Center')
    .requiredOption('--endpoint <url>', 'the "SCIM endpoint" from IAM Identity Center')
    .action(async function (this: Command, opts: { endpoint: string }) {
      // Hidden when typed at a terminal; otherwise the first line of standard input.
      const token = (await new Prompter().ask(t`Access token: `, { secret: true })).trim();
      const target = await clientOf(this).request<TargetView>('PUT', '/api/v1/identity-center/scim', {
        endpoint: opts.endpoint,
        token,
      });
      out(t`pushing to ${target.endpoint}\n`);
    });

  target
    .command('show')
    .description('show the endpoint (never the token)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const target = await clientOf(this).get<TargetView>('/api/v1/identity-center/scim');
      if (opts.json) return printJson(target);
      out(t`endpoint: ${target.endpoint}\nupdated: ${target.updatedAt} by ${target.updatedBy}\n`);
    });

  target
    .command('remove')
    .description('stop pushing to IAM Identity Center')
    .action(async function (this: Command) {
      await clientOf(this).request('DELETE', '/api/v1/identity-center/scim');
      out(t`no longer pushing to IAM Identity Center\n`);
    });

  scim
    .command('push')
    .description('push every user, group and membership to AWS IAM Identity Center now')
    .option('--dry-run', 'show what would be created, updated and deleted, and change nothing')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { dryRun?: boolean; json?: boolean }) {
      const client = clientOf(this);
      if (opts.dryRun) {
        const diff = await client.get<PushDiff>('/api/v1/identity-center/scim/plan');
        if (opts.json) return printJson(diff);
        out(renderDiff(diff));
        return;
      }
      let bar: ReturnType<typeof progressBar> | null = null;
      let result: Record<string, unknown> | null = null;
      let failure: string | null = null;
      await client.streamLines('/api/v1/identity-center/scim/push', (v) => {
        const line = v as { type: string; total?: number; step?: string; detail?: string };
        if (line.type === 'plan') bar = progressBar(Math.max(1, line.total ?? 0));
        else if (line.type === 'progress') bar?.tick(line.step ?? '');
        else if (line.type === 'result') result = line;
        else if (line.type === 'error') failure = line.detail ?? 'unknown error';
      });
      (bar as ReturnType<typeof progressBar> | null)?.end();
      if (failure !== null) throw new PushFailed(failure);
      if (!result) throw new PushFailed('the server closed the stream early');
      if (opts.json) return printJson(result);
      const r = result as { requests: PushSummary; applied: number };
      out(
        t`pushed ${r.applied} change(s): users ${r.requests.users.created} created, ${r.requests.users.updated} updated, ${r.requests.users.deleted} deleted; groups ${r.requests.groups.created} created, ${r.requests.groups.renamed} renamed, ${r.requests.groups.deleted} deleted; members ${r.requests.members.added} added, ${r.requests.members.removed} removed\n`,
      );
    });
}

interface PushSummary {
  users: { created: number; updated: number; deleted: number };
  groups: { created: number; renamed: number; deleted: number };
  members: { added: number; removed: number };
}

const SIGN: Record<string, string> = {
  create: '+',
  update: '~',
  delete: '-',
  'add-members': '+',
  'remove-members': '-',
};

/** A dry run as a person reads it: one line per change, then the totals. */
export function renderDiff(diff: PushDiff): Inert {
  const lines = diff.changes.map((c) => {
    const what = c.action.endsWith('members') ? `${c.kind} ${c.name} members` : `${c.kind} ${c.name}`;
    const detail = c.details.length
      ? ` (${c.details.length > 5 ? `${c.details.slice(0, 5).join(', ')}, … ${c.details.length} in all` : c.details.join(', ')})`
      : '';
    return t`${SIGN[c.action]} ${c.action.replace('-members', '')} ${what}${detail}\n`;
  });
  const s = diff.summary;
  return t`${lines}
users: ${s.users.create} to create, ${s.users.update} to update, ${s.users.delete} to delete
groups: ${s.groups.create} to create, ${s.groups.update} to update, ${s.groups.delete} to delete
memberships: ${s.members.add} to add, ${s.members.remove} to remove
${diff.changes.length === 0 ? 'IAM Identity Center is up to date.' : 'dry run: nothing was changed.'}
`;
}
