import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { credentialsFor, type IssuedCredentials, type RoleTarget, resolveRole } from './aws-commands.js';
import { UsageError } from './context.js';
import { joinInert, note, out, t } from './output.js';

/** The variables `ferry exec` sets and `ferry env` prints, in that order. */
export function awsEnvironment(c: IssuedCredentials, target: RoleTarget): Array<[string, string]> {
  return [
    ['AWS_ACCESS_KEY_ID', c.accessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.secretAccessKey],
    ['AWS_SESSION_TOKEN', c.sessionToken],
    ['AWS_CREDENTIAL_EXPIRATION', c.expiration],
    ...(target.region
      ? ([
          ['AWS_REGION', target.region],
          ['AWS_DEFAULT_REGION', target.region],
        ] as Array<[string, string]>)
      : []),
    ...(target.endpointUrl ? ([['AWS_ENDPOINT_URL', target.endpointUrl]] as Array<[string, string]>) : []),
  ];
}

/**
 * A profile chosen in the environment wins over keys in it for the AWS CLI and SDKs: a command run
 * by `ferry exec` must use the keys it was given, so these are removed (and `ferry env` unsets them).
 */
const SHADOWING = ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE'];

/** A POSIX shell word: single quotes keep everything literal; a quote is closed, escaped, reopened. */
export const posixQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
/** A fish word: inside single quotes fish gives meaning only to \\ and \'. */
export const fishQuote = (value: string): string => `'${value.replace(/[\\']/g, '\\$&')}'`;

async function credentialsAndTarget(cmd: Command, spec: string, cache: boolean) {
  const target = await resolveRole(cmd, spec);
  const creds = await credentialsFor(cmd, target.account, target.role, { cache });
  return { target, creds };
}

export function registerExecCommands(program: Command): void {
  program
    .command('exec <profile-or-role> [command...]')
    .description(
      'run one command with short-lived AWS credentials for a role in its environment (ferry exec ferry-account1-developer -- aws s3 ls)',
    )
    .option('--no-cache', 'always ask the server (the cache is used until 5 minutes before expiry)')
    .action(async function (this: Command, spec: string, command: string[], opts: { cache: boolean }) {
      if (command.length === 0) {
        throw new UsageError('name the command to run after --, e.g. ferry exec PROFILE -- aws s3 ls');
      }
      const { target, creds } = await credentialsAndTarget(this, spec, opts.cache);
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const name of SHADOWING) delete env[name];
      for (const [name, value] of awsEnvironment(creds, target)) env[name] = value;
      process.exitCode = await run(command, env);
    });

  program
    .command('env <profile-or-role>')
    .description(
      'print shell lines that export a role\'s short-lived AWS credentials (eval "$(ferry env P)")',
    )
    .option('--fish', 'fish syntax (set -gx) instead of POSIX sh')
    .option('--no-cache', 'always ask the server (the cache is used until 5 minutes before expiry)')
    .action(async function (this: Command, spec: string, opts: { fish?: boolean; cache: boolean }) {
      const { target, creds } = await credentialsAndTarget(this, spec, opts.cache);
      const set = awsEnvironment(creds, target).map(([name, value]) =>
        opts.fish ? t`set -gx ${name} ${fishQuote(value)};\n` : t`export ${name}=${posixQuote(value)}\n`,
      );
      const unset = SHADOWING.map((name) => (opts.fish ? t`set -e ${name};\n` : t`unset ${name}\n`));
      out(joinInert([...unset, ...set]));
    });
}

/**
 * Runs the command with the terminal's standard streams and returns its exit status (128 + n when
 * a signal ended it, as a shell reports). Ctrl-C reaches the command through the terminal; ferry
 * waits for it rather than dying first, and passes on a TERM or HUP sent to ferry alone.
 */
function run(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: 'inherit' });
    const ignore = () => {};
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    process.on('SIGHUP', forward);
    const done = (code: number) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      process.off('SIGHUP', forward);
      resolve(code);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'command not found' : (err.code ?? err.message);
      note(t`ferry: cannot run ${file}: ${why}\n`);
      done(err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 1);
    });
    child.once('exit', (code, signal) => {
      done(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}
