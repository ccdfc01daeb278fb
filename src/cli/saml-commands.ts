import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { clientOf, collect, enc, serverOf, UsageError } from './context.js';
import { joinInert, out, printJson, t, table } from './output.js';

interface AccountView {
  id: string;
  alias: string;
  partition: 'aws' | 'aws-us-gov' | 'aws-cn';
  samlProviderName: string;
  roles: Array<{ name: string; maxSessionDuration: number }>;
}

/** Where the AWS SDK should talk: --endpoint-url (e.g. the demo's local AWS), else real AWS. */
function awsConnection(opts: { endpointUrl?: string; region?: string }) {
  const endpoint = opts.endpointUrl ?? process.env.FERRY_AWS_ENDPOINT;
  return {
    ...(endpoint ? { endpoint } : {}),
    region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
  };
}

const AUTHN_CONTEXTS = ['single-factor', 'mfa', 'phishing-resistant'];
function checkAuthnContext(value: string | undefined): void {
  if (value !== undefined && !AUTHN_CONTEXTS.includes(value))
    throw new UsageError(`--min-authn-context is ${AUTHN_CONTEXTS.join(', ')} (got ${value})`);
}

/** SAML service providers, signing keys, and the AWS-side setup of an account. */
export function registerSamlCommands(program: Command): void {
  const sp = program
    .command('sp')
    .description('SAML service providers (IAM Identity Center, other SAML apps)');
  sp.command('add')
    .description('register a SAML service provider from its metadata, or from an entity id and ACS URL')
    .requiredOption('--name <name>', 'a name people recognise, e.g. "IAM Identity Center"')
    .option('--metadata-file <path>', 'the SP metadata XML file')
    .option(
      '--metadata-url <url>',
      'fetch the SP metadata from this URL (fetched by this command, not the server)',
    )
    .option('--entity-id <id>', 'the SP entity id (without metadata)')
    .option('--acs <url>', 'an assertion consumer service URL (repeatable; without metadata)', collect)
    .option('--attribute <name=field>', 'an attribute to send: SAML name = user field (repeatable)', collect)
    .option('--group <group>', 'a group whose members may sign in to it (repeatable)', collect)
    .option('--open', 'reachable by every active user while no group is assigned (default: nobody)')
    .option('--min-authn-context <strength>', 'single-factor (default), mfa or phishing-resistant')
    .option('--unsigned-status', 'send NoPassive/NoAuthnContext unsigned (only for SPs that need it)')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        name: string;
        metadataFile?: string;
        metadataUrl?: string;
        entityId?: string;
        acs?: string[];
        attribute?: string[];
        group?: string[];
        open?: boolean;
        minAuthnContext?: string;
        unsignedStatus?: boolean;
        json?: boolean;
      },
    ) {
      if (opts.metadataFile && opts.metadataUrl)
        throw new UsageError('--metadata-file and --metadata-url exclude each other');
      checkAuthnContext(opts.minAuthnContext);
      const attributeMap: Record<string, string> = {};
      for (const pair of opts.attribute ?? []) {
        const i = pair.indexOf('=');
        if (i <= 0) throw new UsageError(`--attribute expects name=field (got ${pair})`);
        attributeMap[pair.slice(0, i)] = pair.slice(i + 1);
      }
      let metadataXml: string | undefined;
      if (opts.metadataFile) metadataXml = readFileSync(opts.metadataFile, 'utf8');
      if (opts.metadataUrl) {
        const res = await fetch(opts.metadataUrl, { signal: AbortSignal.timeout(15_000) });
        if (!res.ok) throw new Error(`${opts.metadataUrl}: HTTP ${res.status}`);
        metadataXml = await res.text();
      }
      const created = await clientOf(this).request<{ id: string; entityId: string }>(
        'POST',
        '/api/v1/saml/service-providers',
        {
          name: opts.name,
          ...(metadataXml ? { metadataXml } : {}),
          ...(opts.entityId ? { entityId: opts.entityId } : {}),
          ...(opts.acs ? { acsUrls: opts.acs } : {}),
          ...(opts.attribute ? { attributeMap } : {}),
          ...(opts.open ? { openToAll: true } : {}),
          ...(opts.minAuthnContext ? { minimumAuthnContext: opts.minAuthnContext } : {}),
          ...(opts.unsignedStatus ? { signStatusResponses: false } : {}),
        },
      );
      if (opts.group)
        await clientOf(this).request('PUT', `/api/v1/saml/service-providers/${enc(created.id)}/groups`, {
          groups: opts.group,
        });
      if (opts.json) return printJson(created);
      out(t`registered ${created.entityId} (${created.id})\n`);
    });
  sp.command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        '/api/v1/saml/service-providers',
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['name', 'entityId', 'id']));
    });
  sp.command('set <sp>')
    .description('change who may reach a service provider and what sign-in it needs')
    .option('--open', 'reachable by every active user while no group is assigned')
    .option('--closed', 'reachable only by assigned groups')
    .option('--min-authn-context <strength>', 'single-factor, mfa or phishing-resistant')
    .option('--sign-status <on|off>', 'sign NoPassive/NoAuthnContext status responses')
    .action(async function (
      this: Command,
      ref: string,
      opts: { open?: boolean; closed?: boolean; minAuthnContext?: string; signStatus?: string },
    ) {
      if (opts.open && opts.closed) throw new UsageError('--open and --closed contradict each other');
      if (opts.signStatus !== undefined && !['on', 'off'].includes(opts.signStatus))
        throw new UsageError('--sign-status takes on or off');
      checkAuthnContext(opts.minAuthnContext);
      await clientOf(this).request('PATCH', `/api/v1/saml/service-providers/${enc(ref)}`, {
        ...(opts.open ? { openToAll: true } : {}),
        ...(opts.closed ? { openToAll: false } : {}),
        ...(opts.minAuthnContext ? { minimumAuthnContext: opts.minAuthnContext } : {}),
        ...(opts.signStatus ? { signStatusResponses: opts.signStatus === 'on' } : {}),
      });
      out(t`updated ${ref}\n`);
    });
  sp.command('groups <sp> [groups...]')
    .description('list the groups assigned to a service provider, or make exactly these the assigned groups')
    .option('--none', 'assign no group (then only --open lets anyone in)')
    .action(async function (this: Command, ref: string, groups: string[], opts: { none?: boolean }) {
      const path = `/api/v1/saml/service-providers/${enc(ref)}/groups`;
      const res =
        groups.length > 0 || opts.none
          ? await clientOf(this).request<{ groups: string[] }>('PUT', path, { groups })
          : await clientOf(this).get<{ groups: string[] }>(path);
      out(res.groups.length ? joinInert(res.groups.map((g) => t`${g}\n`)) : t`(no group)\n`);
    });
  sp.command('remove <sp>')
    .description('remove a service provider (by id or entity id)')
    .action(async function (this: Command, ref: string) {
      await clientOf(this).request('DELETE', `/api/v1/saml/service-providers/${enc(ref)}`);
      out(t`removed ${ref}\n`);
    });

  const keys = program.command('keys').description('SAML signing keys');
  keys
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>('/api/v1/keys/saml');
      if (opts.json) return printJson(res.items);
      out(table(res.items, ['id', 'state', 'createdAt', 'activatedAt']));
    });
  keys
    .command('rotate')
    .description('publish a next signing key in the metadata now; it takes over after the grace period')
    .option('--activate', 'switch to the next key now (after AWS and every SP have the new metadata)')
    .action(async function (this: Command, opts: { activate?: boolean }) {
      const client = clientOf(this);
      if (opts.activate) {
        const k = await client.request<{ id: string }>('POST', '/api/v1/keys/saml/activate');
        out(t`signing with ${k.id} now\n`);
        return;
      }
      const k = await client.request<{ id: string }>('POST', '/api/v1/keys/saml/rotate');
      out(
        t`staged ${k.id}: it is in /saml/metadata now; update the SAML providers (ferry aws setup-account), then it takes over after the grace period or with --activate\n`,
      );
    });

  const aws = program.commands.find((c) => c.name() === 'aws') ?? program.command('aws');
  aws
    .command('setup-account')
    .description(
      "create or update the account's IAM SAML provider from Ferry's metadata, and the mapped roles' trust",
    )
    .requiredOption('--account <account>', 'account id or alias registered in Ferry')
    .option('--endpoint-url <url>', 'AWS endpoint (e.g. the local AWS of the demo); default: real AWS')
    .option('--region <region>')
    .option('--dry-run', 'show what would change and change nothing')
    .option(
      '--oidc',
      "also create the IAM OIDC provider for Ferry's issuer and let the roles assigned to workloads trust it (AssumeRoleWithWebIdentity)",
    )
    .option(
      '--thumbprint <sha1>',
      'TLS thumbprint for the OIDC provider, when its CA needs one (repeatable)',
      collect,
      [],
    )
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        account: string;
        endpointUrl?: string;
        region?: string;
        dryRun?: boolean;
        json?: boolean;
        oidc?: boolean;
        thumbprint: string[];
      },
    ) {
      if (opts.thumbprint.length > 0 && !opts.oidc) throw new UsageError('--thumbprint goes with --oidc');
      const client = clientOf(this);
      const account = await client.get<AccountView>(`/api/v1/aws/accounts/${enc(opts.account)}`);
      if (opts.oidc) {
        const discovery = await fetch(new URL('/.well-known/openid-configuration', serverOf(this)));
        if (!discovery.ok)
          throw new Error(`cannot read Ferry's OpenID configuration (HTTP ${discovery.status})`);
        const { issuer } = (await discovery.json()) as { issuer: string };
        const { items } = await client.get<{
          items: Array<{ principalType: string; principalId: string; roleName: string }>;
        }>(`/api/v1/assignments?account=${enc(account.id)}`);
        const workloadsByRole = new Map<string, string[]>();
        for (const a of items.filter((i) => i.principalType === 'workload')) {
          workloadsByRole.set(a.roleName, [...(workloadsByRole.get(a.roleName) ?? []), a.principalId]);
        }
        const { setupOidcTrust } = await import('../aws/oidc-setup.js');
        const result = await setupOidcTrust({
          ...awsConnection(opts),
          accountId: account.id,
          partition: account.partition,
          issuer,
          workloadsByRole,
          thumbprints: opts.thumbprint,
          dryRun: opts.dryRun ?? false,
        });
        if (opts.json) printJson(result);
        else {
          for (const c of result.changes) out(t`${c.action.padEnd(12)} ${c.kind} ${c.name}\n`);
        }
      }
      const metadataRes = await fetch(new URL('/saml/metadata', serverOf(this)));
      if (!metadataRes.ok) throw new Error(`cannot read Ferry's SAML metadata (HTTP ${metadataRes.status})`);
      const { formatSetupReport, setupSamlAccount } = await import('../aws/saml-setup.js');
      const report = await setupSamlAccount({
        ...awsConnection(opts),
        accountId: account.id,
        partition: account.partition,
        providerName: account.samlProviderName,
        metadataXml: await metadataRes.text(),
        roles: account.roles.map((r) => ({ name: r.name, maxSessionDurationSeconds: r.maxSessionDuration })),
        dryRun: opts.dryRun ?? false,
      });
      if (opts.json) return printJson(report);
      // Each line of the report escaped whole: it quotes names from the account.
      out(
        t`${formatSetupReport(report)
          .split('\n')
          .map((line) => t`${line}\n`)}`,
      );
    });
  aws
    .command('import-roles')
    .description("read the account's IAM roles and their MaxSessionDuration into Ferry")
    .requiredOption('--account <account>', 'account id or alias registered in Ferry')
    .option('--endpoint-url <url>', 'AWS endpoint (e.g. the local AWS of the demo); default: real AWS')
    .option('--region <region>')
    .option('--only-saml', 'only roles that already trust a SAML provider')
    .option('--dry-run', 'list what would be imported and change nothing')
    .action(async function (
      this: Command,
      opts: { account: string; endpointUrl?: string; region?: string; onlySaml?: boolean; dryRun?: boolean },
    ) {
      const client = clientOf(this);
      const account = await client.get<AccountView>(`/api/v1/aws/accounts/${enc(opts.account)}`);
      const { importRoles } = await import('../aws/import-roles.js');
      const roles = await importRoles({
        ...awsConnection(opts),
        accountId: account.id,
        onlySamlTrusted: opts.onlySaml ?? false,
      });
      for (const role of roles) {
        const known = account.roles.find((r) => r.name === role.name);
        const action = !known
          ? 'add'
          : known.maxSessionDuration !== role.maxSessionDuration
            ? 'update'
            : 'unchanged';
        if (!opts.dryRun && action !== 'unchanged') {
          await client.request('PUT', `/api/v1/aws/accounts/${enc(account.id)}/roles/${enc(role.name)}`, {
            path: role.path,
            maxSessionDuration: role.maxSessionDuration,
            ...(role.description ? { description: role.description } : {}),
          });
        }
        out(
          t`${action === 'add' ? '+' : action === 'update' ? '~' : '='} ${role.arn}  MaxSessionDuration ${role.maxSessionDuration}s${role.trustsSaml ? '  (trusts SAML)' : ''}\n`,
        );
      }
      if (opts.dryRun) out(t`(dry run: nothing was changed)\n`);
    });
}
