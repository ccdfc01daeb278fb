import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { clientOf, collect, enc } from './context.js';
import { out, printJson, t, table } from './output.js';

interface ClientView {
  clientId: string;
  name: string;
  kind: string;
  authMethod: string;
  redirectUris: string[];
  grantTypes: string[];
  requirePkce: boolean;
}

/** Relying parties and workload identities of Ferry's OpenID provider (admin). */
export function registerOidcCommands(program: Command): void {
  const oidc = program.command('oidc').description("clients of Ferry's OpenID provider");
  const clients = oidc.command('clients').description('relying parties and workload identities');

  const create = async (
    cmd: Command,
    body: Record<string, unknown>,
    opts: { json?: boolean },
  ): Promise<void> => {
    const res = await clientOf(cmd).request<{ client: ClientView; clientSecret: string | null }>(
      'POST',
      '/api/v1/oidc/clients',
      body,
    );
    if (opts.json) return printJson(res);
    out(t`client_id: ${res.client.clientId}\n`);
    if (res.clientSecret) {
      out(t`client_secret: ${res.clientSecret}\n(shown only now: store it in the workload's secret store)\n`);
    }
  };

  const readJwks = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { keys: unknown[] };

  clients
    .command('create')
    .description('register a relying party (code + PKCE) or a workload (client credentials)')
    .requiredOption('--name <name>')
    .option('--kind <kind>', 'relying-party or workload', 'relying-party')
    .option('--redirect-uri <uri>', 'a redirect URI (repeatable)', collect, [])
    .option(
      '--post-logout-redirect-uri <uri>',
      'where RP-initiated logout may return (repeatable)',
      collect,
      [],
    )
    .option('--auth <method>', 'client_secret_basic, client_secret_post, private_key_jwt or none')
    .option('--jwks <file>', 'public keys for private_key_jwt (a JWKS file)')
    .option('--id-token-alg <alg>', 'ES256 (default) or RS256')
    .option(
      '--grant <grant>',
      'a grant the relying party may use (repeatable): authorization_code, refresh_token, device_code; default authorization_code + refresh_token',
      collect,
      [],
    )
    .option(
      '--pkce-optional',
      'let this confidential client use the code flow without PKCE (default: required)',
    )
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        name: string;
        kind: string;
        redirectUri: string[];
        postLogoutRedirectUri: string[];
        auth?: string;
        jwks?: string;
        idTokenAlg?: string;
        grant: string[];
        pkceOptional?: boolean;
        json?: boolean;
      },
    ) {
      await create(
        this,
        {
          name: opts.name,
          kind: opts.kind,
          redirectUris: opts.redirectUri,
          postLogoutRedirectUris: opts.postLogoutRedirectUri,
          ...(opts.auth ? { authMethod: opts.auth } : {}),
          ...(opts.jwks ? { jwks: readJwks(opts.jwks) } : {}),
          ...(opts.idTokenAlg ? { idTokenSigningAlg: opts.idTokenAlg } : {}),
          ...(opts.grant.length ? { grantTypes: opts.grant } : {}),
          ...(opts.pkceOptional ? { requirePkce: false } : {}),
        },
        opts,
      );
    });

  clients
    .command('update <client>')
    .description("change a relying party's grants, PKCE rule or redirect URIs (what you leave out stays)")
    .option(
      '--grant <grant>',
      'the grants it may use from now on (repeatable): authorization_code, refresh_token, device_code',
      collect,
      [],
    )
    .option('--pkce-optional', 'let this confidential client leave PKCE out')
    .option('--pkce-required', 'require PKCE again')
    .option('--redirect-uri <uri>', 'the redirect URIs from now on (repeatable)', collect, [])
    .option(
      '--post-logout-redirect-uri <uri>',
      'the logout return URIs from now on (repeatable)',
      collect,
      [],
    )
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      ref: string,
      opts: {
        grant: string[];
        pkceOptional?: boolean;
        pkceRequired?: boolean;
        redirectUri: string[];
        postLogoutRedirectUri: string[];
        json?: boolean;
      },
    ) {
      const client = await clientOf(this).request<ClientView>('PATCH', `/api/v1/oidc/clients/${enc(ref)}`, {
        ...(opts.grant.length ? { grantTypes: opts.grant } : {}),
        ...(opts.pkceOptional ? { requirePkce: false } : opts.pkceRequired ? { requirePkce: true } : {}),
        ...(opts.redirectUri.length ? { redirectUris: opts.redirectUri } : {}),
        ...(opts.postLogoutRedirectUri.length ? { postLogoutRedirectUris: opts.postLogoutRedirectUri } : {}),
      });
      if (opts.json) return printJson(client);
      out(
        t`${client.name}: grants ${client.grantTypes.join(', ')}; PKCE ${client.requirePkce ? 'required' : 'optional'}\n`,
      );
    });

  clients
    .command('list')
    .option('--kind <kind>', 'relying-party or workload')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { kind?: string; json?: boolean }) {
      const q = opts.kind ? `?kind=${enc(opts.kind)}` : '';
      const res = await clientOf(this).get<{ items: ClientView[] }>(`/api/v1/oidc/clients${q}`);
      if (opts.json) return printJson(res.items);
      out(
        table(res.items as unknown as Array<Record<string, unknown>>, [
          'name',
          'kind',
          'clientId',
          'authMethod',
          'grantTypes',
        ]),
      );
    });

  clients.command('remove <client>').action(async function (this: Command, ref: string) {
    await clientOf(this).request('DELETE', `/api/v1/oidc/clients/${enc(ref)}`);
    out(t`removed ${ref}\n`);
  });

  // The common case, said in its own words: a CI job or agent that needs AWS without static keys.
  const workloads = program
    .command('workloads')
    .description('workload identities (CI jobs, services, AI agents)');
  workloads
    .command('create')
    .description('create a workload identity; assign it roles with `ferry assignments add --workload NAME`')
    .requiredOption('--name <name>')
    .option('--jwks <file>', 'authenticate with private_key_jwt using these public keys instead of a secret')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { name: string; jwks?: string; json?: boolean }) {
      await create(
        this,
        {
          name: opts.name,
          kind: 'workload',
          ...(opts.jwks ? { jwks: readJwks(opts.jwks), authMethod: 'private_key_jwt' } : {}),
        },
        opts,
      );
    });
  workloads
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: ClientView[] }>('/api/v1/oidc/clients?kind=workload');
      if (opts.json) return printJson(res.items);
      out(table(res.items as unknown as Array<Record<string, unknown>>, ['name', 'clientId', 'authMethod']));
    });
  workloads.command('remove <workload>').action(async function (this: Command, ref: string) {
    await clientOf(this).request('DELETE', `/api/v1/oidc/clients/${enc(ref)}`);
    out(t`removed ${ref}\n`);
  });
}
