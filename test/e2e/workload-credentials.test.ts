import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';

/**
 * Workloads (CI jobs, AI agents) inside the same boundary as people: a workload identity with a
 * client secret gets STS credentials through the same /api/v1/aws/credentials and decide(), and a
 * Ferry-issued token addressed to sts.amazonaws.com works with AssumeRoleWithWebIdentity.
 */
describe('workload identities', () => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let home: string;
  let workload: { clientId: string; secret: string };

  const admin = (args: string[]) =>
    runFerry(['--server', ferry.url, ...args], {
      cwd: home,
      env: { FERRY_TOKEN: ferry.adminToken, HOME: home },
    });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-workload-'));
    [aws, ferry] = await Promise.all([startLocalAws(), startTestFerry('postgres')]);
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1', endpointUrl: aws.endpoint });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Administrator', maxSessionDuration: 43200 });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: await (await fetch(`${ferry.url}/saml/metadata`)).text(),
      roles: [{ name: 'Administrator' }, { name: 'Developer' }],
    });
  }, 120_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('an admin creates a workload (secret shown once) and assigns it a role like a user', async () => {
    const created = await admin(['workloads', 'create', '--name', 'ci-deploy', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout) as { client: { clientId: string }; clientSecret: string };
    workload = { clientId: body.client.clientId, secret: body.clientSecret };
    expect(workload.secret).toMatch(/^[\w-]{43}$/);
    const assigned = await admin([
      'assignments',
      'add',
      '--workload',
      'ci-deploy',
      '--account',
      'Account1',
      '--role',
      'Developer',
    ]);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(assigned.stdout).toBe('ci-deploy → aws:123456789012/Developer\n');
    // The secret is stored as a hash only.
    const row = await ferry.services.store.db
      .selectFrom('oidc_clients')
      .select('metadata')
      .where('id', '=', workload.clientId)
      .executeTakeFirstOrThrow();
    expect(row.metadata).not.toContain(workload.secret);
  });

  it('ferry creds with FERRY_CLIENT_ID/FERRY_CLIENT_SECRET: STS credentials for the assigned role, named after the workload', async () => {
    const env = { HOME: home, FERRY_CLIENT_ID: workload.clientId, FERRY_CLIENT_SECRET: workload.secret };
    const res = await runFerry(
      ['--server', ferry.url, 'creds', '--account', 'Account1', '--role', 'Developer'],
      {
        cwd: home,
        env,
      },
    );
    expect(res.code, res.stderr).toBe(0);
    const creds = JSON.parse(res.stdout) as {
      assumedRoleArn: string;
      accessKeyId: string;
      sessionToken: string;
      secretAccessKey: string;
    };
    expect(creds.assumedRoleArn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/Developer/ci-deploy`);
    const who = await awsCli(aws, ['sts', 'get-caller-identity'], creds);
    expect(JSON.parse(who.stdout).Arn).toBe(creds.assumedRoleArn);
    const audit = (await ferry
      .api('/api/v1/audit/events?type=aws.credentials.issued')
      .then((r) => r.json())) as {
      items: Array<{ actor: { type: string; name: string }; data: { accessKeyId: string } }>;
    };
    expect(audit.items.at(-1)).toMatchObject({
      actor: { type: 'workload', name: 'ci-deploy' },
      data: { accessKeyId: creds.accessKeyId },
    });

    const refused = await runFerry(
      ['--server', ferry.url, 'creds', '--account', 'Account1', '--role', 'Administrator'],
      {
        cwd: home,
        env,
      },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('no assignment gives workload ci-deploy aws:123456789012/Administrator');
  });

  it('a wrong workload secret gets no token', async () => {
    const wrongConfig = await oidc.discovery(new URL(ferry.url), workload.clientId, 'wrong', undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    await expect(oidc.clientCredentialsGrant(wrongConfig)).rejects.toMatchObject({ error: 'invalid_client' });
    const res = await runFerry(
      ['--server', ferry.url, 'creds', '--account', 'Account1', '--role', 'Developer'],
      {
        cwd: home,
        env: { HOME: home, FERRY_CLIENT_ID: workload.clientId, FERRY_CLIENT_SECRET: 'wrong' },
      },
    );
    expect(res.code, res.stdout).toBe(1);
    expect(res.stderr).toMatch(/invalid_client|client authentication failed/i);
  });

  it('ferry aws setup-account --oidc creates the IAM OIDC provider and a trust naming exactly the assigned workloads', async () => {
    const res = await admin([
      'aws',
      'setup-account',
      '--account',
      'Account1',
      '--oidc',
      '--endpoint-url',
      aws.endpoint,
      '--region',
      aws.region,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/created +oidc-provider 127\.0\.0\.1:\d+/);
    expect(res.stdout).toMatch(/updated +trust-policy Developer/);
    const role = JSON.parse((await awsCli(aws, ['iam', 'get-role', '--role-name', 'Developer'])).stdout) as {
      Role: { AssumeRolePolicyDocument: { Statement: Array<Record<string, unknown>> } };
    };
    const host = new URL(ferry.url).host;
    const statement = role.Role.AssumeRolePolicyDocument.Statement.find((s) => s.Sid === 'FerryWorkloads');
    expect(statement).toEqual({
      Sid: 'FerryWorkloads',
      Effect: 'Allow',
      Principal: { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/${host}` },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: {
        StringEquals: { [`${host}:aud`]: 'sts.amazonaws.com', [`${host}:sub`]: [workload.clientId] },
      },
    });
    // The SAML trust is still there.
    expect(JSON.stringify(role.Role.AssumeRolePolicyDocument)).toContain('saml-provider/Ferry');
    const again = await admin([
      'aws',
      'setup-account',
      '--account',
      'Account1',
      '--oidc',
      '--endpoint-url',
      aws.endpoint,
      '--region',
      aws.region,
    ]);
    expect(again.stdout).toMatch(/unchanged +trust-policy Developer/);
  });

  it('a token for resource https://sts.amazonaws.com is an RS256 JWT that verifies with the JWKS and works with AssumeRoleWithWebIdentity', async () => {
    const config = await oidc.discovery(new URL(ferry.url), workload.clientId, workload.secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const tokens = await oidc.clientCredentialsGrant(config, { resource: 'https://sts.amazonaws.com' });
    const { payload, protectedHeader } = await jose.jwtVerify(
      tokens.access_token,
      jose.createRemoteJWKSet(new URL(`${ferry.url}/oidc/jwks`)),
      { issuer: ferry.url, audience: 'sts.amazonaws.com' },
    );
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(workload.clientId);
    expect(payload.client_id).toBe(workload.clientId);
    // moto accepts the token without checking it; real AWS checks issuer, signature, aud and sub against the trust above.
    const res = await awsCli(aws, [
      'sts',
      'assume-role-with-web-identity',
      '--role-arn',
      `arn:aws:iam::${ACCOUNT}:role/Developer`,
      '--role-session-name',
      'ci-deploy',
      '--web-identity-token',
      tokens.access_token,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).Credentials.AccessKeyId).toBeTruthy();

    await expect(
      oidc.clientCredentialsGrant(config, { resource: 'https://attacker.example' }),
    ).rejects.toMatchObject({
      error: 'invalid_target',
    });
  });
});
