import type { Command } from 'commander';
import { clientOf, collect, enc, UsageError } from './context.js';
import { json, out, printJson, t, table } from './output.js';
import { readLineFromStdin } from './read-secret.js';

interface UserView {
  id: string;
  userName: string;
  displayName: string | null;
  active: boolean;
  groups?: string[];
  attributes: Record<string, string>;
}
interface GroupView {
  id: string;
  displayName: string;
  description: string | null;
  members?: Array<{ userName: string }>;
}
interface AuditEventView {
  seq: number;
  time: string;
  type: string;
  outcome: string;
  actor: { type: string; name?: string };
  subject: string | null;
  ip: string | null;
  data: Record<string, unknown>;
}

/** Client commands: each talks to a Ferry server over its HTTP API, authenticated by FERRY_TOKEN. */
export function registerClientCommands(program: Command): void {
  program
    .option(
      '--server <url>',
      'Ferry server URL (default: $FERRY_SERVER, else the server of your last `ferry login`, else http://127.0.0.1:7070)',
    )
    .option('--token <token>', 'admin API token (default: $FERRY_TOKEN)');

  const users = program.command('users').description('directory users');
  users
    .command('list')
    .description('list users')
    .option('-q, --query <text>', 'only users whose name contains this')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { query?: string; json?: boolean }) {
      const q = opts.query ? `&q=${enc(opts.query)}` : '';
      const res = await clientOf(this).get<{ items: UserView[]; total: number }>(
        `/api/v1/users?limit=1000${q}`,
      );
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((u) => ({
            ...u,
            active: u.active ? 'yes' : 'no',
            department: u.attributes.department,
          })),
          ['userName', 'displayName', 'active', 'department', 'id'],
        ),
      );
    });

  users
    .command('show <user>')
    .description('show one user (by UPN or id) with their groups')
    .option('--json', 'print JSON')
    .action(async function (this: Command, user: string, opts: { json?: boolean }) {
      const u = await clientOf(this).get<UserView>(`/api/v1/users/${enc(user)}`);
      if (opts.json) return printJson(u);
      out(
        t`${u.userName}  ${u.displayName ?? ''}\nactive: ${u.active ? 'yes' : 'no'}\ngroups: ${(u.groups ?? []).join(', ') || 'none'}\nid: ${u.id}\n`,
      );
    });

  users
    .command('add <userName>')
    .description('create a user (userName is the UPN, e.g. jane@contoso.example)')
    .option('--display-name <name>')
    .option('--given-name <name>')
    .option('--family-name <name>')
    .option('--email <address>', 'work email (default: the UPN when it looks like an address)')
    .option(
      '--attribute <key=value>',
      'a directory attribute such as department=Engineering (repeatable)',
      collect,
    )
    .option('--password-stdin', 'read an initial password from the first line of standard input')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      userName: string,
      opts: {
        displayName?: string;
        givenName?: string;
        familyName?: string;
        email?: string;
        attribute?: string[];
        passwordStdin?: boolean;
        json?: boolean;
      },
    ) {
      const attributes: Record<string, string> = {};
      for (const pair of opts.attribute ?? []) {
        const i = pair.indexOf('=');
        if (i <= 0) throw new UsageError(`--attribute expects key=value (got ${pair})`);
        attributes[pair.slice(0, i)] = pair.slice(i + 1);
      }
      const email = opts.email ?? (userName.includes('@') ? userName : undefined);
      const body = {
        userName,
        displayName: opts.displayName,
        givenName: opts.givenName,
        familyName: opts.familyName,
        emails: email ? [{ value: email, type: 'work', primary: true }] : [],
        attributes,
        password: opts.passwordStdin ? await readLineFromStdin() : undefined,
      };
      const u = await clientOf(this).request<UserView>('POST', '/api/v1/users', body);
      if (opts.json) return printJson(u);
      out(t`created ${u.userName} (${u.id})\n`);
    });

  for (const [name, active] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    users
      .command(`${name} <user>`)
      .description(
        active
          ? 'allow a user to sign in again'
          : 'disable a user: sign-in refused and every session ended at once',
      )
      .action(async function (this: Command, user: string) {
        const u = await clientOf(this).request<UserView>('PATCH', `/api/v1/users/${enc(user)}`, { active });
        out(t`${u.userName} ${active ? 'enabled' : 'disabled'}\n`);
      });
  }

  users
    .command('reset-mfa <user>')
    .description("remove a user's authenticators (lost phone); they enroll a new one at next sign-in")
    .action(async function (this: Command, user: string) {
      const res = await clientOf(this).request<{ removed: number }>(
        'DELETE',
        `/api/v1/users/${enc(user)}/mfa`,
      );
      out(t`removed ${res.removed} authenticator(s)\n`);
    });

  const groups = program.command('groups').description('directory groups');
  groups
    .command('list')
    .description('list groups')
    .option('-q, --query <text>', 'only groups whose name contains this')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { query?: string; json?: boolean }) {
      const q = opts.query ? `&q=${enc(opts.query)}` : '';
      const res = await clientOf(this).get<{ items: GroupView[] }>(`/api/v1/groups?limit=1000${q}`);
      if (opts.json) return printJson(res.items);
      out(table(res.items as never, ['displayName', 'description', 'id']));
    });

  groups
    .command('show <group>')
    .description('show a group and its members')
    .option('--json', 'print JSON')
    .action(async function (this: Command, group: string, opts: { json?: boolean }) {
      const g = await clientOf(this).get<GroupView>(`/api/v1/groups/${enc(group)}`);
      if (opts.json) return printJson(g);
      out(t`${g.displayName}\nmembers: ${(g.members ?? []).map((m) => m.userName).join(', ') || 'none'}\n`);
    });

  groups
    .command('add <name>')
    .description('create a group')
    .option('--description <text>')
    .option('--json', 'print JSON')
    .action(async function (this: Command, name: string, opts: { description?: string; json?: boolean }) {
      const g = await clientOf(this).request<GroupView>('POST', '/api/v1/groups', {
        displayName: name,
        description: opts.description,
      });
      if (opts.json) return printJson(g);
      out(t`created ${g.displayName} (${g.id})\n`);
    });

  for (const [name, method, verb] of [
    ['add-member', 'PUT', 'added to'],
    ['remove-member', 'DELETE', 'removed from'],
  ] as const) {
    groups
      .command(`${name} <group> <user>`)
      .description(`${name === 'add-member' ? 'add a user to' : 'remove a user from'} a group`)
      .action(async function (this: Command, group: string, user: string) {
        const res = await clientOf(this).request<{ changed: boolean }>(
          method,
          `/api/v1/groups/${enc(group)}/members/${enc(user)}`,
        );
        out(
          res.changed ? t`${user} ${verb} ${group}\n` : t`no change: ${user} already ${verb.split(' ')[0]}\n`,
        );
      });
  }

  const sessions = program.command('sessions').description('sign-in sessions');
  sessions
    .command('list <user>')
    .description("a user's live sessions")
    .option('--json', 'print JSON')
    .action(async function (this: Command, user: string, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/users/${enc(user)}/sessions`,
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['id', 'createdAt', 'lastSeenAt', 'ip', 'amr']));
    });
  sessions
    .command('revoke <id>')
    .description('end a session now, on every instance, with the OpenID tokens issued under it')
    .option('--end-aws-sessions', "also end the person's live AWS sessions (as offboarding does)")
    .action(async function (this: Command, id: string, opts: { endAwsSessions?: boolean }) {
      const query = opts.endAwsSessions ? '?endAwsSessions=true' : '';
      await clientOf(this).request('DELETE', `/api/v1/sessions/${enc(id)}${query}`);
      out(t`revoked ${id}${opts.endAwsSessions ? '; their live AWS sessions are being ended' : ''}\n`);
    });

  const audit = program.command('audit').description('the audit trail');
  // One event, one line: every field is escaped, so no field can end the line or draw on the screen.
  const line = (e: AuditEventView) =>
    t`${e.time}  #${e.seq}  ${e.type}  ${e.outcome}  ${e.actor.type === 'anonymous' ? '-' : t`${e.actor.type}:${e.actor.name ?? ''}`}  ${e.subject ?? ''}  ${e.ip ?? ''}${
      e.data.reason ? t`  reason=${String(e.data.reason)}` : ''
    }\n`;
  audit
    .command('tail')
    .description('print the newest events; with --follow keep printing new ones')
    .option('-n, --lines <n>', 'how many of the newest events', '20')
    .option('-f, --follow', 'keep waiting for new events')
    .option('--json', 'one JSON object per line')
    .action(async function (this: Command, opts: { lines: string; follow?: boolean; json?: boolean }) {
      const client = clientOf(this);
      const print = (e: AuditEventView) => out(opts.json ? t`${json(e)}\n` : line(e));
      const first = await client.get<{ items: AuditEventView[] }>(
        `/api/v1/audit/events?last=${Number(opts.lines) || 20}`,
      );
      first.items.forEach(print);
      let after = first.items.at(-1)?.seq ?? 0;
      while (opts.follow) {
        await new Promise((r) => setTimeout(r, 1000));
        const next = await client.get<{ items: AuditEventView[] }>(
          `/api/v1/audit/events?after=${after}&limit=1000`,
        );
        next.items.forEach(print);
        after = next.items.at(-1)?.seq ?? after;
      }
    });
  audit
    .command('export')
    .description('write events as JSON lines or OCSF records (for a SIEM or an archive)')
    .option('--since <time>', 'events at or after this ISO-8601 time or age (24h, 7d); default: all')
    .option('--until <time>', 'events before this ISO-8601 time or age')
    .option(
      '--format <format>',
      'jsonl (the events as the API returns them) or ocsf (OCSF 1.3 records)',
      'jsonl',
    )
    .action(async function (this: Command, opts: { since?: string; until?: string; format: string }) {
      if (opts.format !== 'jsonl' && opts.format !== 'ocsf')
        throw new UsageError(`--format ${opts.format} is not supported (use jsonl or ocsf)`);
      const query = new URLSearchParams({ format: opts.format });
      if (opts.since) query.set('since', parseSince(opts.since));
      if (opts.until) query.set('until', parseSince(opts.until, '--until'));
      await clientOf(this).streamLines(
        `/api/v1/audit/export?${query}`,
        (record) => out(t`${json(record)}\n`),
        'GET',
      );
    });
}

/** Accepts an ISO-8601 time or an age such as 90m, 24h, 7d. */
export function parseSince(value: string, flag = '--since'): string {
  const age = /^(\d+)([mhd])$/.exec(value.trim());
  if (age) {
    const ms = Number(age[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd'];
    return new Date(Date.now() - ms).toISOString();
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new UsageError(`${flag} expects an ISO-8601 time or an age like 24h (got ${value})`);
  return new Date(t).toISOString();
}
