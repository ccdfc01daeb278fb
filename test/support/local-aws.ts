import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalAws, startMotoServer } from '../../src/aws/moto-server.js';

export type { LocalAws } from '../../src/aws/moto-server.js';
export { LocalAwsStartFailed, motoAvailable } from '../../src/aws/moto-server.js';

/** A fresh moto for one test file; the caller stops it in afterAll. */
export async function startLocalAws(opts?: Parameters<typeof startMotoServer>[0]): Promise<LocalAws> {
  return startMotoServer(opts);
}

export interface AwsCliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const AWS_CLI_TIMEOUT_MS = 60_000;

/**
 * Runs the real AWS CLI against the local AWS, as an independent client of what Ferry did.
 * The developer's own AWS config, profiles and credentials are kept out: every AWS_* variable is dropped and
 * the config files point at empty ones. A non-zero exit is returned, not thrown, so tests can assert on it.
 */
export async function awsCli(
  localAws: Pick<LocalAws, 'endpoint' | 'region'>,
  args: string[],
  /** whose keys sign the requests (moto with IAM enforcement on); dummy keys by default */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): Promise<AwsCliResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-awscli-'));
  try {
    const configFile = join(dir, 'config');
    const credentialsFile = join(dir, 'credentials');
    await writeFile(configFile, '');
    await writeFile(credentialsFile, '');
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      AWS_ACCESS_KEY_ID: credentials?.accessKeyId ?? 'testing',
      AWS_SECRET_ACCESS_KEY: credentials?.secretAccessKey ?? 'testing',
      ...(credentials?.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
      AWS_DEFAULT_REGION: localAws.region,
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const globalArgs = ['--endpoint-url', localAws.endpoint, '--region', localAws.region, '--output', 'json'];
    return await run('aws', [...globalArgs, ...args], env);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<AwsCliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: AWS_CLI_TIMEOUT_MS,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });
}
