import type { IAMClient, Role } from '@aws-sdk/client-iam';
import {
  ACCOUNT_ID_PATTERN,
  type AwsAccountConnection,
  checkCallerAccount,
  openAccountClients,
} from './account-clients.js';
import { iamSdk } from './sdk.js';
import { decodePolicyDocument, trustedSamlProviders, UnreadablePolicyDocument } from './trust-policy.js';

export { WrongAwsAccount } from './account-clients.js';

export interface ImportRolesOptions extends AwsAccountConnection {
  /** Only roles under this IAM path, e.g. `/ferry/`; default `/` (all). */
  pathPrefix?: string;
  /** Only roles whose trust policy lets some SAML provider sign in. */
  onlySamlTrusted?: boolean;
}

export interface ImportedRole {
  name: string;
  path: string;
  arn: string;
  /** Seconds; the cap for any session Ferry asks for in this role. */
  maxSessionDuration: number;
  description?: string;
  /** The trust policy allows sts:AssumeRoleWithSAML to at least one IAM SAML provider. */
  trustsSaml: boolean;
  /** Those SAML providers' ARNs: the `providerArn` half of the SAML `Role` attribute. */
  samlProviderArns: string[];
}

const SERVICE_LINKED_ROLE_PATH = '/aws-service-role/';
// IAM's default when a role was created without one; used only if IAM returns none at all.
const DEFAULT_MAX_SESSION_SECONDS = 3_600;

/**
 * Lists the account's IAM roles as Ferry's role registry needs them, like the provisioning agent in
 * Microsoft's Entra-for-AWS guide: every page of ListRoles, without service-linked roles (which no person
 * can assume), sorted by name. Refuses with WrongAwsAccount when the credentials are for another account.
 */
export async function importRoles(opts: ImportRolesOptions): Promise<ImportedRole[]> {
  if (!ACCOUNT_ID_PATTERN.test(opts.accountId)) {
    throw new Error(`account id ${JSON.stringify(opts.accountId)} is not 12 digits`);
  }
  const clients = openAccountClients(opts);
  try {
    await checkCallerAccount(clients.sts, opts.accountId);
    const imported: ImportedRole[] = [];
    for (const role of await listAllRoles(clients.iam, opts.pathPrefix)) {
      if (role.Path?.startsWith(SERVICE_LINKED_ROLE_PATH)) continue;
      const entry = await toImportedRole(clients.iam, role);
      if (opts.onlySamlTrusted && !entry.trustsSaml) continue;
      imported.push(entry);
    }
    return imported.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } finally {
    clients.destroy();
  }
}

async function listAllRoles(iam: IAMClient, pathPrefix: string | undefined): Promise<Role[]> {
  const roles: Role[] = [];
  const seenMarkers = new Set<string>();
  let marker: string | undefined;
  do {
    const page = await iam.send(
      new iamSdk.ListRolesCommand({
        ...(pathPrefix === undefined ? {} : { PathPrefix: pathPrefix }),
        ...(marker === undefined ? {} : { Marker: marker }),
      }),
    );
    roles.push(...(page.Roles ?? []));
    if (!page.IsTruncated) break;
    marker = page.Marker;
    // A truncated page must say where to go on; a marker seen before would loop for ever.
    if (marker === undefined || seenMarkers.has(marker)) {
      throw new Error('IAM ListRoles returned a truncated page without a new Marker');
    }
    seenMarkers.add(marker);
  } while (marker !== undefined);
  return roles;
}

async function toImportedRole(iam: IAMClient, listed: Role): Promise<ImportedRole> {
  let role = listed;
  // ListRoles may leave out MaxSessionDuration (or the trust policy); GetRole has the whole role.
  if (role.MaxSessionDuration === undefined || role.AssumeRolePolicyDocument === undefined) {
    role = (await iam.send(new iamSdk.GetRoleCommand({ RoleName: listed.RoleName }))).Role ?? listed;
  }
  if (!role.RoleName || !role.Arn) throw new Error('IAM returned a role without a name or ARN');
  const samlProviderArns = samlProvidersOf(role);
  return {
    name: role.RoleName,
    path: role.Path ?? '/',
    arn: role.Arn,
    maxSessionDuration: role.MaxSessionDuration ?? DEFAULT_MAX_SESSION_SECONDS,
    ...(role.Description ? { description: role.Description } : {}),
    trustsSaml: samlProviderArns.length > 0,
    samlProviderArns,
  };
}

/** A trust policy that cannot be read is reported as trusting no SAML provider rather than failing the import. */
function samlProvidersOf(role: Role): string[] {
  if (role.AssumeRolePolicyDocument === undefined) return [];
  try {
    return trustedSamlProviders(
      decodePolicyDocument(role.AssumeRolePolicyDocument, `the trust policy of role ${role.RoleName}`),
    );
  } catch (err) {
    if (err instanceof UnreadablePolicyDocument) return [];
    throw err;
  }
}
