import type { IAMClient, Role } from '@aws-sdk/client-iam';
import {
  ACCOUNT_ID_PATTERN,
  type AwsAccountConnection,
  checkCallerAccount,
  openAccountClients,
} from './account-clients.js';
import { iamSdk } from './sdk.js';
import {
  AWS_PARTITIONS,
  type AwsPartition,
  decodePolicyDocument,
  SAML_SIGN_IN_URLS,
  withSamlTrust,
} from './trust-policy.js';

export { WrongAwsAccount } from './account-clients.js';
export type { AwsPartition } from './trust-policy.js';

export interface SamlSetupOptions extends AwsAccountConnection {
  partition: AwsPartition;
  /** Name of the IAM SAML provider (`[\w._-]{1,128}`); its ARN is what the roles trust. */
  providerName: string;
  /** Ferry's IdP metadata, uploaded as the provider's SAML metadata document. */
  metadataXml: string;
  /** The roles Ferry signs people into; a missing role is created. */
  roles: Array<{ name: string; maxSessionDurationSeconds?: number }>;
  /** Read everything, change nothing, and report what would change. */
  dryRun?: boolean;
}

export type SetupChangeKind = 'saml-provider' | 'role' | 'trust-policy' | 'max-session-duration';
export type SetupAction = 'created' | 'updated' | 'unchanged' | 'would-create' | 'would-update';

export interface SetupChange {
  kind: SetupChangeKind;
  /** The SAML provider's name for `saml-provider`, else the role's name. */
  name: string;
  action: SetupAction;
}

export interface SetupReport {
  accountId: string;
  providerArn: string;
  changes: SetupChange[];
}

/** The options name something AWS would refuse (or that makes no sense); nothing was read or changed. */
export class InvalidSamlSetup extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSamlSetup';
  }
}

const PROVIDER_NAME_PATTERN = /^[\w.-]{1,128}$/;
const ROLE_NAME_PATTERN = /^[\w+=,.@-]{1,64}$/;
// IAM's bounds for a role's MaxSessionDuration.
const MIN_MAX_SESSION_SECONDS = 3_600;
const MAX_MAX_SESSION_SECONDS = 43_200;
const CREATED_ROLE_DESCRIPTION = 'Created by Ferry for SAML sign-in';
// IAM is eventually consistent: a trust policy naming a SAML provider created a moment ago can be refused as
// "Invalid principal in policy" until the provider has propagated. Waits between attempts, about 15 s in all.
const INVALID_PRINCIPAL_RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000, 8_000];

/**
 * Prepares one AWS account for sign-in through Ferry, through IAM only:
 * the SAML provider `providerName` holds `metadataXml`, and each role trusts it for sts:AssumeRoleWithSAML,
 * sts:SetSourceIdentity and sts:TagSession with `SAML:aud` pinned to the partition's sign-in URL.
 *
 * Idempotent: a second run reports `unchanged`. Other statements in a role's trust policy are kept. Refuses
 * with WrongAwsAccount, before any change, when the credentials belong to another account or partition.
 * With `dryRun` it only reads, and reports `would-create` / `would-update`.
 *
 * A created role implies its trust policy and session duration, so those are reported `created` with it.
 */
export async function setupSamlAccount(opts: SamlSetupOptions): Promise<SetupReport> {
  validate(opts);
  const dryRun = opts.dryRun === true;
  const clients = openAccountClients(opts);
  try {
    await checkCallerAccount(clients.sts, opts.accountId, opts.partition);
    const provider = await ensureSamlProvider(clients.iam, opts, dryRun);
    const changes: SetupChange[] = [
      { kind: 'saml-provider', name: opts.providerName, action: provider.action },
    ];
    const audience = SAML_SIGN_IN_URLS[opts.partition];
    for (const role of opts.roles) {
      changes.push(...(await ensureTrustingRole(clients.iam, role, provider.arn, audience, dryRun)));
    }
    return { accountId: opts.accountId, providerArn: provider.arn, changes };
  } finally {
    clients.destroy();
  }
}

const KIND_WORDS: Record<SetupChangeKind, string> = {
  'saml-provider': 'SAML provider',
  role: 'role',
  'trust-policy': 'trust policy of role',
  'max-session-duration': 'maximum session duration of role',
};

const ACTION_WORDS: Record<SetupAction, string> = {
  created: 'created',
  updated: 'updated',
  unchanged: 'unchanged',
  'would-create': 'would create',
  'would-update': 'would update',
};

/** A header naming the account and provider, then one line per change, e.g. `  updated       trust policy of role Developer`. */
export function formatSetupReport(report: SetupReport): string {
  const width = Math.max(...Object.values(ACTION_WORDS).map((w) => w.length)) + 2;
  const lines = [`AWS account ${report.accountId}, SAML provider ${report.providerArn}`];
  for (const change of report.changes) {
    lines.push(`  ${ACTION_WORDS[change.action].padEnd(width)}${KIND_WORDS[change.kind]} ${change.name}`);
  }
  return lines.join('\n');
}

function validate(opts: SamlSetupOptions): void {
  if (!ACCOUNT_ID_PATTERN.test(opts.accountId)) {
    throw new InvalidSamlSetup(`account id ${JSON.stringify(opts.accountId)} is not 12 digits`);
  }
  if (!AWS_PARTITIONS.includes(opts.partition)) {
    throw new InvalidSamlSetup(`unknown AWS partition ${JSON.stringify(opts.partition)}`);
  }
  if (!PROVIDER_NAME_PATTERN.test(opts.providerName)) {
    throw new InvalidSamlSetup(
      `SAML provider name ${JSON.stringify(opts.providerName)} must be 1-128 letters, digits, '.', '_' or '-'`,
    );
  }
  if (opts.metadataXml.trim() === '') throw new InvalidSamlSetup('the IdP metadata document is empty');
  const seen = new Set<string>();
  for (const role of opts.roles) {
    if (!ROLE_NAME_PATTERN.test(role.name)) {
      throw new InvalidSamlSetup(
        `role name ${JSON.stringify(role.name)} must be 1-64 letters, digits or any of + = , . @ _ -`,
      );
    }
    // IAM role names are unique case-insensitively.
    const key = role.name.toLowerCase();
    if (seen.has(key)) throw new InvalidSamlSetup(`role ${role.name} is listed twice`);
    seen.add(key);
    const seconds = role.maxSessionDurationSeconds;
    if (
      seconds !== undefined &&
      !(Number.isInteger(seconds) && seconds >= MIN_MAX_SESSION_SECONDS && seconds <= MAX_MAX_SESSION_SECONDS)
    ) {
      throw new InvalidSamlSetup(
        `role ${role.name}: maximum session duration ${seconds} must be a whole number of seconds ` +
          `from ${MIN_MAX_SESSION_SECONDS} to ${MAX_MAX_SESSION_SECONDS}`,
      );
    }
  }
}

async function ensureSamlProvider(
  iam: IAMClient,
  opts: SamlSetupOptions,
  dryRun: boolean,
): Promise<{ arn: string; action: SetupAction }> {
  const arn = `arn:${opts.partition}:iam::${opts.accountId}:saml-provider/${opts.providerName}`;
  let current = await getSamlMetadata(iam, arn);
  if (current === undefined) {
    if (dryRun) return { arn, action: 'would-create' };
    try {
      const out = await iam.send(
        new iamSdk.CreateSAMLProviderCommand({
          Name: opts.providerName,
          SAMLMetadataDocument: opts.metadataXml,
        }),
      );
      return { arn: out.SAMLProviderArn ?? arn, action: 'created' };
    } catch (err) {
      // Another Ferry instance created it between our read and our write: converge like an existing one.
      if (!(err instanceof iamSdk.EntityAlreadyExistsException)) throw err;
      current = await getSamlMetadata(iam, arn);
      if (current === undefined) throw new Error(`IAM SAML provider ${arn} vanished while being set up`);
    }
  }
  if (sameMetadata(current, opts.metadataXml)) return { arn, action: 'unchanged' };
  if (dryRun) return { arn, action: 'would-update' };
  await iam.send(
    new iamSdk.UpdateSAMLProviderCommand({ SAMLProviderArn: arn, SAMLMetadataDocument: opts.metadataXml }),
  );
  return { arn, action: 'updated' };
}

/** The provider's metadata document, '' if it has none, undefined if there is no such provider. */
async function getSamlMetadata(iam: IAMClient, arn: string): Promise<string | undefined> {
  try {
    const out = await iam.send(new iamSdk.GetSAMLProviderCommand({ SAMLProviderArn: arn }));
    return out.SAMLMetadataDocument ?? '';
  } catch (err) {
    if (err instanceof iamSdk.NoSuchEntityException) return undefined;
    throw err;
  }
}

/**
 * IAM hands the document back through an XML response, whose parsing turns CRLF into LF; surrounding
 * whitespace carries no meaning either. Anything else that differs is a real change.
 */
function sameMetadata(stored: string, wanted: string): boolean {
  const normalize = (s: string): string => s.replace(/\r\n?/g, '\n').trim();
  return normalize(stored) === normalize(wanted);
}

async function ensureTrustingRole(
  iam: IAMClient,
  role: SamlSetupOptions['roles'][number],
  providerArn: string,
  audience: string,
  dryRun: boolean,
): Promise<SetupChange[]> {
  const name = role.name;
  const wantedSeconds = role.maxSessionDurationSeconds;
  let current = await getRole(iam, name);
  if (current === undefined) {
    const action: SetupAction = dryRun ? 'would-create' : 'created';
    const created: SetupChange[] = [
      { kind: 'role', name, action },
      { kind: 'trust-policy', name, action },
      ...(wantedSeconds === undefined ? [] : [{ kind: 'max-session-duration' as const, name, action }]),
    ];
    if (dryRun) return created;
    try {
      await whilePrincipalPropagates(() =>
        iam.send(
          new iamSdk.CreateRoleCommand({
            RoleName: name,
            Description: CREATED_ROLE_DESCRIPTION,
            AssumeRolePolicyDocument: JSON.stringify(
              withSamlTrust(undefined, providerArn, audience).document,
            ),
            ...(wantedSeconds === undefined ? {} : { MaxSessionDuration: wantedSeconds }),
          }),
        ),
      );
      return created;
    } catch (err) {
      if (!(err instanceof iamSdk.EntityAlreadyExistsException)) throw err;
      current = await getRole(iam, name);
      if (current === undefined) throw new Error(`IAM role ${name} vanished while being set up`);
    }
  }

  const changes: SetupChange[] = [{ kind: 'role', name, action: 'unchanged' }];
  const trust =
    current.AssumeRolePolicyDocument === undefined
      ? undefined
      : decodePolicyDocument(current.AssumeRolePolicyDocument, `the trust policy of role ${name}`);
  const merged = withSamlTrust(trust, providerArn, audience);
  if (!merged.changed) {
    changes.push({ kind: 'trust-policy', name, action: 'unchanged' });
  } else if (dryRun) {
    changes.push({ kind: 'trust-policy', name, action: 'would-update' });
  } else {
    await whilePrincipalPropagates(() =>
      iam.send(
        new iamSdk.UpdateAssumeRolePolicyCommand({
          RoleName: name,
          PolicyDocument: JSON.stringify(merged.document),
        }),
      ),
    );
    changes.push({ kind: 'trust-policy', name, action: 'updated' });
  }

  if (wantedSeconds !== undefined) {
    if (current.MaxSessionDuration === wantedSeconds) {
      changes.push({ kind: 'max-session-duration', name, action: 'unchanged' });
    } else if (dryRun) {
      changes.push({ kind: 'max-session-duration', name, action: 'would-update' });
    } else {
      await iam.send(
        new iamSdk.UpdateRoleCommand({
          RoleName: name,
          MaxSessionDuration: wantedSeconds,
          // Passed back unchanged: some implementations (moto) clear a description UpdateRole leaves out.
          ...(current.Description === undefined ? {} : { Description: current.Description }),
        }),
      );
      changes.push({ kind: 'max-session-duration', name, action: 'updated' });
    }
  }
  return changes;
}

async function getRole(iam: IAMClient, name: string): Promise<Role | undefined> {
  try {
    return (await iam.send(new iamSdk.GetRoleCommand({ RoleName: name }))).Role;
  } catch (err) {
    if (err instanceof iamSdk.NoSuchEntityException) return undefined;
    throw err;
  }
}

/** Runs `write` again while IAM refuses the (just ensured) SAML provider as an invalid principal. */
async function whilePrincipalPropagates<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      const delay = INVALID_PRINCIPAL_RETRY_DELAYS_MS[attempt];
      const invalidPrincipal =
        err instanceof iamSdk.MalformedPolicyDocumentException && /invalid principal/i.test(err.message);
      if (!invalidPrincipal || delay === undefined) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
