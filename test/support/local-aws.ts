import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { type LocalAws, startMotoServer } from '../../src/aws/moto-server.js';

export type { LocalAws } from '../../src/aws/moto-server.js';
export { LocalAwsStartFailed, motoAvailable } from '../../src/aws/moto-server.js';

/** A fresh moto for one test file; the caller stops it in afterAll. */
export async function startLocalAws(opts?: Parameters<typeof startMotoServer>[0]): Promise<LocalAws> {
  return startMotoServer(opts);
}

/** An S3 client on that moto (path-style, its test credentials); the caller destroys it. */
export function s3ClientFor(aws: LocalAws): S3Client {
  return new S3Client({
    endpoint: aws.endpoint,
    region: aws.region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
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

export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The AWS CLI's JSON answer ({} for none); a non-zero exit throws with its stderr. */
export async function awsCliJson(
  localAws: Pick<LocalAws, 'endpoint' | 'region'>,
  args: string[],
  credentials?: AwsKeys,
): Promise<Record<string, unknown>> {
  const r = await awsCli(localAws, args, credentials);
  if (r.code !== 0) throw new Error(`aws ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
}

/**
 * Ferry's own IAM user in the local account, allowed exactly what docs/offboarding.md asks for (the
 * per-person deny policies), and an access key for it.
 */
export async function createRevocationUser(
  localAws: Pick<LocalAws, 'endpoint' | 'region'>,
): Promise<AwsKeys> {
  const cli = (args: string[]) => awsCliJson(localAws, args);
  await cli(['iam', 'create-user', '--user-name', 'ferry']);
  const policy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['iam:PutRolePolicy', 'iam:GetRolePolicy', 'iam:DeleteRolePolicy'],
        // moto matches Resource against "*" for IAM actions, so a role-ARN scope can't be shown here.
        Resource: '*',
      },
    ],
  };
  await cli([
    'iam',
    'put-user-policy',
    '--user-name',
    'ferry',
    '--policy-name',
    'FerrySessionRevocation',
    '--policy-document',
    JSON.stringify(policy),
  ]);
  const key = (await cli(['iam', 'create-access-key', '--user-name', 'ferry']))['AccessKey'] as {
    AccessKeyId: string;
    SecretAccessKey: string;
  };
  return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
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
