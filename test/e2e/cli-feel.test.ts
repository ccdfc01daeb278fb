import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditContext } from '../../src/audit/actor.js';
import { ensureDemoAwsAccount } from '../../src/aws/demo-account.js';
import { setupSamlAccount } from '../../src/aws/saml-setup.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';
import { FERRY_BIN, freePort, runFerry } from '../support/process.js';

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
          ? 'complete -o default -F _ferry_bash ferry'
          : "complete -c ferry -n '__ferry_at ferry aws' -a config",
      );
    }
    expect((await ferryCli(['completion', 'csh'])).code).toBe(2);
  }, 60_000);

  it('an unreachable server names the URL, the reason and what to do', async () => {
    const port = await freePort();
    const refused = await runFerry(['--server', `http://127.0.0.1:${port}`, 'users', 'list'], {
      cwd: home,
      env,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `cannot reach Ferry at http://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    );
    expect(refused.stderr).toContain('ferry serve');
    const dns = await runFerry(['--server', 'http://ferry.invalid', 'users', 'list'], { cwd: home, env });
    expect(dns.code).toBe(1);
    expect(dns.stderr).toMatch(
      /cannot reach Ferry at http:\/\/ferry\.invalid: the name ferry\.invalid does not resolve \(DNS (ENOTFOUND|EAI_AGAIN)\)/,
    );
    const plain = await runFerry(['--server', ferry.url.replace('http:', 'https:'), 'users', 'list'], {
      cwd: home,
      env,
    });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('does not speak TLS');
    // a server whose certificate no one here trusts
    const dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-feel-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const server = createTlsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => res.end('{}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const untrusted = await runFerry(['--server', url, 'users', 'list'], { cwd: home, env });
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr).toContain(`cannot reach Ferry at ${url}: TLS failed`);
      expect(untrusted.stderr).toContain('NODE_EXTRA_CA_CERTS');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('signed out, a command says the exact ferry login command; usage errors exit 2', async () => {
    const signedOut = { ...env, FERRY_CONFIG_DIR: join(home, 'nobody') };
    const res = await sh(`ferry exec ferry-account1-developer -- true`, signedOut);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`run \`ferry login --server ${ferry.url}\``);
    expect((await ferryCli(['users', 'list', '--no-such-option'])).code).toBe(2);
    expect(
      (await ferryCli(['creds', '--account', ACCOUNT, '--role', 'Developer', '--format', 'xml'])).code,
    ).toBe(2);
    expect((await ferryCli(['audit', 'export', '--since', 'yesterday'])).code).toBe(2);
  }, 60_000);

  it('a broken pipe ends the command quietly with status 0', async () => {
    const admin = { ...env, FERRY_TOKEN: ferry.adminToken };
    // more than a pipe holds (64 KiB), so the writes after `head` has gone meet EPIPE
    for (let i = 0; i < 600; i++) {
      await ferry.services.users.create(ctx, {
        userName: `pipe-${i}-${'x'.repeat(60)}@contoso.example`,
        displayName: 'y'.repeat(80),
      });
    }
    const list = await sh(`ferry users list | head -1; echo "status=\${PIPESTATUS[0]}"`, admin);
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(/^USERNAME +DISPLAYNAME.*\nstatus=0\n$/);
    const tail = spawn(
      'bash',
      [
        '-c',
        `${JSON.stringify(process.execPath)} ${JSON.stringify(FERRY_BIN)} audit tail -f -n 1 | head -1; echo "status=\${PIPESTATUS[0]}"`,
      ],
      {
        env: { PATH: process.env.PATH ?? '', ...admin },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    tail.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    tail.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => tail.once('close', resolve));
    await vi.waitFor(() => expect(stdout).toContain('\n'), { timeout: 20_000 });
    // head has gone; the next event ferry prints meets the closed pipe
    await vi.waitFor(
      async () => {
        await ferry.services.users.create(ctx, { userName: `after-${Date.now()}@contoso.example` });
        expect(stdout).toContain('status=');
      },
      { timeout: 20_000, interval: 1500 },
    );
    expect(await closed).toBe(0);
    expect(stdout).toMatch(/status=0\n$/);
    expect(stderr).toBe('');
  }, 120_000);

  it('ferry whoami tells the access token from the sign-in, and says when the sign-in is over', async () => {
    const active = await ferryCli(['whoami']);
    expect(active.code).toBe(0);
    expect(active.stdout).toMatch(/Access token: +valid until \S+ \(\d+ min left\)/);
    expect(active.stdout).toContain('Sign-in:       active; the access token is renewed automatically');
    const copy = (name: string, edit: (login: Record<string, unknown>) => void) => {
      const dir = join(home, name);
      cpSync(env.FERRY_CONFIG_DIR!, dir, { recursive: true });
      const file = join(dir, 'logins', readdirSync(join(dir, 'logins')).find((f) => f.endsWith('.json'))!);
      const login = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      edit(login);
      writeFileSync(file, JSON.stringify(login));
      return { ...env, FERRY_CONFIG_DIR: dir };
    };
    // the access token has run out but the sign-in lasts: whoami renews it, as any command would
    const renewable = copy('renewable', (l) => (l.accessTokenExpiresAt = Date.now() - 1000));
    const renewed = await ferryCli(['whoami', '--json'], undefined, renewable);
    expect(renewed.code).toBe(0);
    expect(JSON.parse(renewed.stdout)).toMatchObject({ accessTokenExpired: false, signedIn: true });
    // no refresh token and the access token gone: the sign-in is over
    const over = copy('over', (l) => {
      l.accessTokenExpiresAt = Date.now() - 1000;
      l.refreshToken = null;
    });
    const expired = await ferryCli(['whoami'], undefined, over);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toContain(`Sign-in:       expired — run \`ferry login --server ${ferry.url}\``);
    // the server refuses the refresh token (revoked, or the sign-in ended): the same truth
    const revoked = copy('revoked', (l) => {
      l.accessTokenExpiresAt = Date.now() - 1000;
      l.refreshToken = 'not-a-refresh-token';
    });
    const refused = await ferryCli(['whoami', '--json'], undefined, revoked);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ accessTokenExpired: true, signedIn: false });
  }, 60_000);
});
