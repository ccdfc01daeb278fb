import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';
import { FERRY_BIN, runFerry } from '../support/process.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'e2e' } };
const ACCOUNT = '123456789012';
const DEVELOPER = 'test-feel@contoso.example';
const PASSWORD = 'correct-horse-battery-42';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A shell line (bash -c) with `ferry` on PATH as the real built CLI and no AWS keys anywhere. */
function sh(script: string, env: Record<string, string>, timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('FERRY_')),
    );
    const child = spawn(
      'bash',
      ['-c', `ferry() { ${JSON.stringify(process.execPath)} ${JSON.stringify(FERRY_BIN)} "$@"; }\n${script}`],
      {
        env: { ...inherited, ...env, AWS_EC2_METADATA_DISABLED: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
      },
    );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
  });
}

/** `ferry exec`, `ferry env`, `ferry console --profile`, completion and error polish, with the real CLI. */
describe('a CLI that feels like aws-vault, Granted and tsh', () => {
  let aws: LocalAws;
  let ferry: TestFerry;
  let home: string;
  let env: Record<string, string>;

  const ferryCli = (args: string[], input?: string, as: Record<string, string> = env) =>
    runFerry(['--server', ferry.url, ...args], { cwd: home, env: as, input, timeoutMs: 60_000 });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'ferry-e2e-feel-'));
    [aws, ferry] = await Promise.all([
      startLocalAws(),
      startTestFerry('sqlite', { config: { signin: { requireMfa: false } } }),
    ]);
    await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
    const s = ferry.services;
    await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1', endpointUrl: aws.endpoint });
    await s.accounts.upsertRole(ctx, ACCOUNT, { name: 'Developer', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const user = await s.users.create(ctx, { userName: DEVELOPER, password: PASSWORD });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.assignments.add(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      ACCOUNT,
      'Developer',
    );
    const metadata = await (await fetch(`${ferry.url}/saml/metadata`)).text();
    await setupSamlAccount({
      endpoint: aws.endpoint,
      region: aws.region,
      accountId: ACCOUNT,
      partition: 'aws',
      providerName: 'Ferry',
      metadataXml: metadata,
      roles: [{ name: 'Developer' }],
    });
    const configFile = join(home, 'aws-config');
    writeFileSync(configFile, '');
    env = {
      HOME: home,
      FERRY_CONFIG_DIR: join(home, 'ferry'),
      FERRY_SERVER: ferry.url,
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    };
    const login = await ferryCli(['login', '--user', DEVELOPER], `${PASSWORD}\n`);
    expect(login.stderr + login.stdout).toContain(DEVELOPER);
    expect(login.code).toBe(0);
    expect((await ferryCli(['aws', 'config', '--region', 'eu-central-1'])).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await ferry?.close();
    await aws?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('ferry exec runs one command with the role in its environment, by profile name or ACCOUNT/ROLE', async () => {
    for (const spec of ['ferry-account1-developer', 'Account1/Developer', `${ACCOUNT}/developer`]) {
      const res = await sh(
        `ferry exec ${spec} -- aws sts get-caller-identity --output json; echo "region=$AWS_REGION"`,
        { ...env, AWS_PROFILE: 'personal-that-does-not-exist' },
      );
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const arn = (JSON.parse(res.stdout.slice(0, res.stdout.lastIndexOf('}') + 1)) as { Arn: string }).Arn;
      expect(arn).toMatch(new RegExp(`^arn:aws:sts::${ACCOUNT}:assumed-role/Developer/`));
      // the command's environment only: the shell that ran ferry has no region of its own
      expect(res.stdout).toContain('region=\n');
    }
    const seen = await sh(
      `ferry exec ferry-account1-developer -- sh -c 'echo "$AWS_REGION $AWS_ENDPOINT_URL \${AWS_PROFILE-unset} \${#AWS_SESSION_TOKEN}"'`,
      { ...env, AWS_PROFILE: 'other' },
    );
    const [region, endpoint, profile, tokenLength] = seen.stdout.trim().split(' ');
    expect([region, endpoint, profile]).toEqual(['eu-central-1', aws.endpoint, 'unset']);
    expect(Number(tokenLength)).toBeGreaterThan(20);
  }, 120_000);

  it('ferry exec passes standard input through and exits with the command’s status (signal: 128+n)', async () => {
    const piped = await sh(`echo hello | ferry exec ferry-account1-developer -- tr a-z A-Z`, env);
    expect(piped).toMatchObject({ code: 0, stdout: 'HELLO\n' });
    const status = await sh(`ferry exec ferry-account1-developer -- sh -c 'echo oops >&2; exit 7'`, env);
    expect(status).toMatchObject({ code: 7, stderr: 'oops\n' });
    const killed = await sh(`ferry exec ferry-account1-developer -- sh -c 'kill -TERM $$'`, env);
    expect(killed.code).toBe(128 + 15);
    const missing = await sh(`ferry exec ferry-account1-developer -- no-such-command-here`, env);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('no-such-command-here: command not found');
    const noCommand = await sh(`ferry exec ferry-account1-developer`, env);
    expect(noCommand.code).toBe(2);
    const unknown = await sh(`ferry exec ferry-nope-admin -- true`, env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('ferry-account1-developer');
  }, 120_000);

  it('ferry env prints export lines a shell evaluates, and fish lines with --fish', async () => {
    const res = await sh(
      `eval "$(ferry env ferry-account1-developer)"; aws sts get-caller-identity --output json`,
      env,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as { Arn: string }).Arn).toContain(':assumed-role/Developer/');
    const printed = await ferryCli(['env', 'Account1/Developer']);
    expect(printed.stdout).toMatch(
      /^unset AWS_PROFILE\nunset AWS_DEFAULT_PROFILE\nexport AWS_ACCESS_KEY_ID='[^']+'\n/,
    );
    expect(printed.stdout).toContain(`export AWS_ENDPOINT_URL='${aws.endpoint}'\n`);
    const fish = await ferryCli(['env', '--fish', 'ferry-account1-developer']);
    expect(fish.stdout).toMatch(/^set -e AWS_PROFILE;\n/m);
    expect(fish.stdout).toMatch(/^set -gx AWS_SESSION_TOKEN '[^']+';$/m);
    expect(fish.stdout).toContain("set -gx AWS_REGION 'eu-central-1';\n");
  }, 120_000);

  it('ferry console --profile opens the console for that profile’s role', async () => {
    const res = await ferryCli(['console', '--profile', 'ferry-account1-developer', '--print']);
    expect(res).toMatchObject({
      code: 0,
      stdout: `${ferry.url}/apps/aws-console?account=${ACCOUNT}&role=Developer\n`,
    });
    const both = await ferryCli([
      'console',
      '--profile',
      'ferry-account1-developer',
      '--role',
      'X',
      '--print',
    ]);
    expect(both.code).toBe(2);
  }, 60_000);

  it('ferry completion bash prints a script bash loads, completing commands, subcommands and options from the program', async () => {
    const script = join(home, 'ferry.bash');
    const res = await sh(
      `ferry completion bash > ${script} && bash -n ${script} && source ${script} && complete -p ferry
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _ferry; echo "\${COMPREPLY[*]}"; }
complete_words ferry ex
complete_words ferry aws co
complete_words ferry --server http://x users list --j
complete_words ferry console --p
complete_words ferry exec ferry-account1-developer -- a`,
      env,
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.split('\n')).toEqual([
      'complete -o default -F _ferry ferry',
      'exec',
      'config',
      '--json',
      '--profile --print',
      '',
      '',
    ]);
    for (const shell of ['zsh', 'fish']) {
      const printed = await ferryCli(['completion', shell]);
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain(
        shell === 'zsh'
          ? 'complete -o default -F _ferry ferry'
          : "complete -c ferry -n '__ferry_at ferry aws' -a config",
      );
    }
    expect((await ferryCli(['completion', 'csh'])).code).toBe(2);
  }, 60_000);
});
