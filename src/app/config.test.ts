import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWASP_ARGON2ID } from '../identity/passwords.js';
import { ConfigInvalid, loadConfig } from './config.js';
import { loadMasterKey } from './master-key.js';

const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-config-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
/** Writes a config file in a folder of its own and returns its path. */
function configFile(text: string): string {
  const folder = join(dir, `c${++files}`);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, 'ferry.yaml');
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigInvalid {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalid);
    return err as ConfigInvalid;
  }
  throw new Error('expected ConfigInvalid, nothing was thrown');
}

/** The environment without any FERRY_* variable of the developer's shell. */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));

function ferryCli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [FERRY_BIN, ...args],
      { cwd, env: cleanEnv(), timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('loadConfig', () => {
  it('uses the defaults when there is no file', () => {
    const cwd = process.cwd();
    const empty = mkdtempSync(join(dir, 'empty-'));
    process.chdir(empty);
    try {
      const { config, path } = loadConfig(undefined, {});
      expect(path).toBeNull();
      expect(config).toMatchObject({
        listen: '127.0.0.1:7070',
        publicUrl: 'http://127.0.0.1:7070',
        database: { url: `sqlite:${join(process.cwd(), 'data', 'ferry.db')}`, poolSize: 10 },
        sessions: { idleTimeout: 30 * 60_000, absoluteTimeout: 12 * 3_600_000, cookieName: 'ferry_session' },
        signin: {
          requireMfa: true,
          accountMaxFailures: 5,
          addressMaxFailures: 20,
          failureWindow: 15 * 60_000,
          lockout: 15 * 60_000,
        },
        passwords: OWASP_ARGON2ID,
        http: { bodyLimit: 1024 * 1024, trustProxy: false },
        log: { level: 'info' },
      });
      expect(config.keys.masterKey).toBeUndefined();
    } finally {
      process.chdir(cwd);
    }
  });

  it('reads ./ferry.yaml, then FERRY_CONFIG, then --config', () => {
    const fromCwd = configFile('listen: 127.0.0.1:1001\n');
    const fromEnv = configFile('listen: 127.0.0.1:1002\n');
    const explicit = configFile('listen: 127.0.0.1:1003\n');
    const cwd = process.cwd();
    process.chdir(join(fromCwd, '..'));
    try {
      expect(loadConfig(undefined, {}).config.listen).toBe('127.0.0.1:1001');
      expect(loadConfig(undefined, { FERRY_CONFIG: fromEnv }).config.listen).toBe('127.0.0.1:1002');
      expect(loadConfig(explicit, { FERRY_CONFIG: fromEnv }).config.listen).toBe('127.0.0.1:1003');
    } finally {
      process.chdir(cwd);
    }
  });

  it('reads values from a YAML file', () => {
    const path = configFile(`
listen: 0.0.0.0:8443
publicUrl: https://ferry.contoso.example
database:
  url: postgres://ferry@db.internal:5432/ferry
  poolSize: 25
sessions:
  idleTimeout: 10m
  absoluteTimeout: 8h
  cookieName: contoso_ferry
signin:
  requireMfa: false
  accountMaxFailures: 3
  failureWindow: 1h30m
passwords:
  memoryKiB: 65536
  iterations: 3
http:
  bodyLimit: 4096
  trustProxy: [10.0.0.0/8]
log:
  level: warn
`);
    const { config, path: loadedFrom } = loadConfig(path, {});
    expect(loadedFrom).toBe(path);
    expect(config).toMatchObject({
      listen: '0.0.0.0:8443',
      publicUrl: 'https://ferry.contoso.example',
      database: { url: 'postgres://ferry@db.internal:5432/ferry', poolSize: 25 },
      sessions: { idleTimeout: 600_000, absoluteTimeout: 8 * 3_600_000, cookieName: 'contoso_ferry' },
      signin: { requireMfa: false, accountMaxFailures: 3, addressMaxFailures: 20, failureWindow: 5_400_000 },
      passwords: { memoryKiB: 65536, iterations: 3, parallelism: 1 },
      http: { bodyLimit: 4096, trustProxy: ['10.0.0.0/8'] },
      log: { level: 'warn' },
    });
  });

  it('lets environment variables override the file', () => {
    const path = configFile(`
listen: 127.0.0.1:7070
publicUrl: http://127.0.0.1:7070
database:
  url: sqlite:./data/ferry.db
keys:
  masterKey: from-the-file
signin:
  requireMfa: true
`);
    const masterKey = randomBytes(32).toString('base64');
    const { config } = loadConfig(path, {
      FERRY_DATABASE_URL: 'postgres://ferry@10.1.2.3:5432/ferry',
      FERRY_LISTEN: '0.0.0.0:9000',
      FERRY_PUBLIC_URL: 'https://ferry.contoso.example',
      FERRY_MASTER_KEY: masterKey,
      FERRY_REQUIRE_MFA: 'false',
      FERRY_LOG_LEVEL: 'debug',
    });
    expect(config.database.url).toBe('postgres://ferry@10.1.2.3:5432/ferry');
    expect(config.listen).toBe('0.0.0.0:9000');
    expect(config.publicUrl).toBe('https://ferry.contoso.example');
    expect(config.keys.masterKey).toBe(masterKey);
    expect(config.signin.requireMfa).toBe(false);
    expect(config.log.level).toBe('debug');
    // An empty variable is ignored rather than blanking the file's value.
    expect(loadConfig(path, { FERRY_LISTEN: '' }).config.listen).toBe('127.0.0.1:7070');
  });

  it('resolves relative paths against the config file, not the working directory', () => {
    const path = configFile(
      'database:\n  url: sqlite:./data/ferry.db\nkeys:\n  masterKeyFile: secrets/master.key\n',
    );
    const folder = join(path, '..');
    const { config } = loadConfig(path, {});
    expect(config.database.url).toBe(`sqlite:${join(folder, 'data', 'ferry.db')}`);
    expect(config.keys.masterKeyFile).toBe(join(folder, 'secrets', 'master.key'));
    const absolute = configFile('database:\n  url: sqlite:/var/lib/ferry/ferry.db\n');
    expect(loadConfig(absolute, {}).config.database.url).toBe('sqlite:/var/lib/ferry/ferry.db');
    const memory = configFile('database:\n  url: "sqlite::memory:"\n');
    expect(loadConfig(memory, {}).config.database.url).toBe('sqlite::memory:');
  });

  it.each([
    ['an unknown top-level key', 'listen: 127.0.0.1:7070\ncolour: blue\n', '', /unknown key colour/],
    ['an unknown nested key', 'sessions:\n  idleTimeot: 30m\n', 'sessions', /unknown key idleTimeot/],
    ['a bad duration', 'sessions:\n  idleTimeout: soon\n', 'sessions.idleTimeout', /duration.*"soon"/],
    ['a bad listen address', 'listen: localhost\n', 'listen', /host:port/],
    ['a memory cost below OWASP', 'passwords:\n  memoryKiB: 4096\n', 'passwords.memoryKiB', /OWASP/],
    ['a wrong type', 'signin:\n  accountMaxFailures: many\n', 'signin.accountMaxFailures', /number/],
    ['a non-http public URL', 'publicUrl: ftp://ferry.example\n', 'publicUrl', /http/],
    ['an unknown database', 'database:\n  url: mysql://x\n', 'database.url', /sqlite|postgres/],
    ['a list instead of a mapping', '- listen\n- 127.0.0.1:7070\n', '', /mapping/],
    ['a scalar instead of a mapping', 'just some text\n', '', /mapping/],
    ['invalid YAML', 'listen: [127.0.0.1:7070\nsessions: {\n', '', /YAML/],
  ])('rejects %s, naming the key', (_, text, key, reason) => {
    const path = configFile(text);
    const err = configError(() => loadConfig(path, {}));
    expect(err.key).toBe(key);
    expect(err.message).toContain(path);
    if (key) expect(err.message).toContain(`${key}:`);
    expect(err.message).toMatch(reason);
  });

  it('rejects a file it cannot read, naming the file', () => {
    const missing = join(dir, 'no-such-folder', 'ferry.yaml');
    const err = configError(() => loadConfig(missing, {}));
    expect(err.message).toContain(missing);
    expect(err.message).toMatch(/cannot read.*ENOENT/);
    const folder = mkdtempSync(join(dir, 'a-folder-'));
    expect(configError(() => loadConfig(folder, {})).message).toMatch(/cannot read.*EISDIR/);
  });

  it('rejects a bad value from the environment, naming the variable and the key', () => {
    const err = configError(() => loadConfig(configFile('{}\n'), { FERRY_LISTEN: 'nowhere' }));
    expect(err.key).toBe('listen');
    expect(err.message).toContain('environment variable FERRY_LISTEN');
  });

  it('reads FERRY_REQUIRE_MFA as a boolean and refuses anything else', () => {
    expect(loadConfig(undefined, { FERRY_REQUIRE_MFA: 'no' }).config.signin.requireMfa).toBe(false);
    expect(loadConfig(undefined, { FERRY_REQUIRE_MFA: 'yes' }).config.signin.requireMfa).toBe(true);
    expect(loadConfig(undefined, { FERRY_REQUIRE_MFA: '0' }).config.signin.requireMfa).toBe(false);
    const err = configError(() => loadConfig(undefined, { FERRY_REQUIRE_MFA: 'maybe' }));
    expect(err.key).toBe('signin.requireMfa');
    expect(err.message).toContain('FERRY_REQUIRE_MFA');
  });
});

describe('the ferry command', () => {
  it('refuses to serve with a bad config: exit status 2 and the key on stderr', async () => {
    const path = configFile('sessions:\n  idleTimeot: 30m\n');
    const result = await ferryCli(['serve', '--config', path], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('idleTimeot');
    expect(result.stderr).toContain(path);
    expect(result.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace

    const duration = await ferryCli(
      ['serve', '--config', configFile('sessions:\n  idleTimeout: soon\n')],
      dir,
    );
    expect(duration.code).toBe(2);
    expect(duration.stderr).toContain('sessions.idleTimeout');
  });

  it('refuses to serve without a master key: exit status 2 naming the key', async () => {
    const result = await ferryCli(['serve', '--config', configFile('listen: 127.0.0.1:0\n')], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keys.masterKey');
  });

  it('init writes a config loadConfig accepts and a private master key; a second init refuses', async () => {
    const home = mkdtempSync(join(dir, 'init-'));
    const first = await ferryCli(['init'], home);
    expect(first.code, first.stderr).toBe(0);
    const path = join(home, 'ferry.yaml');
    const written = readFileSync(path, 'utf8');

    const { config } = loadConfig(path, {});
    expect(config.database.url).toBe(`sqlite:${join(home, 'data', 'ferry.db')}`);
    const keyFile = join(home, 'data', 'master.key');
    expect(config.keys.masterKeyFile).toBe(keyFile);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(path).mode & 0o007).toBe(0); // not readable by everyone
    expect(() => loadMasterKey(config, path)).not.toThrow();
    const key = readFileSync(keyFile, 'utf8');

    const second = await ferryCli(['init'], home);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/exists.*--force/);
    expect(readFileSync(path, 'utf8')).toBe(written);
    expect(readFileSync(keyFile, 'utf8')).toBe(key);

    // --force rewrites the config but never replaces an existing master key
    const forced = await ferryCli(['init', '--force'], home);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(keyFile, 'utf8')).toBe(key);
  });
});
