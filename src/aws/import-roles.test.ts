import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsQueryProxy } from '../../test/support/aws-query-proxy.js';
import { makeTestIdpMetadata } from '../../test/support/idp-metadata.js';
import { awsCli, type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import { type ImportedRole, importRoles, WrongAwsAccount } from './import-roles.js';

const ACCOUNT = '123456789012';
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:saml-provider/Ferry`;

const SAML_STATEMENT = {
  Effect: 'Allow',
  Principal: { Federated: PROVIDER_ARN },
  Action: 'sts:AssumeRoleWithSAML',
  Condition: { StringEquals: { 'SAML:aud': 'https://signin.aws.amazon.com/saml' } },
};
const EC2_STATEMENT = {
  Effect: 'Allow',
  Principal: { Service: 'ec2.amazonaws.com' },
  Action: 'sts:AssumeRole',
};
// Trusts an OIDC provider through the same "Federated" principal: must not count as SAML.
const OIDC_STATEMENT = {
  Effect: 'Allow',
  Principal: { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com` },
  Action: 'sts:AssumeRoleWithWebIdentity',
};

async function aws(
  localAws: Pick<LocalAws, 'endpoint' | 'region'>,
  args: string[],
): Promise<Record<string, unknown>> {
  const result = await awsCli(localAws, args);
  expect(result.code, `aws ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout.trim() === '' ? {} : (JSON.parse(result.stdout) as Record<string, unknown>);
}

async function cliCreateRole(localAws: LocalAws, name: string, statements: unknown[], extra: string[] = []) {
  await aws(localAws, [
    'iam',
    'create-role',
    '--role-name',
    name,
    '--assume-role-policy-document',
    JSON.stringify({ Version: '2012-10-17', Statement: statements }),
    ...extra,
  ]);
}

interface CliListedRole {
  RoleName: string;
  Path: string;
  MaxSessionDuration: number;
}

/** The CLI pages through ListRoles on its own: an independent view of every role. */
async function cliRoles(localAws: LocalAws): Promise<CliListedRole[]> {
  return (await aws(localAws, ['iam', 'list-roles']))['Roles'] as CliListedRole[];
}

describe('importRoles against moto', () => {
  let localAws: LocalAws;
  let opts: { endpoint: string; region: string; accountId: string };

  beforeAll(async () => {
    localAws = await startLocalAws();
    opts = { endpoint: localAws.endpoint, region: localAws.region, accountId: ACCOUNT };
    const { xml } = await makeTestIdpMetadata({
      entityId: 'https://ferry.test/saml',
      ssoUrl: 'https://x.test/',
    });
    await aws(localAws, ['iam', 'create-saml-provider', '--name', 'Ferry', '--saml-metadata-document', xml]);
    await cliCreateRole(
      localAws,
      'Developer',
      [SAML_STATEMENT],
      ['--max-session-duration', '14400', '--description', 'Developers, signed in through Ferry'],
    );
    await cliCreateRole(localAws, 'Worker', [EC2_STATEMENT], ['--path', '/app/']);
    await cliCreateRole(localAws, 'Deployer', [OIDC_STATEMENT]);
    await cliCreateRole(
      localAws,
      'Administrator',
      [EC2_STATEMENT, SAML_STATEMENT],
      ['--path', '/ferry/', '--max-session-duration', '43200'],
    );
    await aws(localAws, [
      'iam',
      'create-service-linked-role',
      '--aws-service-name',
      'elasticbeanstalk.amazonaws.com',
    ]);
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('lists every role but the service-linked one, with session limits and SAML trust', async () => {
    const roles = await importRoles(opts);

    expect(roles).toEqual<ImportedRole[]>([
      {
        name: 'Administrator',
        path: '/ferry/',
        arn: `arn:aws:iam::${ACCOUNT}:role/ferry/Administrator`,
        maxSessionDuration: 43_200,
        trustsSaml: true,
        samlProviderArns: [PROVIDER_ARN],
      },
      {
        name: 'Deployer',
        path: '/',
        arn: `arn:aws:iam::${ACCOUNT}:role/Deployer`,
        maxSessionDuration: 3600,
        trustsSaml: false,
        samlProviderArns: [],
      },
      {
        name: 'Developer',
        path: '/',
        arn: `arn:aws:iam::${ACCOUNT}:role/Developer`,
        maxSessionDuration: 14_400,
        description: 'Developers, signed in through Ferry',
        trustsSaml: true,
        samlProviderArns: [PROVIDER_ARN],
      },
      {
        name: 'Worker',
        path: '/app/',
        arn: `arn:aws:iam::${ACCOUNT}:role/app/Worker`,
        maxSessionDuration: 3600,
        trustsSaml: false,
        samlProviderArns: [],
      },
    ]);
  });

  it('agrees with the AWS CLI on which roles exist and their maximum session durations', async () => {
    const cli = await cliRoles(localAws);
    // The service-linked role is really there: it is left out on purpose, not missed.
    expect(cli.some((r) => r.Path.startsWith('/aws-service-role/'))).toBe(true);
    const expected = cli
      .filter((r) => !r.Path.startsWith('/aws-service-role/'))
      .map((r) => [r.RoleName, r.MaxSessionDuration])
      .sort();
    const roles = await importRoles(opts);
    expect(roles.map((r) => [r.name, r.maxSessionDuration]).sort()).toEqual(expected);
  });

  it('keeps only SAML-trusted roles when asked', async () => {
    const roles = await importRoles({ ...opts, onlySamlTrusted: true });
    expect(roles.map((r) => r.name)).toEqual(['Administrator', 'Developer']);
  });

  it('keeps only roles under a path prefix when asked', async () => {
    const roles = await importRoles({ ...opts, pathPrefix: '/ferry/' });
    expect(roles.map((r) => r.arn)).toEqual([`arn:aws:iam::${ACCOUNT}:role/ferry/Administrator`]);
  });

  it('falls back to GetRole when ListRoles leaves out MaxSessionDuration', async () => {
    const proxy = await startAwsQueryProxy(localAws, {
      rewrite: ({ action }, body) =>
        action === 'ListRoles' ? body.replace(/<MaxSessionDuration>\d+<\/MaxSessionDuration>/g, '') : body,
    });
    try {
      const roles = await importRoles({ ...opts, endpoint: proxy.endpoint });

      expect(roles.map((r) => [r.name, r.maxSessionDuration])).toEqual([
        ['Administrator', 43_200],
        ['Deployer', 3600],
        ['Developer', 14_400],
        ['Worker', 3600],
      ]);
      // One GetRole per imported role proves the values came from the fallback, not from ListRoles.
      expect(
        proxy.seen
          .filter((r) => r.action === 'GetRole')
          .map((r) => r.params.get('RoleName'))
          .sort(),
      ).toEqual(['Administrator', 'Deployer', 'Developer', 'Worker']);
    } finally {
      await proxy.stop();
    }
  });

  it('refuses with WrongAwsAccount when the credentials are for another account', async () => {
    const attempt = importRoles({ ...opts, accountId: '111122223333' });
    await expect(attempt).rejects.toBeInstanceOf(WrongAwsAccount);
    await expect(attempt).rejects.toThrow(/account 123456789012 .*not 111122223333/);
  });
});

describe('importRoles over many pages', () => {
  const COUNT = 130;
  let localAws: LocalAws;

  beforeAll(async () => {
    localAws = await startLocalAws();
    const iam = new IAMClient({
      endpoint: localAws.endpoint,
      region: localAws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    try {
      const trust = JSON.stringify({ Version: '2012-10-17', Statement: [SAML_STATEMENT] });
      const names = Array.from({ length: COUNT }, (_, i) => `Role${String(i).padStart(3, '0')}`);
      // Made with the SDK, twenty at a time: quicker than the CLI, and only the checks need an independent client.
      for (let i = 0; i < names.length; i += 20) {
        await Promise.all(
          names.slice(i, i + 20).map((name, j) =>
            iam.send(
              new CreateRoleCommand({
                RoleName: name,
                AssumeRolePolicyDocument: trust,
                MaxSessionDuration: 3600 + ((i + j) % 12) * 3600,
              }),
            ),
          ),
        );
      }
    } finally {
      iam.destroy();
    }
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('follows the Marker through every page of ListRoles', async () => {
    const proxy = await startAwsQueryProxy(localAws);
    try {
      const roles = await importRoles({ endpoint: proxy.endpoint, region: proxy.region, accountId: ACCOUNT });

      const listCalls = proxy.seen.filter((r) => r.action === 'ListRoles');
      expect(listCalls).toHaveLength(2); // 100 + 30
      expect(listCalls[0]?.params.get('Marker')).toBeNull();
      expect(listCalls.slice(1).every((r) => r.params.get('Marker'))).toBe(true);

      expect(roles).toHaveLength(COUNT);
      expect(new Set(roles.map((r) => r.name)).size).toBe(COUNT);
      const cli = await cliRoles(localAws);
      expect(roles.map((r) => [r.name, r.maxSessionDuration])).toEqual(
        cli.map((r) => [r.RoleName, r.MaxSessionDuration]).sort(),
      );
      expect(roles.every((r) => r.trustsSaml)).toBe(true);
      expect(roles.find((r) => r.name === 'Role013')?.maxSessionDuration).toBe(3600 + 1 * 3600);
    } finally {
      await proxy.stop();
    }
  });
});
