import type { Command } from 'commander';
import { clientOf, collect, enc, UsageError } from './context.js';
import { note, out, printJson, t, table } from './output.js';

interface ReachItem {
  target: string;
  userName: string;
  effect: 'allow' | 'step-up' | 'eligible';
  require?: string[];
  maxDuration?: number;
  via: Array<{ kind: string; name: string }>;
  reasons: Array<{ source: string; message: string }>;
}

interface ApiTokenView {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

const effectText = (i: ReachItem): string =>
  i.effect === 'step-up' ? `requires ${(i.require ?? []).join(' and ')}` : i.effect;
const viaText = (i: ReachItem): string => i.via.map((v) => `${v.kind} ${v.name}`).join(', ');

/** `ferry access of|who` and `ferry token …`: admin rights and who can reach what. */
export function registerAdminRightsCommands(program: Command): void {
  const access =
    program.commands.find((c) => c.name() === 'access') ??
    program.command('access').description('access questions');
  access
    .command('of')
    .description('every target a person can reach, and why (group, assignment, activation, policy)')
    .requiredOption('--user <upn>', 'the person (userName or id)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { user: string; json?: boolean }) {
      const res = await clientOf(this).get<{ items: ReachItem[] }>(
        `/api/v1/access/of?user=${enc(opts.user)}`,
      );
      if (opts.json) return printJson(res.items);
      if (res.items.length === 0) return out(t`${opts.user} can reach nothing\n`);
      out(
        table(
          res.items.map((i) => ({ target: i.target, access: effectText(i), via: viaText(i) })),
          ['target', 'access', 'via'],
        ),
      );
    });
  access
    .command('who')
    .description('every person who can reach a target (aws:…, admin:…, ssh:…, app:…), and why')
    .requiredOption('--target <target>', 'e.g. aws:123456789012/Administrator or admin:ferry-administrator')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { target: string; json?: boolean }) {
      const res = await clientOf(this).get<{ items: ReachItem[] }>(
        `/api/v1/access/who?target=${enc(opts.target)}`,
      );
      if (opts.json) return printJson(res.items);
      if (res.items.length === 0) return out(t`nobody can reach ${opts.target}\n`);
      out(
        table(
          res.items.map((i) => ({ user: i.userName, access: effectText(i), via: viaText(i) })),
          ['user', 'access', 'via'],
        ),
      );
    });

  const token = program.command('token').description('admin API tokens (scoped to permissions)');
  token
    .command('create')
    .description('create an admin API token and print it once')
    .requiredOption('--name <name>', 'what the token is for, e.g. terraform')
    .option(
      '--scope <permission>',
      'a permission it carries, e.g. audit:read (repeatable; default: all you hold)',
      collect,
    )
    .option('--expires-in <days>', 'days until it expires (default: never)')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: { name: string; scope?: string[]; expiresIn?: string; json?: boolean },
    ) {
      const days = opts.expiresIn === undefined ? undefined : Number(opts.expiresIn);
      if (days !== undefined && !(days > 0))
        throw new UsageError('--expires-in must be a positive number of days');
      const scopes = opts.scope?.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
      const res = await clientOf(this).request<{ token: string; apiToken: ApiTokenView }>(
        'POST',
        '/api/v1/tokens',
        {
          name: opts.name,
          ...(scopes?.length ? { scopes } : {}),
          ...(days ? { expiresAt: new Date(Date.now() + days * 86_400_000).toISOString() } : {}),
        },
      );
      if (opts.json) return printJson(res);
      out(t`${res.token}\n`);
      note(t`This token is shown once. Scopes: ${res.apiToken.scopes.join(' ')}\n`);
    });
  token
    .command('list')
    .description('list admin API tokens (never their values)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: ApiTokenView[] }>('/api/v1/tokens');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((x) => ({ ...x, scopes: x.scopes.join(' '), revoked: x.revokedAt ? 'yes' : '' })),
          ['id', 'name', 'scopes', 'expiresAt', 'revoked'],
        ),
      );
    });
  token
    .command('revoke <id>')
    .description('revoke an admin API token')
    .action(async function (this: Command, id: string) {
      await clientOf(this).request('DELETE', `/api/v1/tokens/${enc(id)}`);
      out(t`revoked ${id}\n`);
    });
}
