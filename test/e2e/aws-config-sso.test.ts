import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListInstancesCommand, SSOAdminClient } from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTenant } from '../../src/app/tenant.js';
import type { AuditContext } from '../../src/audit/actor.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const PASSWORD = 'correct-horse-battery-42';
const OWN = '[default]\nregion = eu-west-1\n\n[profile personal]\nregion = eu-west-1\noutput = table\n';

/**
 * The AWS config file as botocore reads it (the AWS CLI's and boto3's own loader): profiles and
 * sso-session sections. The AWS CLI on this machine is v1, which reads sso profiles but has no
 * `aws sso login`; the token flow itself is AWS's and not exercised here.
 */
function botocoreView(file: string): {
  profiles: Record<string, Record<string, string>>;
  sso_sessions: Record<string, Record<string, string>>;
} {
  const py = [
    'import json, sys, botocore.configloader as c',
    'cfg = c.load_config(sys.argv[1])',
    'print(json.dumps({"profiles": cfg.get("profiles", {}), "sso_sessions": cfg.get("sso_sessions", {})}))',
  ].join('\n');
  const run = spawnSync('python3', ['-c', py, file], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`botocore could not load ${file}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe.each(ENGINES)('ferry aws config writes AWS CLI sso profiles for permission sets (%s)', (engine) => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let home: string;
  let env: Record<string, string>;
  let identityStoreId: string;
  const user = `ssodev-${engine}@contoso.example`;

  const ferryCli = (args: string[], input?: string) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env, input, timeoutMs: 60_000 });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-sso-'));
    aws = await startLocalAws();
    ferry = await startTestFerry(engine, {
      config: { signin: { requireMfa: false }, aws: { endpoint: aws.endpoint, region: aws.region } },
    });
    const sso = new SSOAdminClient({
      region: aws.region,
      endpoint: aws.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    identityStoreId = (await sso.send(new ListInstancesCommand({}))).Instances![0]!.IdentityStoreId!;
    sso.destroy();
    const s = ferry.services;
    await applyTenant(
      s,
      ctx,
      {
        groups: [{ name: 'AWS-Account1-Developers' }],
        accounts: [{ id: ACCOUNT, alias: 'Account1', roles: [{ name: 'Developer' }] }],
        assignments: [{ group: 'AWS-Account1-Developers', account: 'Account1', role: 'Developer' }],
        permissionSets: [{ name: 'ReadOnly', sessionDuration: 'PT4H' }],
        permissionSetAssignments: [
          { group: 'AWS-Account1-Developers', account: 'Account1', permissionSet: 'ReadOnly' },
        ],
      },
      { dryRun: false, prune: false },
    );
    const u = await s.users.create(ctx, { userName: user, password: PASSWORD });
    await s.groups.setMembership(ctx, (await s.groups.get('AWS-Account1-Developers')).id, u.id, true);
    const configFile = join(home, 'aws-config');
    writeFileSync(configFile, OWN);
    env = {
      HOME: home,
      FERRY_CONFIG_DIR: join(home, 'ferry'),
      AWS_CONFIG_FILE: configFile,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const login = await ferryCli(['login', '--user', user], `${PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('writes an sso-session and a profile per permission set beside the role profiles; the person’s own stay', async () => {
    const res = await ferryCli(['aws', 'config', '--region', 'eu-central-1']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('+ ferry-account1-developer');
    expect(res.stdout).toContain('+ sso-session ferry');
    expect(res.stdout).toContain('+ ferry-sso-account1-readonly');
    expect(res.stdout).toContain('aws sso login --sso-session ferry');
    expect(res.stdout).toContain('sessions already open last until their duration ends');
    const file = env.AWS_CONFIG_FILE!;
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(OWN)).toBe(true);

    const view = botocoreView(file);
    expect(view.sso_sessions.ferry).toEqual({
      sso_start_url: `https://${identityStoreId}.awsapps.com/start`,
      sso_region: aws.region,
      sso_registration_scopes: 'sso:account:access',
    });
    expect(view.profiles['ferry-sso-account1-readonly']).toEqual({
      sso_session: 'ferry',
      sso_account_id: ACCOUNT,
      sso_role_name: 'ReadOnly',
      region: 'eu-central-1',
    });
    expect(view.profiles['ferry-account1-developer']).toMatchObject({ region: 'eu-central-1' });
    expect(view.profiles['ferry-account1-developer']!.credential_process).toContain('creds');
    expect(view.profiles.default).toEqual({ region: 'eu-west-1' });
    expect(view.profiles.personal).toEqual({ region: 'eu-west-1', output: 'table' });

    // a second run changes nothing
    const again = await ferryCli(['aws', 'config']);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/^[+~-] /m);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('--no-sso removes the sso profiles it wrote (Ferry-issued role credentials only); the rest stays', async () => {
    const res = await ferryCli(['aws', 'config', '--no-sso']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('- sso-session ferry');
    expect(res.stdout).toContain('- ferry-sso-account1-readonly');
    expect(res.stderr).toContain('not written as profiles');
    const view = botocoreView(env.AWS_CONFIG_FILE!);
    expect(view.sso_sessions).toEqual({});
    expect(Object.keys(view.profiles).sort()).toEqual(['default', 'ferry-account1-developer', 'personal']);
    expect(readFileSync(env.AWS_CONFIG_FILE!, 'utf8').startsWith(OWN)).toBe(true);
  });
});
