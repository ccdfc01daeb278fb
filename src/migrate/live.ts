import {
  GenerateCredentialReportCommand,
  GetAccountAuthorizationDetailsCommand,
  GetCredentialReportCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAccountAliasesCommand,
  ListAttachedRolePoliciesCommand,
  ListOpenIDConnectProvidersCommand,
  ListRolePoliciesCommand,
  ListSAMLProvidersCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type PolicyDocument, parseAuthorizationDetails, policyDocument } from './auth-details.js';
import { parseCredentialReport } from './credential-report.js';
import { type AccountInventory, buildInventory } from './inventory.js';

/** One account to read: a named profile from the AWS config, or the default chain; `endpoint` for moto. */
export interface LiveSource {
  profile?: string;
  endpoint?: string;
  region?: string;
}

export const LIVE_STEPS = 5;

/** Reads one account's IAM through the SDK; `progress(step)` is called after each of LIVE_STEPS steps. */
export async function readLiveAccount(
  source: LiveSource,
  progress: (step: string) => void = () => {},
): Promise<AccountInventory> {
  const config = {
    region: source.region ?? 'us-east-1',
    ...(source.profile ? { profile: source.profile } : {}),
    ...(source.endpoint ? { endpoint: source.endpoint } : {}),
    // moto takes any credentials; real AWS goes through the SDK's chain (profile, env, SSO…)
    ...(source.endpoint && !source.profile
      ? { credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }
      : {}),
  };
  const iam = new IAMClient(config);
  const sts = new STSClient(config);
  try {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    const aliases = await iam.send(new ListAccountAliasesCommand({}));
    progress('account');
    const pages: unknown[] = [];
    let marker: string | undefined;
    do {
      const page = await iam.send(
        new GetAccountAuthorizationDetailsCommand({ ...(marker ? { Marker: marker } : {}) }),
      );
      pages.push(page);
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    progress('authorization details');
    const report = await credentialReport(iam);
    progress('credential report');
    const saml = await iam.send(new ListSAMLProvidersCommand({}));
    const oidc = await iam.send(new ListOpenIDConnectProvidersCommand({}));
    progress('identity providers');
    const inv = buildInventory({
      details: parseAuthorizationDetails(pages),
      credentialReport: parseCredentialReport(report),
      ...(who.Account ? { accountId: who.Account } : {}),
      alias: aliases.AccountAliases?.[0] ?? null,
      identityProviders: [
        ...(saml.SAMLProviderList ?? []).flatMap((p) =>
          p.Arn ? [{ kind: 'saml' as const, arn: p.Arn }] : [],
        ),
        ...(oidc.OpenIDConnectProviderList ?? []).flatMap((p) =>
          p.Arn ? [{ kind: 'oidc' as const, arn: p.Arn }] : [],
        ),
      ],
    });
    progress('inventory');
    return inv;
  } finally {
    iam.destroy();
    sts.destroy();
  }
}

/** GenerateCredentialReport until it is COMPLETE (AWS takes seconds), then GetCredentialReport. */
async function credentialReport(iam: IAMClient): Promise<string> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const gen = await iam.send(new GenerateCredentialReportCommand({}));
    if (gen.State === 'COMPLETE') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const res = await iam.send(new GetCredentialReportCommand({}));
  if (!res.Content) throw new Error('GetCredentialReport returned no content');
  return Buffer.from(res.Content).toString('utf8');
}

/** A role's identity policies read from IAM (attached managed policies' default versions, then inline ones). */
export async function readLiveRole(
  source: LiveSource,
  roleName: string,
): Promise<{
  accountId: string;
  roleArn: string;
  policies: Array<{ name: string; policy: PolicyDocument }>;
}> {
  const config = {
    region: source.region ?? 'us-east-1',
    ...(source.profile ? { profile: source.profile } : {}),
    ...(source.endpoint ? { endpoint: source.endpoint } : {}),
    ...(source.endpoint && !source.profile
      ? { credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }
      : {}),
  };
  const iam = new IAMClient(config);
  const sts = new STSClient(config);
  try {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    const role = await iam.send(new GetRoleCommand({ RoleName: roleName }));
    const policies: Array<{ name: string; policy: PolicyDocument }> = [];
    const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName }));
    for (const a of attached.AttachedPolicies ?? []) {
      const p = await iam.send(new GetPolicyCommand({ PolicyArn: a.PolicyArn }));
      const v = await iam.send(
        new GetPolicyVersionCommand({ PolicyArn: a.PolicyArn, VersionId: p.Policy?.DefaultVersionId }),
      );
      policies.push({ name: a.PolicyArn!, policy: policyDocument(v.PolicyVersion?.Document, a.PolicyArn!) });
    }
    const inline = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName }));
    for (const name of inline.PolicyNames ?? []) {
      const p = await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: name }));
      policies.push({ name: `role/${roleName}/${name}`, policy: policyDocument(p.PolicyDocument, name) });
    }
    return { accountId: who.Account ?? '', roleArn: role.Role?.Arn ?? '', policies };
  } finally {
    iam.destroy();
    sts.destroy();
  }
}
