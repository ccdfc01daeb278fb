import type { Command } from 'commander';
import type { ProxyApp } from '../proxy/apps.js';
import { clientOf, collect, enc } from './context.js';
import { out, printJson, t, table } from './output.js';

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
          res.items.map((a) => ({ ...a, groups: a.groups.length > 0 ? a.groups : ['(all active users)'] })),
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
        t`${a.name}\n  url:      ${a.url}\n  upstream: ${a.upstream}\n  groups:   ${a.groups.length > 0 ? a.groups.join(', ') : '(all active users)'}\n`,
      );
    });

  apps
    .command('add <name>')
    .description('register an app, or replace its upstream, URL and groups')
    .requiredOption('--upstream <url>', 'where requests go, e.g. http://10.0.3.7:3000')
    .requiredOption('--url <origin>', 'the origin people open, e.g. https://grafana.apps.example.com')
    .option('--group <group>', 'a group that may use it (repeatable; none = every active user)', collect)
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      name: string,
      opts: { upstream: string; url: string; group?: string[]; json?: boolean },
    ) {
      const a = await clientOf(this).request<ProxyApp>('PUT', `/api/v1/proxy/apps/${enc(name)}`, {
        upstream: opts.upstream,
        url: opts.url,
        groups: opts.group ?? [],
      });
      if (opts.json) return printJson(a);
      out(
        t`${a.name}: ${a.url} → ${a.upstream} (${a.groups.length > 0 ? `groups ${a.groups.join(', ')}` : 'every active user'})\n`,
      );
    });

  apps.command('remove <name>').action(async function (this: Command, name: string) {
    await clientOf(this).request('DELETE', `/api/v1/proxy/apps/${enc(name)}`);
    out(t`removed ${name}\n`);
  });
  return proxy;
}
