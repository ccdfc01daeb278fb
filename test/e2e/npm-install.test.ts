import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoCredentials } from '../../src/app/demo-tenant.js';
import { totpCode } from '../../src/identity/totp.js';
import { freePort } from '../support/process.js';

const REPO = realpathSync(new URL('../..', import.meta.url).pathname);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion with exactly the environment given (nothing inherited). */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; input?: string; timeoutMs?: number },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
    });
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
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** The directory on this machine's PATH that holds `name` (e.g. the AWS CLI), or throws. */
function dirOf(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return dir;
  }
  throw new Error(`${name} is not on PATH`);
}

/**
 * Issue 17's "from `npm pack` to a working `ferry` on PATH": the package is packed by its own
 * prepare (build) and prepack (shrinkwrap) from a copy of the sources, installed with `npm install -g` into a
 * temporary prefix, and the installed package runs the demo and the README's CLI flow. The AWS CLI
 * then runs with a PATH that has no `ferry` on it: credential_process must name it absolutely.
 */
describe('the packed package, installed with npm install -g', () => {
  const work = mkdtempSync(join(tmpdir(), 'ferry-npm-install-'));
  const prefix = join(work, 'prefix');
  const home = join(work, 'home');
  const demoDir = join(work, 'demo');
  const baseEnv: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined &&
        !e[0].startsWith('FERRY_') &&
        !e[0].startsWith('AWS_') &&
        // npm's run variables stay out; the headers folder CI gives for a non-machine Node stays in.
        (!e[0].startsWith('npm_') || e[0] === 'npm_config_nodedir'),
    ),
  );
  let tarball: string;
  let demo: ChildProcess | undefined;
  let demoOutput = '';
  let credentials: DemoCredentials;
  let clientEnv: Record<string, string>;

  beforeAll(async () => {
    // A copy of what the build needs, so packing (which builds) never rewrites the dist/ other tests run.
    const stage = join(work, 'src');
    mkdirSync(stage);
    for (const entry of ['src', 'web', 'bin', 'docs', 'package.json', 'package-lock.json', 'README.md']) {
      cpSync(join(REPO, entry), join(stage, entry), { recursive: true });
    }
    for (const entry of readdirSync(REPO).filter((f) => /^tsconfig.*\.json$/.test(f))) {
      cpSync(join(REPO, entry), join(stage, entry));
    }
    // The checkout's build with its incremental state (dist/.tsbuildinfo): the pack's build still runs
    // and re-emits whatever differs from these sources, without compiling every file again.
    if (existsSync(join(REPO, 'dist', '.tsbuildinfo')))
      cpSync(join(REPO, 'dist'), join(stage, 'dist'), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(stage, 'node_modules'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: stage,
      env: baseEnv,
      timeoutMs: 600_000,
    });
    expect(packed.code, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    tarball = join(work, info!.filename);
    const files = info!.files.map((f) => f.path);
    expect(files).toContain('bin/ferry.js');
    expect(files).toContain('dist/app/main.js');
    // the web console ships built: Ferry serves it without a CDN or a build step on the server
    expect(files).toContain('dist/web/index.html');
    expect(files).toContain('npm-shrinkwrap.json');
    expect(files).not.toContain('dist/.tsbuildinfo');
    expect(files.filter((f) => f.startsWith('src/') || f.endsWith('.test.js'))).toEqual([]);
    expect(existsSync(join(stage, 'npm-shrinkwrap.json'))).toBe(false);

    // better-sqlite3 installs with `prebuild-install || node-gyp rebuild`. Off the network its GitHub
    // download fails and node-gyp compiles SQLite (minutes). Online, users get a prebuilt binary; here the
    // same path is taken from a local prebuild made of the checkout's own build for this Node's ABI:
    // prebuild-install unpacks it into the installed package and require()s it there, or falls back to
    // compiling. Either way the install runs the package's real install script.
    const sqlitePkg = join(REPO, 'node_modules', 'better-sqlite3');
    const sqliteVersion = (
      JSON.parse(readFileSync(join(sqlitePkg, 'package.json'), 'utf8')) as { version: string }
    ).version;
    const prebuilds = join(work, 'prebuilds');
    mkdirSync(prebuilds);
    const prebuild = join(
      prebuilds,
      `better-sqlite3-v${sqliteVersion}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`,
    );
    execFileSync('tar', ['-czf', prebuild, '-C', sqlitePkg, 'build/Release/better_sqlite3.node']);
    const installed = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'],
      {
        cwd: work,
        env: { ...baseEnv, npm_config_better_sqlite3_local_prebuilds: prebuilds },
        timeoutMs: 1_500_000,
      },
    );
    expect(installed.code, installed.stderr).toBe(0);
    const installedSqlite = join(prefix, 'lib', 'node_modules', 'ferry', 'node_modules', 'better-sqlite3');
    expect(existsSync(join(installedSqlite, 'build', 'Release', 'better_sqlite3.node'))).toBe(true);

    // The installed package's demo (moto, SQLite under ./data), from a directory of its own.
    mkdirSync(demoDir);
    const port = await freePort();
    demo = spawn(process.execPath, [join(prefix, 'lib', 'node_modules', 'ferry', 'dist', 'app', 'demo.js')], {
      cwd: demoDir,
      env: { ...baseEnv, FERRY_LISTEN: `127.0.0.1:${port}`, FERRY_PUBLIC_URL: `http://127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout!.on('data', (d) => (demoOutput += d));
    demo.stderr!.on('data', (d) => (demoOutput += d));
    const deadline = Date.now() + 90_000;
    while (!demoOutput.includes('Press Ctrl-C')) {
      if (demo.exitCode !== null || Date.now() > deadline)
        throw new Error(`demo did not start:\n${demoOutput}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    credentials = JSON.parse(readFileSync(join(demoDir, 'data', 'demo-credentials.json'), 'utf8'));
    mkdirSync(home);
    clientEnv = {
      ...baseEnv,
      HOME: home,
      // The prefix's bin first: `ferry` is found there, as after `npm install -g`.
      PATH: [join(prefix, 'bin'), ...(baseEnv.PATH ?? '').split(delimiter)].join(delimiter),
      FERRY_CONFIG_DIR: join(home, '.config', 'ferry'),
      AWS_CONFIG_FILE: join(home, '.aws', 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, '.aws', 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }, 2_400_000);

  afterAll(async () => {
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once('exit', r));
      demo.kill('SIGTERM');
      // The demo stops Ferry and its moto on SIGTERM; a SIGKILL would leave moto behind.
      await Promise.race([exited, new Promise((r) => setTimeout(r, 90_000))]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    rmSync(work, { recursive: true, force: true });
  }, 180_000);

  it('puts a working ferry on PATH that runs from any directory', async () => {
    const ferry = join(prefix, 'bin', 'ferry');
    expect(existsSync(ferry)).toBe(true);
    const version = await run('ferry', ['--version'], { cwd: home, env: clientEnv });
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    const help = await run('ferry', ['--help'], { cwd: tmpdir(), env: clientEnv });
    expect(help.stdout).toContain('creds');
  }, 60_000);

  it('signs in, writes AWS profiles, and the AWS CLI gets credentials with no ferry on its PATH', async () => {
    const dev = credentials.users.find((u) => u.displayName === 'Test-AWSDeveloper')!;
    const login = await run('ferry', ['login', '--server', credentials.ferryUrl, '--user', dev.userName], {
      cwd: home,
      env: clientEnv,
      input: `${dev.password}\n${totpCode(dev.totpSecret, new Date())}\n`,
    });
    expect(login.code, login.stderr).toBe(0);
    const config = await run('ferry', ['aws', 'config'], { cwd: home, env: clientEnv });
    expect(config.code, config.stderr).toBe(0);
    expect(config.stdout).toContain('+ ferry-account1-developer');

    const written = readFileSync(clientEnv.AWS_CONFIG_FILE!, 'utf8');
    const installedScript = realpathSync(join(prefix, 'lib', 'node_modules', 'ferry', 'bin', 'ferry.js'));
    expect(written).toContain(`credential_process = ${process.execPath} ${installedScript} creds `);

    // Only the AWS CLI's own directory and the system's: no prefix/bin, so a bare `ferry` would fail.
    const awsPath = [dirOf('aws'), '/usr/bin', '/bin'].join(delimiter);
    for (const dir of awsPath.split(delimiter)) expect(existsSync(join(dir, 'ferry'))).toBe(false);
    const identity = await run(
      'aws',
      ['sts', 'get-caller-identity', '--profile', 'ferry-account1-developer', '--output', 'json'],
      { cwd: dirname(home), env: { ...clientEnv, PATH: awsPath }, timeoutMs: 90_000 },
    );
    expect(identity.code, identity.stderr).toBe(0);
    const arn = (JSON.parse(identity.stdout) as { Arn: string }).Arn;
    expect(arn).toMatch(/^arn:aws:sts::123456789012:assumed-role\/Developer\//);
    expect(
      execFileSync('sh', ['-c', 'command -v ferry || true'], { env: { PATH: awsPath } }).toString(),
    ).toBe('');
    // Four CLI processes (login, aws config, the AWS CLI and its credential_process): seconds each when loaded.
  }, 180_000);
});
