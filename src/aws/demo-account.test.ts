import { createServer, type Server } from 'node:http';
import {
  DetachRolePolicyCommand,
  IAMClient,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsCli, type LocalAws, startLocalAws } from '../../test/support/local-aws.js';
import { DEMO_AWS_ACCOUNT, type DemoAwsAccount, ensureDemoAwsAccount } from './demo-account.js';
import { LocalAwsStartFailed, startMotoServer } from './moto-server.js';

/** Runs the AWS CLI and parses its JSON, failing the test with the CLI's stderr if it did not succeed. */
async function aws(localAws: LocalAws, args: string[]): Promise<Record<string, unknown>> {
  const result = await awsCli(localAws, args);
  expect(result.code, `aws ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout.trim() === '' ? {} : (JSON.parse(result.stdout) as Record<string, unknown>);
}

interface CliRole {
  Arn: string;
  MaxSessionDuration: number;
  AssumeRolePolicyDocument: unknown;
}

async function getRole(localAws: LocalAws, name: string): Promise<CliRole> {
  return (await aws(localAws, ['iam', 'get-role', '--role-name', name]))['Role'] as CliRole;
}

async function attachedPolicyArns(localAws: LocalAws, name: string): Promise<string[]> {
  const out = await aws(localAws, ['iam', 'list-attached-role-policies', '--role-name', name]);
  return (out['AttachedPolicies'] as Array<{ PolicyArn: string }>).map((p) => p.PolicyArn);
}

/** The CLI decodes policy documents itself; accept the raw URL-encoded form too. */
function policyDocument(doc: unknown): unknown {
  return typeof doc === 'string' ? JSON.parse(decodeURIComponent(doc)) : doc;
}

const expectedTrust = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Federated: 'arn:aws:iam::123456789012:saml-provider/Ferry' },
      Action: 'sts:AssumeRoleWithSAML',
      Condition: { StringEquals: { 'SAML:aud': 'https://signin.aws.amazon.com/saml' } },
    },
  ],
};

describe('ensureDemoAwsAccount against moto', () => {
  let localAws: LocalAws;
  let first: DemoAwsAccount;
  let second: DemoAwsAccount;

  beforeAll(async () => {
    localAws = await startLocalAws();
    const opts = { endpoint: localAws.endpoint, region: localAws.region };
    first = await ensureDemoAwsAccount(opts);
    second = await ensureDemoAwsAccount(opts);
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('creates both roles in the demo account on the first run and none on the second', () => {
    expect(first.accountId).toBe(DEMO_AWS_ACCOUNT.id);
    expect(first.roles).toEqual([
      { name: 'Administrator', arn: 'arn:aws:iam::123456789012:role/Administrator', created: true },
      { name: 'Developer', arn: 'arn:aws:iam::123456789012:role/Developer', created: true },
    ]);
    expect(second.accountId).toBe(DEMO_AWS_ACCOUNT.id);
    expect(second.roles).toEqual(first.roles.map((r) => ({ ...r, created: false })));
  });

  it('gives Administrator AdministratorAccess, a 12-hour maximum session and SAML trust in Ferry', async () => {
    const role = await getRole(localAws, 'Administrator');
    expect(role.Arn).toBe('arn:aws:iam::123456789012:role/Administrator');
    expect(role.MaxSessionDuration).toBe(43_200);
    expect(policyDocument(role.AssumeRolePolicyDocument)).toEqual(expectedTrust);
    expect(await attachedPolicyArns(localAws, 'Administrator')).toEqual([
      'arn:aws:iam::aws:policy/AdministratorAccess',
    ]);
  });

  it('gives Developer S3 access only', async () => {
    const role = await getRole(localAws, 'Developer');
    expect(role.MaxSessionDuration).toBe(43_200);
    expect(policyDocument(role.AssumeRolePolicyDocument)).toEqual(expectedTrust);
    expect(await attachedPolicyArns(localAws, 'Developer')).toEqual([
      'arn:aws:iam::aws:policy/AmazonS3FullAccess',
    ]);
    const inline = await aws(localAws, ['iam', 'list-role-policies', '--role-name', 'Developer']);
    expect(inline['PolicyNames']).toEqual([]);
  });

  it('tags both roles as demo roles', async () => {
    for (const name of ['Administrator', 'Developer']) {
      const out = await aws(localAws, ['iam', 'list-role-tags', '--role-name', name]);
      expect(out['Tags']).toContainEqual({ Key: 'ferry:demo', Value: 'true' });
    }
  });

  it('brings a drifted role back in line without recreating it', async () => {
    // Drift is made with the SDK (quicker than the CLI); only the checks need the independent client.
    const iam = new IAMClient({
      endpoint: localAws.endpoint,
      region: localAws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    try {
      await iam.send(new UpdateRoleCommand({ RoleName: 'Developer', MaxSessionDuration: 3600 }));
      await iam.send(
        new DetachRolePolicyCommand({
          RoleName: 'Developer',
          PolicyArn: 'arn:aws:iam::aws:policy/AmazonS3FullAccess',
        }),
      );
      const other = {
        ...expectedTrust,
        Statement: [{ ...expectedTrust.Statement[0], Action: 'sts:AssumeRole' }],
      };
      await iam.send(
        new UpdateAssumeRolePolicyCommand({ RoleName: 'Developer', PolicyDocument: JSON.stringify(other) }),
      );
    } finally {
      iam.destroy();
    }

    const again = await ensureDemoAwsAccount({ endpoint: localAws.endpoint, region: localAws.region });

    expect(again.roles.every((r) => !r.created)).toBe(true);
    const role = await getRole(localAws, 'Developer');
    expect(role.MaxSessionDuration).toBe(43_200);
    expect(policyDocument(role.AssumeRolePolicyDocument)).toEqual(expectedTrust);
    expect(await attachedPolicyArns(localAws, 'Developer')).toEqual([
      'arn:aws:iam::aws:policy/AmazonS3FullAccess',
    ]);
  });

  it('trusts a differently named SAML provider when asked', async () => {
    await ensureDemoAwsAccount({
      endpoint: localAws.endpoint,
      region: localAws.region,
      samlProviderName: 'Other',
    });
    const role = await getRole(localAws, 'Administrator');
    const trust = policyDocument(role.AssumeRolePolicyDocument) as typeof expectedTrust;
    expect(trust.Statement[0]?.Principal).toEqual({
      Federated: 'arn:aws:iam::123456789012:saml-provider/Other',
    });
    await ensureDemoAwsAccount({ endpoint: localAws.endpoint, region: localAws.region });
  });
});

describe('ensureDemoAwsAccount against a moto without AWS managed policies', () => {
  let localAws: LocalAws;

  beforeAll(async () => {
    localAws = await startLocalAws({ env: { MOTO_IAM_LOAD_MANAGED_POLICIES: 'false' } });
  });

  afterAll(async () => {
    await localAws?.stop();
  });

  it('grants the same permissions through inline policies', async () => {
    const opts = { endpoint: localAws.endpoint, region: localAws.region };
    await ensureDemoAwsAccount(opts);
    const again = await ensureDemoAwsAccount(opts);
    expect(again.roles.map((r) => r.created)).toEqual([false, false]);

    expect(await attachedPolicyArns(localAws, 'Developer')).toEqual([]);
    const inline = await aws(localAws, [
      'iam',
      'get-role-policy',
      '--role-name',
      'Developer',
      '--policy-name',
      'ferry-demo-developer-s3',
    ]);
    expect(policyDocument(inline['PolicyDocument'])).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    });
    const admin = await aws(localAws, ['iam', 'list-role-policies', '--role-name', 'Administrator']);
    expect(admin['PolicyNames']).toEqual(['ferry-demo-administrator']);
  });
});

describe('startMotoServer', () => {
  it('stops the server for good, and stopping twice is harmless', async () => {
    const localAws = await startMotoServer();
    expect((await fetch(`${localAws.endpoint}/moto-api/data.json`)).status).toBe(200);

    await localAws.stop();
    await localAws.stop();

    await expect(fetch(`${localAws.endpoint}/moto-api/data.json`)).rejects.toThrow();
  });

  it('fails with LocalAwsStartFailed when moto_server is not on PATH', async () => {
    const started = startMotoServer({ env: { PATH: '/nonexistent' } });
    await expect(started).rejects.toBeInstanceOf(LocalAwsStartFailed);
    await expect(started).rejects.toThrow(/moto_server is not on PATH/);
  });

  it('fails with LocalAwsStartFailed, including moto output, when another HTTP server holds its port', async () => {
    // Answers every request with 200, so only a check that moto itself answered can tell the two apart.
    const squatter: Server = createServer((_req, res) => res.end('not moto'));
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const started = startMotoServer({ port });
      await expect(started).rejects.toBeInstanceOf(LocalAwsStartFailed);
      await expect(started).rejects.toThrow(/address already in use/i);
    } finally {
      squatter.closeAllConnections();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
