import {
  CreateRoleCommand,
  GetRoleCommand,
  GetSAMLProviderCommand,
  IAMClient,
  ListSAMLProvidersCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iamErrorXml, startAwsQueryProxy } from '../../test/support/aws-query-proxy.js';
import { makeTestIdpMetadata } from '../../test/support/idp-metadata.js';
import { type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
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

/**
 * The test's own view of IAM, through an SDK client of its own (not the code under test). Independent reads
 * are what matter here; the AWS CLI would say the same at seconds a call.
 */
const clients = new Map<string, IAMClient>();
function iamOf(localAws: Pointer): IAMClient {
  const key = `${localAws.endpoint} ${localAws.region}`;
  let client = clients.get(key);
  if (!client) {
    client = new IAMClient({
      endpoint: localAws.endpoint,
      region: localAws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    clients.set(key, client);
  }
  return client;
}

interface ReadRole {
  Arn: string;
  MaxSessionDuration: number;
  Description?: string;
  AssumeRolePolicyDocument: unknown;
}

async function readRole(localAws: Pointer, name: string): Promise<ReadRole> {
  const { Role } = await iamOf(localAws).send(new GetRoleCommand({ RoleName: name }));
  return Role as ReadRole;
}

/** IAM returns policy documents URL-encoded; accept the plain form too. */
function policyDocument(doc: unknown): { Version: string; Statement: unknown[] } {
  const parsed = typeof doc === 'string' ? JSON.parse(decodeURIComponent(doc)) : doc;
  return parsed as { Version: string; Statement: unknown[] };
}

async function readTrust(localAws: Pointer, name: string): Promise<unknown[]> {
  return policyDocument((await readRole(localAws, name)).AssumeRolePolicyDocument).Statement;
}

async function readProviderArns(localAws: Pointer): Promise<string[]> {
  const out = await iamOf(localAws).send(new ListSAMLProvidersCommand({}));
  return (out.SAMLProviderList ?? []).map((p) => p.Arn!);
}

async function readMetadata(localAws: Pointer, arn: string): Promise<string> {
  const out = await iamOf(localAws).send(new GetSAMLProviderCommand({ SAMLProviderArn: arn }));
  return out.SAMLMetadataDocument!;
}

async function createRole(
  localAws: Pointer,
  name: string,
  statements: unknown[],
  description?: string,
): Promise<void> {
  await iamOf(localAws).send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }),
      ...(description ? { Description: description } : {}),
    }),
  );
}

/** Resolves to the error IAM answered with, or fails if there was none. */
async function refusal(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('IAM answered, a refusal was expected');
    },
    (err: Error) => err,
  );
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
    await createRole(localAws, 'Operator', [EC2_STATEMENT], 'EC2 and people');
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
    expect(await readProviderArns(localAws)).toEqual([]);
    const missing = await refusal(readRole(localAws, 'Developer'));
    expect(missing.name).toBe('NoSuchEntityException');
    expect(await readTrust(localAws, 'Operator')).toEqual([EC2_STATEMENT]);
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
    expect(await readProviderArns(localAws)).toEqual([PROVIDER_ARN]);
    expect((await readMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataA.trim());

    const developer = await readRole(localAws, 'Developer');
    expect(developer.Arn).toBe(`arn:aws:iam::${ACCOUNT}:role/Developer`);
    expect(developer.MaxSessionDuration).toBe(7200);
    expect(policyDocument(developer.AssumeRolePolicyDocument)).toEqual({
      Version: '2012-10-17',
      Statement: [FERRY_STATEMENT],
    });
  });

  it('keeps the unrelated EC2 statement of an existing role and its description', async () => {
    const operator = await readRole(localAws, 'Operator');
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
    expect(await readTrust(localAws, 'Operator')).toEqual([EC2_STATEMENT, FERRY_STATEMENT]);
  });

  it('updates the provider when the metadata changed (a dry run first leaves it alone)', async () => {
    const dry = await setupSamlAccount({ ...options, metadataXml: metadataB, dryRun: true });
    expect(dry.changes[0]).toEqual({ kind: 'saml-provider', name: 'Ferry', action: 'would-update' });
    expect((await readMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataA.trim());

    const report = await setupSamlAccount({ ...options, metadataXml: metadataB });

    expect(actionsOf(report)).toEqual([
      'saml-provider Ferry: updated',
      'role Developer: unchanged',
      'trust-policy Developer: unchanged',
      'max-session-duration Developer: unchanged',
      'role Operator: unchanged',
      'trust-policy Operator: unchanged',
    ]);
    expect((await readMetadata(localAws, PROVIDER_ARN)).trim()).toBe(metadataB.trim());
    expect(await readProviderArns(localAws)).toEqual([PROVIDER_ARN]);
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
    await iamOf(localAws).send(
      new UpdateAssumeRolePolicyCommand({
        RoleName: 'Developer',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [EC2_STATEMENT, signInOnly] }),
      }),
    );

    const report = await setupSamlAccount(options);

    expect(report.changes).toContainEqual({ kind: 'trust-policy', name: 'Developer', action: 'updated' });
    expect(await readTrust(localAws, 'Developer')).toEqual([
      EC2_STATEMENT,
      {
        ...signInOnly,
        Action: ['sts:AssumeRoleWithSAML', 'sts:SetSourceIdentity', 'sts:TagSession'],
      },
    ]);
  });

  it('corrects a drifted maximum session duration without losing the description', async () => {
    await iamOf(localAws).send(
      new UpdateRoleCommand({
        RoleName: 'Operator',
        MaxSessionDuration: 3600,
        Description: 'EC2 and people',
      }),
    );

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
    const operator = await readRole(localAws, 'Operator');
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
    expect(await readProviderArns(localAws)).toEqual([PROVIDER_ARN]);
    expect((await refusal(readRole(localAws, 'Elsewhere'))).name).toBe('NoSuchEntityException');
  });

  it('refuses with WrongAwsAccount when the credentials are for another partition', async () => {
    const attempt = setupSamlAccount({ ...options, partition: 'aws-cn', providerName: 'China' });
    await expect(attempt).rejects.toBeInstanceOf(WrongAwsAccount);
    await expect(attempt).rejects.toThrow(/partition aws\)/);
    expect(await readProviderArns(localAws)).toEqual([PROVIDER_ARN]);
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

// One moto for the two describes below: moto keeps IAM apart per partition, so the aws-us-gov account
// and the aws account the propagation tests build in do not see each other.
let partitioned: LocalAws | undefined;
const partitionedAws = async (): Promise<LocalAws> => {
  partitioned ??= await startLocalAws();
  return partitioned;
};
afterAll(async () => {
  for (const client of clients.values()) client.destroy();
  await partitioned?.stop();
});

describe('setupSamlAccount in the aws-us-gov partition (moto by region)', () => {
  let gov: Pointer;

  beforeAll(async () => {
    gov = { endpoint: (await partitionedAws()).endpoint, region: 'us-gov-west-1' };
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
    expect(await readProviderArns(gov)).toEqual([arn]);
    expect(await readTrust(gov, 'Developer')).toEqual([
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
    localAws = await partitionedAws();
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
      expect(await readTrust(localAws, 'Developer')).toEqual([FERRY_STATEMENT]);
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
