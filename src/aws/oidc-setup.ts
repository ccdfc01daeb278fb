import type { IAMClient } from '@aws-sdk/client-iam';
import { type AwsAccountConnection, checkCallerAccount, openAccountClients } from './account-clients.js';
import { iamSdk } from './sdk.js';
import {
  type AwsPartition,
  decodePolicyDocument,
  type PolicyDocument,
  type PolicyStatement,
} from './trust-policy.js';

/** The audience Ferry's workload tokens for AWS carry (`resource=sts.amazonaws.com`). */
export const STS_AUDIENCE = 'sts.amazonaws.com';

export interface OidcSetupOptions extends AwsAccountConnection {
  partition: AwsPartition;
  /** Ferry's issuer URL (its public URL): AWS fetches /.well-known/openid-configuration from it */
  issuer: string;
  /** role name → the workload client ids assigned to it in Ferry */
  workloadsByRole: Map<string, string[]>;
  /** TLS certificate thumbprints, when the issuer's CA needs them (AWS no longer does for public CAs) */
  thumbprints?: string[];
  dryRun?: boolean;
}

export interface OidcSetupChange {
  kind: 'oidc-provider' | 'client-id' | 'trust-policy';
  name: string;
  action: 'created' | 'updated' | 'unchanged' | 'would-create' | 'would-update';
}

/** `https://ferry.example/x` → `ferry.example/x`: how IAM names the provider and its condition keys. */
export function providerPath(issuer: string): string {
  return issuer.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/** The trust statement for workloads: only Ferry-issued tokens for AWS, only these workloads. */
export function webIdentityTrustStatement(
  providerArn: string,
  issuer: string,
  clientIds: string[],
): PolicyStatement {
  const host = providerPath(issuer);
  return {
    Sid: 'FerryWorkloads',
    Effect: 'Allow',
    Principal: { Federated: providerArn },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: {
      StringEquals: {
        [`${host}:aud`]: STS_AUDIENCE,
        [`${host}:sub`]: [...clientIds].sort(),
      },
    },
  };
}

/** Replaces Ferry's statement for this provider (or adds it); every other statement stays. */
export function withWebIdentityTrust(
  document: PolicyDocument | undefined,
  statement: PolicyStatement,
): { document: PolicyDocument; changed: boolean } {
  const federated = (s: PolicyStatement) => (s.Principal as { Federated?: unknown } | undefined)?.Federated;
  const providerArn = federated(statement);
  const others = (document?.Statement ?? []).filter((s) => federated(s) !== providerArn);
  const existing = (document?.Statement ?? []).filter((s) => federated(s) === providerArn);
  const next: PolicyDocument = { Version: '2012-10-17', ...document, Statement: [...others, statement] };
  const changed = existing.length !== 1 || JSON.stringify(existing[0]) !== JSON.stringify(statement);
  return { document: next, changed };
}

/**
 * `ferry aws setup-account --oidc`: the IAM OIDC identity provider for Ferry's issuer (audience
 * sts.amazonaws.com) and, on each role assigned to workloads, a trust statement naming exactly
 * those workloads as `sub`. Idempotent; --dry-run changes nothing.
 */
export async function setupOidcTrust(
  opts: OidcSetupOptions,
): Promise<{ providerArn: string; changes: OidcSetupChange[] }> {
  const dryRun = opts.dryRun === true;
  const clients = openAccountClients(opts);
  try {
    await checkCallerAccount(clients.sts, opts.accountId, opts.partition);
    const path = providerPath(opts.issuer);
    const providerArn = `arn:${opts.partition}:iam::${opts.accountId}:oidc-provider/${path}`;
    const changes: OidcSetupChange[] = [await ensureProvider(clients.iam, providerArn, opts, dryRun)];
    if (changes[0]!.action === 'unchanged') {
      changes.push(await ensureAudience(clients.iam, providerArn, dryRun));
    }
    for (const [role, clientIds] of opts.workloadsByRole) {
      if (clientIds.length === 0) continue;
      changes.push(
        await ensureRoleTrust(
          clients.iam,
          role,
          webIdentityTrustStatement(providerArn, opts.issuer, clientIds),
          dryRun,
        ),
      );
    }
    return { providerArn, changes };
  } finally {
    clients.destroy();
  }
}

async function ensureProvider(
  iam: IAMClient,
  arn: string,
  opts: OidcSetupOptions,
  dryRun: boolean,
): Promise<OidcSetupChange> {
  const name = providerPath(opts.issuer);
  try {
    await iam.send(new iamSdk.GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
    return { kind: 'oidc-provider', name, action: 'unchanged' };
  } catch (err) {
    if (!(err instanceof iamSdk.NoSuchEntityException) && (err as Error).name !== 'NoSuchEntity') throw err;
  }
  if (dryRun) return { kind: 'oidc-provider', name, action: 'would-create' };
  await iam.send(
    new iamSdk.CreateOpenIDConnectProviderCommand({
      Url: opts.issuer,
      ClientIDList: [STS_AUDIENCE],
      ...(opts.thumbprints?.length ? { ThumbprintList: opts.thumbprints } : {}),
    }),
  );
  return { kind: 'oidc-provider', name, action: 'created' };
}

async function ensureAudience(iam: IAMClient, arn: string, dryRun: boolean): Promise<OidcSetupChange> {
  const current = await iam.send(
    new iamSdk.GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }),
  );
  if (current.ClientIDList?.includes(STS_AUDIENCE))
    return { kind: 'client-id', name: STS_AUDIENCE, action: 'unchanged' };
  if (dryRun) return { kind: 'client-id', name: STS_AUDIENCE, action: 'would-create' };
  await iam.send(
    new iamSdk.AddClientIDToOpenIDConnectProviderCommand({
      OpenIDConnectProviderArn: arn,
      ClientID: STS_AUDIENCE,
    }),
  );
  return { kind: 'client-id', name: STS_AUDIENCE, action: 'created' };
}

async function ensureRoleTrust(
  iam: IAMClient,
  role: string,
  statement: PolicyStatement,
  dryRun: boolean,
): Promise<OidcSetupChange> {
  const current = await iam.send(new iamSdk.GetRoleCommand({ RoleName: role }));
  const raw = current.Role?.AssumeRolePolicyDocument;
  const trust = raw === undefined ? undefined : decodePolicyDocument(raw, `the trust policy of role ${role}`);
  const merged = withWebIdentityTrust(trust, statement);
  if (!merged.changed) return { kind: 'trust-policy', name: role, action: 'unchanged' };
  if (dryRun) return { kind: 'trust-policy', name: role, action: 'would-update' };
  await iam.send(
    new iamSdk.UpdateAssumeRolePolicyCommand({
      RoleName: role,
      PolicyDocument: JSON.stringify(merged.document),
    }),
  );
  return { kind: 'trust-policy', name: role, action: 'updated' };
}
