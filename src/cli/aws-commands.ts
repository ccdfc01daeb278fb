import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../duration.js';
import { applyProfiles, type ManagedProfile, profileSetting, SSO_SESSION } from './aws-config-file.js';
import { openBrowser } from './browser.js';
import { readJson, writePrivateJson } from './config-dir.js';
import { callerClientOf, serverOf, UsageError } from './context.js';
import { credentialsDir } from './login-session.js';
import { type Inert, json, note, out, printJson, t, table } from './output.js';

/** As the server answers POST /api/v1/aws/credentials. */
export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  accountId: string;
  accountAlias: string;
  roleName: string;
  roleArn: string;
  assumedRoleArn: string;
  sourceIdentity: string;
  durationSeconds: number;
}

export interface Entitlement {
  accountId: string;
  accountAlias: string;
  roleName: string;
  roleArn: string;
  target: string;
  maxDurationSeconds: number;
  endpointUrl: string | null;
  profile: string;
}

/** Cached credentials are used until this long before they expire (then fetched anew). */
export const CREDENTIALS_REFRESH_MARGIN_MS = 5 * 60_000;

const cacheFile = (server: string, account: string, role: string) => {
  // A workload's cache is tied to its secret too: a rotated or wrong secret never reads old credentials.
  const secret = process.env.FERRY_CLIENT_SECRET ?? '';
  const who = process.env.FERRY_CLIENT_ID
    ? `workload-${process.env.FERRY_CLIENT_ID}-${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`
    : 'user';
  const safe = (s: string) => s.toLowerCase().replace(/[^\w.-]/g, '_');
  return join(credentialsDir(server), who, `${safe(account)}-${safe(role)}.json`);
};

function render(c: IssuedCredentials, format: string): Inert {
  switch (format) {
    case 'credential_process':
      // https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html
      return t`${json({
        Version: 1,
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        SessionToken: c.sessionToken,
        Expiration: c.expiration,
      })}\n`;
    case 'env':
      return t`export AWS_ACCESS_KEY_ID=${c.accessKeyId}
export AWS_SECRET_ACCESS_KEY=${c.secretAccessKey}
export AWS_SESSION_TOKEN=${c.sessionToken}
export AWS_CREDENTIAL_EXPIRATION=${c.expiration}
`;
    default:
      return t`${json(c, 2)}\n`;
  }
}

/**
 * The command line that runs this same ferry: the absolute paths of this node binary and of the ferry
 * script being run (symlinks such as node_modules/.bin/ferry resolved). The AWS CLI and SDKs run
 * credential_process without a shell and with their own PATH, so a bare `ferry` fails for anyone who
 * ran `npx ferry` in a checkout or whose PATH differs in the IDE (issue 17).
 */
export function ferryCommand(
  node: string = process.execPath,
  script: string = process.argv[1] ? realpathSync(process.argv[1]) : '',
  platform: NodeJS.Platform = process.platform,
): string {
  return `${shellWord(node, platform)} ${shellWord(script, platform)}`;
}

/**
 * One word as the AWS CLI splits credential_process: POSIX shell rules (botocore's shlex.split), so
 * single quotes keep everything literal; on Windows, double quotes (no quote can occur in a path).
 */
export function shellWord(word: string, platform: NodeJS.Platform = process.platform): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  if (platform === 'win32') return `"${word}"`;
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

/**
 * Credentials for one role, from the cache while they have more than CREDENTIALS_REFRESH_MARGIN_MS
 * left, else from the server (and cached): what `ferry creds`, `ferry exec` and `ferry env` print.
 */
export async function credentialsFor(
  cmd: Command,
  account: string,
  role: string,
  opts: { cache: boolean; durationSeconds?: number },
): Promise<IssuedCredentials> {
  const server = serverOf(cmd);
  const file = cacheFile(server, account, role);
  const cached = opts.cache ? readJson<IssuedCredentials>(file) : null;
  if (cached && Date.parse(cached.expiration) - Date.now() > CREDENTIALS_REFRESH_MARGIN_MS) return cached;
  const issued = await callerClientOf(cmd).request<IssuedCredentials>('POST', '/api/v1/aws/credentials', {
    account,
    role,
    ...(opts.durationSeconds ? { durationSeconds: opts.durationSeconds } : {}),
  });
  writePrivateJson(file, issued);
  return issued;
}

/** The AWS config file `ferry aws config` writes to. */
export const awsConfigFile = (): string => process.env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config');

/** One role named the way a person names it, with what the server and the AWS config file know of it. */
export interface RoleTarget {
  account: string;
  role: string;
  /** the account's local AWS endpoint (moto, LocalStack), as `ferry aws config` writes endpoint_url */
  endpointUrl: string | null;
  /** the region of its profile in the AWS config file, if it has one */
  region: string | null;
}

/**
 * `ferry-<alias>-<role>` (a profile name as `ferry aws config` writes it) or `account/role` (as
 * `ferry creds --account --role` takes them), matched against the roles the server says you have.
 */
export async function resolveRole(cmd: Command, spec: string): Promise<RoleTarget> {
  const { items } = await callerClientOf(cmd).get<{ items: Entitlement[] }>('/api/v1/aws/entitlements');
  const slash = spec.indexOf('/');
  let found: Entitlement | undefined;
  let account: string;
  let role: string;
  if (slash > 0 && slash < spec.length - 1) {
    account = spec.slice(0, slash);
    role = spec.slice(slash + 1);
    const lower = (s: string) => s.toLowerCase();
    found = items.find(
      (e) =>
        (e.accountId === account || lower(e.accountAlias) === lower(account)) &&
        lower(e.roleName) === lower(role),
    );
  } else {
    found = items.find((e) => e.profile === spec.toLowerCase());
    if (!found) {
      const yours = items.map((e) => e.profile).join(', ') || 'none';
      throw new UsageError(
        `${spec} is not a profile of yours (yours: ${yours}); give a profile name or ACCOUNT/ROLE`,
      );
    }
    account = found.accountId;
    role = found.roleName;
  }
  const file = awsConfigFile();
  const region =
    found && existsSync(file) ? profileSetting(readFileSync(file, 'utf8'), found.profile, 'region') : null;
  return { account, role, endpointUrl: found?.endpointUrl ?? null, region };
}

export function registerAwsCommands(program: Command): void {
  program
    .command('creds')
    .description('short-lived AWS credentials for one role (use as credential_process)')
    .requiredOption('--account <account>', 'AWS account id or alias')
    .requiredOption('--role <role>', 'IAM role name')
    .option('--duration <duration>', 'how long, e.g. 1h (capped by the role and the access decision)')
    .option('--format <format>', 'credential_process, env or json', 'json')
    .option('--no-cache', 'always ask the server (the cache is used until 5 minutes before expiry)')
    .action(async function (
      this: Command,
      opts: { account: string; role: string; duration?: string; format: string; cache: boolean },
    ) {
      if (!['credential_process', 'env', 'json'].includes(opts.format)) {
        throw new UsageError(`--format must be credential_process, env or json, not ${opts.format}`);
      }
      let durationSeconds: number | undefined;
      if (opts.duration !== undefined) {
        const ms = parseDuration(opts.duration);
        if (ms === null || ms < 900_000 || ms > 43_200_000) {
          throw new UsageError('--duration must be between 15m and 12h (e.g. 1h)');
        }
        durationSeconds = Math.round(ms / 1000);
      }
      const issued = await credentialsFor(this, opts.account, opts.role, {
        cache: opts.cache,
        ...(durationSeconds ? { durationSeconds } : {}),
      });
      out(render(issued, opts.format));
    });

  program
    .command('console')
    .description('open (or with --print, print) an AWS console sign-in for one role')
    .option('--account <account>', 'AWS account id or alias')
    .option('--role <role>', 'IAM role name')
    .option('--profile <profile>', 'the role of a profile `ferry aws config` wrote (or ACCOUNT/ROLE)')
    .option('--print', 'print the URL instead of opening a browser')
    .action(async function (
      this: Command,
      opts: { account?: string; role?: string; profile?: string; print?: boolean },
    ) {
      if (opts.profile ? opts.account || opts.role : !(opts.account && opts.role)) {
        throw new UsageError('give either --profile, or --account and --role');
      }
      const { account, role } = opts.profile
        ? await resolveRole(this, opts.profile)
        : { account: opts.account!, role: opts.role! };
      const server = serverOf(this);
      const url = `${server}/apps/aws-console?account=${encodeURIComponent(account)}&role=${encodeURIComponent(role)}`;
      if (opts.print || !openBrowser(url)) {
        out(t`${url}\n`);
        if (!opts.print) note(t`(open it in a browser signed in to Ferry)\n`);
      }
    });

  const aws = program.commands.find((c) => c.name() === 'aws') ?? program.command('aws');
  aws
    .command('entitlements')
    .description('the AWS roles you may have right now')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const { items } = await callerClientOf(this).get<{ items: Entitlement[] }>('/api/v1/aws/entitlements');
      if (opts.json) return printJson(items);
      out(
        table(items as unknown as Array<Record<string, unknown>>, [
          'accountAlias',
          'accountId',
          'roleName',
          'profile',
        ]),
      );
    });

  aws
    .command('config')
    .description("write a profile for each AWS role you're entitled to into the AWS config file")
    .option('--file <path>', 'the AWS config file (default: $AWS_CONFIG_FILE or ~/.aws/config)')
    .option(
      '--region <region>',
      'region for new profiles',
      process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    )
    .option('--dry-run', 'show what would change; write nothing')
    .option(
      '--sso',
      "also write AWS CLI v2 sso profiles for your IAM Identity Center permission sets (the server's default)",
    )
    .option('--no-sso', 'write no sso profiles: only Ferry-issued role credentials')
    .action(async function (
      this: Command,
      opts: { file?: string; region: string; dryRun?: boolean; sso?: boolean },
    ) {
      const server = serverOf(this);
      const client = callerClientOf(this);
      const { items } = await client.get<{ items: Entitlement[] }>('/api/v1/aws/entitlements');
      const sets = await client
        .get<PermissionSetEntitlements>('/api/v1/aws/permission-set-entitlements')
        .catch((err: unknown) => {
          note(t`! permission sets not listed: ${(err as Error).message}\n`);
          return {
            items: [],
            cliProfiles: 'ferry',
            startUrl: '',
            ssoRegion: '',
          } as PermissionSetEntitlements;
        });
      // commander sets sso only when --sso or --no-sso is given: otherwise the operator's preference
      const explicit = this.getOptionValueSource('sso') === 'cli';
      const wantSso = explicit ? opts.sso !== false : sets.cliProfiles === 'sso';
      const file = opts.file ?? awsConfigFile();
      const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const ferry = ferryCommand();
      const profiles: ManagedProfile[] = items.map((e) => ({
        name: e.profile,
        keys: [
          [
            'credential_process',
            `${ferry} creds --server ${server} --account ${e.accountId} --role ${e.roleName} --format credential_process`,
          ],
          ...(e.endpointUrl ? ([['endpoint_url', e.endpointUrl]] as Array<[string, string]>) : []),
        ],
        defaults: [['region', opts.region]],
      }));
      const ssoProfiles = wantSso ? ssoProfilesOf(sets, opts.region) : [];
      if (wantSso && sets.items.length > 0 && ssoProfiles.length === 0)
        note(
          t`! IAM Identity Center's access portal URL is unknown (the server could not reach it): no sso profiles written\n`,
        );
      profiles.push(...ssoProfiles);
      const changes = applyProfiles(before, server, profiles);
      for (const name of changes.added) out(t`+ ${name}\n`);
      for (const name of changes.updated) out(t`~ ${name}\n`);
      for (const name of changes.removed) out(t`- ${name} (no longer entitled)\n`);
      for (const name of changes.skipped) {
        note(t`! ${name}: a profile you wrote has this name; left as it is\n`);
      }
      if (opts.dryRun) return;
      if (changes.text !== before) writeConfig(file, changes.text);
      out(
        t`${items.length} Ferry profile(s) in ${file}${items[0] ? t`; try: aws sts get-caller-identity --profile ${items[0].profile}` : ''}\n`,
      );
      const firstSso = ssoProfiles.find((p) => !p.name.startsWith(SSO_SESSION));
      if (firstSso) {
        out(
          t`${ssoProfiles.length - 1} IAM Identity Center profile(s) (AWS CLI v2): aws sso login --sso-session ${SSO_SESSION_NAME}; aws sts get-caller-identity --profile ${firstSso.name}\n`,
        );
        out(
          t`  a permission set activated just in time is unassigned when the activation ends; AWS sessions already open last until their duration ends\n`,
        );
      } else if (!wantSso && sets.items.length > 0)
        note(
          t`${sets.items.length} IAM Identity Center permission set(s) not written as profiles (the operator prefers Ferry-issued role credentials; --sso writes them)\n`,
        );
    });
}

/** As the server answers GET /api/v1/aws/permission-set-entitlements. */
export interface PermissionSetEntitlements {
  items: Array<{
    accountId: string;
    accountAlias: string;
    permissionSet: string;
    target: string;
    maxDurationSeconds: number;
    startUrl: string;
    ssoRegion: string;
    profile: string;
  }>;
  cliProfiles: 'sso' | 'ferry';
  startUrl: string;
  ssoRegion: string;
}

/** The `[sso-session …]` section every sso profile Ferry writes refers to. */
export const SSO_SESSION_NAME = 'ferry';

/**
 * AWS CLI v2 IAM Identity Center profiles: one `[sso-session ferry]` (the access portal and its region)
 * and one `[profile …]` per (account, permission set), which the AWS CLI signs in to itself
 * (`aws sso login`); Ferry issues nothing for them. None when the access portal URL is unknown.
 */
export function ssoProfilesOf(sets: PermissionSetEntitlements, region: string): ManagedProfile[] {
  const startUrl = sets.startUrl || sets.items.find((i) => i.startUrl)?.startUrl || '';
  if (!startUrl || sets.items.length === 0) return [];
  return [
    {
      name: `${SSO_SESSION}${SSO_SESSION_NAME}`,
      keys: [
        ['sso_start_url', startUrl],
        ['sso_region', sets.ssoRegion],
        ['sso_registration_scopes', 'sso:account:access'],
      ],
    },
    ...sets.items.map(
      (i): ManagedProfile => ({
        name: i.profile,
        keys: [
          ['sso_session', SSO_SESSION_NAME],
          ['sso_account_id', i.accountId],
          ['sso_role_name', i.permissionSet],
        ],
        defaults: [['region', region]],
      }),
    ),
  ];
}

/** Atomic (temporary file and rename), keeping the person's own file mode when the file exists. */
function writeConfig(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const mode = existsSync(file) ? statSync(file).mode & 0o777 : 0o600;
  const tmp = `${file}.ferry-${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}
