import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIdentityStoreGroups } from '../../src/aws/identity-center/sso-admin.js';
import { generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import { awsCli, type LocalAws, startLocalAws } from '../support/local-aws.js';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';
import { IDC, identityCenterMetadata } from '../support/saml-fixtures.js';

const TENANT = new URL('../../examples/tenant.yaml', import.meta.url).pathname;

/**
 * An administrator setting up AWS console sign-in with the `ferry` command: the example tenant file,
 * the AWS side through the SDK (moto, checked with the AWS CLI), IAM Identity Center as an SP, and a
 * signing key rotation.
 */
describe('SAML administration with the ferry command', () => {
  let dir: string;
  let aws: LocalAws;
  let server: FerryProcess;
  let env: Record<string, string>;
  const ferry = (args: string[]) => runFerry(args, { cwd: dir, env, timeoutMs: 60_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-saml-'));
    const base = {
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const token = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env: base });
    expect(token.code, token.stderr).toBe(0);
    // The example tenant has a permission set: Identity Center is the local AWS's, with the group there.
    aws = await startLocalAws();
    await ensureIdentityStoreGroups({ endpoint: aws.endpoint, region: aws.region }, [
      'AWS-Account1-Developers',
    ]);
    server = await startFerryProcess({ cwd: dir, env: { ...base, FERRY_AWS_ENDPOINT: aws.endpoint } });
    env = {
      ...base,
      FERRY_SERVER: server.url,
      FERRY_TOKEN: token.stdout.trim(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
  }, 90_000);

  afterAll(async () => {
    await stopAllFerryProcesses();
    await aws?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies the example tenant file: a dry run first, then for real, then nothing left to do', async () => {
    const dry = await ferry(['apply', TENANT, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('+ aws-account 123456789012 (Account1)');
    expect(dry.stdout).toContain('+ assignment group:AWS-Account1-Developers → aws:123456789012/Developer');
    expect(dry.stdout).toContain('+ iic-permission-set ReadOnly');
    expect(dry.stdout).toContain('dry run');
    const listed = await ferry(['aws', 'accounts', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([]);
    const applied = await ferry(['apply', TENANT]);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect((await ferry(['apply', TENANT])).stdout).toBe('no changes\n');
    const roles = await ferry(['aws', 'roles', 'list', 'Account1', '--json']);
    expect(
      (JSON.parse(roles.stdout) as Array<{ name: string; maxSessionDuration: number }>).map((r) => [
        r.name,
        r.maxSessionDuration,
      ]),
    ).toEqual([
      ['Administrator', 43200],
      ['Developer', 43200],
    ]);
  });

  it('sets up the IAM SAML provider and role trust in the AWS account, then finds nothing to change', async () => {
    const first = await ferry([
      'aws',
      'setup-account',
      '--account',
      'Account1',
      '--endpoint-url',
      aws.endpoint,
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/created +SAML provider Ferry/i);
    const provider = await awsCli(aws, [
      'iam',
      'get-saml-provider',
      '--saml-provider-arn',
      'arn:aws:iam::123456789012:saml-provider/Ferry',
    ]);
    expect(provider.code, provider.stderr).toBe(0);
    const metadata = await (await fetch(`${server.url}/saml/metadata`)).text();
    expect(
      (JSON.parse(provider.stdout) as { SAMLMetadataDocument: string }).SAMLMetadataDocument.trim(),
    ).toBe(metadata.replaceAll('\r\n', '\n').trim());
    const role = JSON.parse((await awsCli(aws, ['iam', 'get-role', '--role-name', 'Developer'])).stdout) as {
      Role: { AssumeRolePolicyDocument: unknown };
    };
    const trust = JSON.stringify(role.Role.AssumeRolePolicyDocument);
    for (const action of ['sts:AssumeRoleWithSAML', 'sts:SetSourceIdentity', 'sts:TagSession'])
      expect(trust).toContain(action);
    const again = await ferry([
      'aws',
      'setup-account',
      '--account',
      'Account1',
      '--endpoint-url',
      aws.endpoint,
      '--json',
    ]);
    const report = JSON.parse(again.stdout) as { changes: Array<{ action: string }> };
    expect(report.changes.every((c) => c.action === 'unchanged')).toBe(true);
    const imported = await ferry([
      'aws',
      'import-roles',
      '--account',
      'Account1',
      '--endpoint-url',
      aws.endpoint,
      '--dry-run',
    ]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('arn:aws:iam::123456789012:role/Developer');
  });

  it('registers IAM Identity Center from its metadata file and refuses it twice', async () => {
    const sp = await generateSelfSignedRsa({
      commonName: 'idc',
      modulusLength: 2048,
      notBefore: new Date(),
      validityDays: 2,
    });
    const file = join(dir, 'idc-metadata.xml');
    writeFileSync(file, identityCenterMetadata(sp.certificatePem));
    const added = await ferry(['sp', 'add', '--name', 'IAM Identity Center', '--metadata-file', file]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(IDC.entityId);
    const list = await ferry(['sp', 'list', '--json']);
    expect(
      (JSON.parse(list.stdout) as Array<{ acsUrls: Array<{ url: string }> }>)[0]!.acsUrls.map((a) => a.url),
    ).toContain(IDC.acsUrl);
    const dup = await ferry(['sp', 'add', '--name', 'again', '--metadata-file', file]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('Conflict');
  });

  it('rotates the signing key: the next certificate is published first, then takes over', async () => {
    const certsIn = async () =>
      [...(await (await fetch(`${server.url}/saml/metadata`)).text()).matchAll(/<ds:X509Certificate>/g)]
        .length;
    expect(await certsIn()).toBe(1);
    const staged = await ferry(['keys', 'rotate']);
    expect(staged.code, staged.stderr).toBe(0);
    expect(await certsIn()).toBe(2);
    const keys = JSON.parse((await ferry(['keys', 'list', '--json'])).stdout) as Array<{
      id: string;
      state: string;
    }>;
    expect(keys.map((k) => k.state)).toEqual(['current', 'next']);
    const activated = await ferry(['keys', 'rotate', '--activate']);
    expect(activated.code, activated.stderr).toBe(0);
    const after = JSON.parse((await ferry(['keys', 'list', '--json'])).stdout) as Array<{
      id: string;
      state: string;
    }>;
    expect(after).toEqual([expect.objectContaining({ id: keys[1]!.id, state: 'current' })]);
    expect(await certsIn()).toBe(1);
  });
});
