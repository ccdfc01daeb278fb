import type { Command } from 'commander';
import { clientOf, enc, serverOf } from './context.js';
import { printJson, table } from './output.js';

interface ConnectionView {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `ferry scim token create|list|revoke`: the bearer tokens provisioning clients such as Entra ID use. */
export function registerScimCommands(program: Command): void {
  const scim = program.command('scim').description('SCIM provisioning (Entra ID → Ferry)');
  const token = scim.command('token').description('provisioning connections and their bearer tokens');

  token
    .command('create')
    .description("create a connection and print its token once (Entra ID's Secret Token)")
    .requiredOption('--name <name>', 'what provisions with it, e.g. entra')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { name: string; json?: boolean }) {
      const res = await clientOf(this).request<{ token: string; connection: ConnectionView }>(
        'POST',
        '/api/v1/scim/tokens',
        { name: opts.name },
      );
      if (opts.json) return printJson(res);
      const server = serverOf(this);
      process.stdout.write(
        `${res.token}\n\nconnection: ${res.connection.name} (${res.connection.id})\n` +
          `tenant URL: ${server}/scim/v2\nThe token is shown only now; store it in Entra ID's Secret Token field.\n`,
      );
    });

  token
    .command('list')
    .description('list connections (never their tokens)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: ConnectionView[] }>('/api/v1/scim/tokens');
      if (opts.json) return printJson(res.items);
      process.stdout.write(
        table(
          res.items.map((c) => ({ ...c, state: c.revokedAt ? 'revoked' : 'active' })),
          ['name', 'state', 'lastUsedAt', 'createdAt', 'createdBy', 'id'],
        ),
      );
    });

  token
    .command('revoke <id>')
    .description('revoke a connection: its token stops working at once')
    .action(async function (this: Command, id: string) {
      const c = await clientOf(this).request<ConnectionView>('DELETE', `/api/v1/scim/tokens/${enc(id)}`);
      process.stdout.write(`revoked ${c.name} (${c.id})\n`);
    });
}
