import type { Command } from 'commander';
import type { ProxyApp } from '../proxy/apps.js';
import { clientOf, collect, enc } from './context.js';
import { out, printJson, t, table } from './output.js';

/** Who may use an app, in words: its groups, or everyone/nobody while none is assigned. */
function audience(a: ProxyApp): string {
  if (a.groups.length > 0) return `groups ${a.groups.join(', ')}`;
  return a.openToAll ? 'every active user' : 'nobody (no group assigned; not open)';
}

/** `ferry proxy apps …`: the applications the identity-aware proxy serves (admin API). */
export function registerProxyCommands(program: Command): Command {
  const proxy = program
    .command('proxy')
    .description('the identity-aware proxy in front of internal web apps');
  const apps = proxy.command('apps').description('applications the proxy serves');

  apps
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).request<{ items: ProxyApp[] }>('GET', '/api/v1/proxy/apps');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((a) => ({ ...a, groups: a.groups.length > 0 ? a.groups : [`(${audience(a)})`] })),
          ['name', 'url', 'upstream', 'groups'],
        ),
      );
    });

  apps
    .command('show <name>')
    .option('--json', 'print JSON')
    .action(async function (this: Command, name: string, opts: { json?: boolean }) {
      const a = await clientOf(this).request<ProxyApp>('GET', `/api/v1/proxy/apps/${enc(name)}`);
      if (opts.json) return printJson(a);
      out(
        t`${a.name}\n  url:      ${a.url}\n  upstream: ${a.upstream}\n  groups:   ${a.groups.length > 0 ? a.groups.join(', ') : `(${audience(a)})`}\n`,
      );
    });

  apps
    .command('add <name>')
    .description('register an app, or replace its upstream, URL and groups')
    .requiredOption('--upstream <url>', 'where requests go, e.g. http://10.0.3.7:3000')
    .requiredOption('--url <origin>', 'the origin people open, e.g. https://grafana.apps.example.com')
    .option('--group <group>', 'a group that may use it (repeatable; none = nobody unless --open)', collect)
    .option('--open', 'reachable by every active user while no group is assigned')
    .option('--closed', 'reachable only by assigned groups (the default for a new app)')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      name: string,
      opts: {
        upstream: string;
        url: string;
        group?: string[];
        open?: boolean;
        closed?: boolean;
        json?: boolean;
      },
    ) {
      if (opts.open && opts.closed) throw new Error('--open and --closed contradict each other');
      const a = await clientOf(this).request<ProxyApp>('PUT', `/api/v1/proxy/apps/${enc(name)}`, {
        upstream: opts.upstream,
        url: opts.url,
        groups: opts.group ?? [],
        ...(opts.open ? { openToAll: true } : {}),
        ...(opts.closed ? { openToAll: false } : {}),
      });
      if (opts.json) return printJson(a);
      out(t`${a.name}: ${a.url} → ${a.upstream} (${audience(a)})\n`);
    });

  apps.command('remove <name>').action(async function (this: Command, name: string) {
    await clientOf(this).request('DELETE', `/api/v1/proxy/apps/${enc(name)}`);
    out(t`removed ${name}\n`);
  });
  return proxy;
}
