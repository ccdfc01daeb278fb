import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iamErrorXml, startAwsQueryProxy } from '../../test/support/aws-query-proxy.js';
import { makeTestIdpMetadata } from '../../test/support/idp-metadata.js';
import { awsCli, type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import {
  formatSetupReport,
  InvalidSamlSetup,
  type SamlSetupOptions,
  type SetupReport,
  setupSamlAccount,
  WrongAwsAccount,
} from './saml-setup.js';

const ACCOUNT = '123456789012';
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:saml-provider/Ferry`;

/** The statement every Ferry role must carry, written out here rather than taken from the code under test. */
const FERRY_STATEMENT = {
  Effect: 'Allow',
  Principal: { Federated: PROVIDER_ARN },
  Action: ['sts:AssumeRoleWithSAML', 'sts:SetSourceIdentity', 'sts:TagSession'],
  Condition: { StringEquals: { 'SAML:aud': 'https://signin.aws.amazon.com/saml' } },
};

const EC2_STATEMENT = {
  Effect: 'Allow',
  Principal: { Service: 'ec2.amazonaws.com' },
  Action: 'sts:AssumeRole',
};

type Pointer = Pick<LocalAws, 'endpoint' | 'region'>;

/** Runs the AWS CLI and parses its JSON, failing the test with the CLI's stderr if it did not succeed. */
async function aws(localAws: Pointer, args: string[]): Promise<Record<string, unknown>> {
  const result = await awsCli(localAws, args);
  expect(result.code, `aws ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout.trim() === '' ? {} : (JSON.parse(result.stdout) as Record<string, unknown>);
}

interface CliRole {
  Arn: string;
  MaxSessionDuration: number;
  Description?: string;
  AssumeRolePolicyDocument: unknown;
}

async function cliRole(localAws: Pointer, name: string): Promise<CliRole> {
  return (await aws(localAws, ['iam', 'get-role', '--role-name', name]))['Role'] as CliRole;
}

/** The CLI decodes policy documents itself; accept the raw (URL-encoded or plain) form too. */
function policyDocument(doc: unknown): { Version: string; Statement: unknown[] } {
  const parsed = typeof doc === 'string' ? JSON.parse(decodeURIComponent(doc)) : doc;
  return parsed as { Version: string; Statement: unknown[] };
}

async function cliTrust(localAws: Pointer, name: string): Promise<unknown[]> {
  return policyDocument((await cliRole(localAws, name)).AssumeRolePolicyDocument).Statement;
}

async function cliProviderArns(localAws: Pointer): Promise<string[]> {
  const out = await aws(localAws, ['iam', 'list-saml-providers']);
  return (out['SAMLProviderList'] as Array<{ Arn: string }>).map((p) => p.Arn);
}

async function cliMetadata(localAws: Pointer, arn: string): Promise<string> {
  const out = await aws(localAws, ['iam', 'get-saml-provider', '--saml-provider-arn', arn]);
  return out['SAMLMetadataDocument'] as string;
}

async function cliCreateRole(
  localAws: Pointer,
  name: string,
  statements: unknown[],
  extra: string[] = [],
): Promise<void> {
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

function actionsOf(report: SetupReport): string[] {
  return report.changes.map((c) => `${c.kind} ${c.name}: ${c.action}`);
}

describe('setupSamlAccount against moto', () => {
  let localAws: LocalAws;
  let metadataA: string;
  let metadataB: string;
  let options: SamlSetupOptions;

  beforeAll(async () => {
    localAws = await startLocalAws();
    const idp = { entityId: 'https://ferry.test/saml', ssoUrl: 'https://ferry.test/saml/sso' };
    const [a, b] = await Promise.all([makeTestIdpMetadata(idp), makeTestIdpMetadata(idp)]);
    metadataA = a.xml;
    metadataB = b.xml;
    // An existing workload role that EC2 instances assume; Ferry must add its sign-in without taking that away.
    await cliCreateRole(localAws, 'Operator', [EC2_STATEMENT], ['--description', 'EC2 and people']);
    options = {
      endpoint: localAws.endpoint,
      region: localAws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: metadataA,
      roles: [{ name: 'Developer', maxSessionDurationSeconds: 7200 }, { name: 'Operator' }],
    };
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('changes nothing on a dry run, and says what it would do', async () => {
    const proxy = await startAwsQueryProxy(localAws);
    let report: SetupReport;
    try {
      report = await setupSamlAccount({ ...options, endpoint: proxy.endpoint, dryRun: true });
    } finally {
      await proxy.stop();
    }
    expect(new Set(proxy.seen.map((r) => r.action))).toEqual(
      new Set(['GetCallerIdentity', 'GetSAMLProvider', 'GetRole']),
    );

    expect(report.accountId).toBe(ACCOUNT);
    expect(report.providerArn).toBe(PROVIDER_ARN);
    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: would-create',
      'role Developer: would-create',
      'trust-policy Developer: would-create',
      'max-session-duration Developer: would-create',
      'role Operator: unchanged',
      'trust-policy Operator: would-update',
    ]);
    expect(await cliProviderArns(localAws)).toEqual([]);
    const missing = await awsCli(localAws, ['iam', 'get-role', '--role-name', 'Developer']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NoSuchEntity/);
    expect(await cliTrust(localAws, 'Operator')).toEqual([EC2_STATEMENT]);
  });

  it('creates the SAML provider from the metadata and a trusting role on the first run', async () => {
    const report = await setupSamlAccount(options);

    expect(report.providerArn).toBe(PROVIDER_ARN);
    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: created',
      'role Developer: created',
      'trust-policy Developer: created',
      'max-session-duration Developer: created',
      'role Operator: unchanged',
      'trust-policy Operator: updated',
    ]);
    expect(await cliProviderArns(localAws)).toEqual([PROVIDER_ARN]);
    expect((await cliMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataA.trim());

    const developer = await cliRole(localAws, 'Developer');
    expect(developer.Arn).toBe(`arn:aws:iam::${ACCOUNT}:role/Developer`);
    expect(developer.MaxSessionDuration).toBe(7200);
    expect(policyDocument(developer.AssumeRolePolicyDocument)).toEqual({
      Version: '2012-10-17',
      Statement: [FERRY_STATEMENT],
    });
  });

  it('keeps the unrelated EC2 statement of an existing role and its description', async () => {
    const operator = await cliRole(localAws, 'Operator');
    expect(policyDocument(operator.AssumeRolePolicyDocument).Statement).toEqual([
      EC2_STATEMENT,
      FERRY_STATEMENT,
    ]);
    expect(operator.Description).toBe('EC2 and people');
    expect(operator.MaxSessionDuration).toBe(3600);
  });

  it('reports everything unchanged on a second run and sends IAM nothing but reads', async () => {
    const proxy = await startAwsQueryProxy(localAws);
    let report: SetupReport;
    try {
      report = await setupSamlAccount({ ...options, endpoint: proxy.endpoint });
    } finally {
      await proxy.stop();
    }
    expect(new Set(proxy.seen.map((r) => r.action))).toEqual(
      new Set(['GetCallerIdentity', 'GetSAMLProvider', 'GetRole']),
    );

    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: unchanged',
      'role Developer: unchanged',
      'trust-policy Developer: unchanged',
      'max-session-duration Developer: unchanged',
      'role Operator: unchanged',
      'trust-policy Operator: unchanged',
    ]);
    expect(await cliTrust(localAws, 'Operator')).toEqual([EC2_STATEMENT, FERRY_STATEMENT]);
  });

  it('updates the provider when the metadata changed (a dry run first leaves it alone)', async () => {
    const dry = await setupSamlAccount({ ...options, metadataXml: metadataB, dryRun: true });
    expect(dry.changes[0]).toEqual({ kind: 'saml-provider', name: 'Ferry', action: 'would-update' });
    expect((await cliMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataA.trim());

    const report = await setupSamlAccount({ ...options, metadataXml: metadataB });

    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: updated',
      'role Developer: unchanged',
      'trust-policy Developer: unchanged',
      'max-session-duration Developer: unchanged',
      'role Operator: unchanged',
      'trust-policy Operator: unchanged',
    ]);
    expect((await cliMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataB.trim());
    expect(await cliProviderArns(localAws)).toEqual([PROVIDER_ARN]);
  });

  it('treats metadata that differs only in line endings as unchanged', async () => {
    const report = await setupSamlAccount({ ...options, metadataXml: metadataB.replace(/\n/g, '\r\n') });
    expect(report.changes[0]).toEqual({ kind: 'saml-provider', name: 'Ferry', action: 'unchanged' });
  });

  it('widens a sign-in-only statement for the provider, keeping the conditions an admin added', async () => {
    const signInOnly = {
      Effect: 'Allow',
      Principal: { Federated: PROVIDER_ARN },
      Action: 'sts:AssumeRoleWithSAML',
      Condition: {
        StringEquals: { 'SAML:aud': 'https://signin.aws.amazon.com/saml' },
        StringLike: { 'SAML:sub': '*@contoso.example' },
      },
    };
    await aws(localAws, [
      'iam',
      'update-assume-role-policy',
      '--role-name',
      'Developer',
      '--policy-document',
      JSON.stringify({ Version: '2012-10-17', Statement: [EC2_STATEMENT, signInOnly] }),
    ]);

    const report = await setupSamlAccount(options);

    expect(report.changes).toContainEqual({ kind: 'trust-policy', name: 'Developer', action: 'updated' });
    expect(await cliTrust(localAws, 'Developer')).toEqual([
      EC2_STATEMENT,
      {
        ...signInOnly,
        Action: ['sts:AssumeRoleWithSAML', 'sts:SetSourceIdentity', 'sts:TagSession'],
      },
    ]);
  });

  it('corrects a drifted maximum session duration without losing the description', async () => {
    await aws(localAws, [
      'iam',
      'update-role',
      '--role-name',
      'Operator',
      '--max-session-duration',
      '3600',
      '--description',
      'EC2 and people',
    ]);

    const report = await setupSamlAccount({
      ...options,
      roles: [{ name: 'Operator', maxSessionDurationSeconds: 14_400 }],
    });

    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: unchanged',
      'role Operator: unchanged',
      'trust-policy Operator: unchanged',
      'max-session-duration Operator: updated',
    ]);
    const operator = await cliRole(localAws, 'Operator');
    expect(operator.MaxSessionDuration).toBe(14_400);
    expect(operator.Description).toBe('EC2 and people');
  });

  it('refuses with WrongAwsAccount, changing nothing, when the credentials are for another account', async () => {
    const attempt = setupSamlAccount({
      ...options,
      accountId: '111122223333',
      providerName: 'Elsewhere',
      roles: [{ name: 'Elsewhere' }],
    });
    await expect(attempt).rejects.toBeInstanceOf(WrongAwsAccount);
    await expect(attempt).rejects.toMatchObject({
      expected: { accountId: '111122223333', partition: 'aws' },
      actual: { accountId: ACCOUNT, partition: 'aws' },
    });
    expect(await cliProviderArns(localAws)).toEqual([PROVIDER_ARN]);
    expect((await awsCli(localAws, ['iam', 'get-role', '--role-name', 'Elsewhere'])).code).not.toBe(0);
  });

  it('refuses with WrongAwsAccount when the credentials are for another partition', async () => {
    const attempt = setupSamlAccount({ ...options, partition: 'aws-cn', providerName: 'China' });
    await expect(attempt).rejects.toBeInstanceOf(WrongAwsAccount);
    await expect(attempt).rejects.toThrow(/partition aws\)/);
    expect(await cliProviderArns(localAws)).toEqual([PROVIDER_ARN]);
  });

  it('refuses names and durations AWS would refuse, before calling AWS', async () => {
    const bad: Array<[Partial<SamlSetupOptions>, RegExp]> = [
      [{ accountId: '12345' }, /12 digits/],
      [{ providerName: 'has space' }, /SAML provider name/],
      [{ roles: [{ name: 'a/b' }] }, /role name/],
      [{ roles: [{ name: 'Dev' }, { name: 'dev' }] }, /listed twice/],
      [{ roles: [{ name: 'Dev', maxSessionDurationSeconds: 900 }] }, /3600 to 43200/],
      [{ metadataXml: '  ' }, /empty/],
    ];
    for (const [change, message] of bad) {
      // An endpoint nothing listens on: a call to AWS would fail differently.
      const attempt = setupSamlAccount({ ...options, endpoint: 'http://127.0.0.1:9', ...change });
      await expect(attempt).rejects.toBeInstanceOf(InvalidSamlSetup);
      await expect(attempt).rejects.toThrow(message);
    }
  });

  it('formats the report one line per change', async () => {
    const report = await setupSamlAccount({ ...options, roles: [{ name: 'Tester' }], dryRun: true });
    expect(formatSetupReport(report)).toBe(
      [
        `AWS account ${ACCOUNT}, SAML provider ${PROVIDER_ARN}`,
        '  unchanged     SAML provider Ferry',
        '  would create  role Tester',
        '  would create  trust policy of role Tester',
      ].join('\n'),
    );
  });
});

describe('setupSamlAccount in the aws-us-gov partition (moto by region)', () => {
  let localAws: LocalAws;
  let gov: Pointer;

  beforeAll(async () => {
    localAws = await startLocalAws();
    gov = { endpoint: localAws.endpoint, region: 'us-gov-west-1' };
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it("trusts the partition's provider ARN with the GovCloud sign-in URL as SAML:aud", async () => {
    const { xml } = await makeTestIdpMetadata({
      entityId: 'https://ferry.test/saml',
      ssoUrl: 'https://x.test/',
    });
    const report = await setupSamlAccount({
      ...gov,
      accountId: ACCOUNT,
      partition: 'aws-us-gov',
      providerName: 'Ferry',
      metadataXml: xml,
      roles: [{ name: 'Developer' }],
    });

    const arn = `arn:aws-us-gov:iam::${ACCOUNT}:saml-provider/Ferry`;
    expect(report.providerArn).toBe(arn);
    expect(await cliProviderArns(gov)).toEqual([arn]);
    expect(await cliTrust(gov, 'Developer')).toEqual([
      {
        ...FERRY_STATEMENT,
        Principal: { Federated: arn },
        Condition: { StringEquals: { 'SAML:aud': 'https://signin.amazonaws-us-gov.com/saml' } },
      },
    ]);
  });
});

describe('setupSamlAccount while IAM has not yet propagated a new SAML provider', () => {
  let localAws: LocalAws;

  beforeAll(async () => {
    localAws = await startLocalAws();
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('retries a trust policy refused as "Invalid principal", as real IAM does for a moment', async () => {
    let refusals = 0;
    const proxy = await startAwsQueryProxy(localAws, {
      intercept: ({ action }) => {
        if (action !== 'CreateRole' || refusals >= 2) return undefined;
        refusals++;
        return {
          status: 400,
          body: iamErrorXml(
            'MalformedPolicyDocument',
            `Invalid principal in policy: "Federated":"${PROVIDER_ARN}"`,
          ),
        };
      },
    });
    try {
      const { xml } = await makeTestIdpMetadata({
        entityId: 'https://ferry.test/saml',
        ssoUrl: 'https://x.test/',
      });
      const report = await setupSamlAccount({
        endpoint: proxy.endpoint,
        region: proxy.region,
        accountId: ACCOUNT,
        partition: 'aws',
        providerName: 'Ferry',
        metadataXml: xml,
        roles: [{ name: 'Developer' }],
      });

      expect(report.changes).toContainEqual({ kind: 'role', name: 'Developer', action: 'created' });
      expect(proxy.seen.filter((r) => r.action === 'CreateRole')).toHaveLength(3);
      expect(await cliTrust(localAws, 'Developer')).toEqual([FERRY_STATEMENT]);
    } finally {
      await proxy.stop();
    }
  });

  it('does not retry any other malformed policy error', async () => {
    const proxy = await startAwsQueryProxy(localAws, {
      intercept: ({ action }) =>
        action === 'CreateRole'
          ? { status: 400, body: iamErrorXml('MalformedPolicyDocument', 'Policy document too large') }
          : undefined,
    });
    try {
      const { xml } = await makeTestIdpMetadata({
        entityId: 'https://ferry.test/saml',
        ssoUrl: 'https://x.test/',
      });
      const attempt = setupSamlAccount({
        endpoint: proxy.endpoint,
        region: proxy.region,
        accountId: ACCOUNT,
        partition: 'aws',
        providerName: 'Ferry',
        metadataXml: xml,
        roles: [{ name: 'Tester' }],
      });
      await expect(attempt).rejects.toThrow(/too large/);
      expect(proxy.seen.filter((r) => r.action === 'CreateRole')).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });
});
