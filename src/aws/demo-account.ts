import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  EntityAlreadyExistsException,
  GetRoleCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  NoSuchEntityException,
  PutRolePolicyCommand,
  type Role,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { SIGNIN_ENDPOINTS } from '../access/aws-accounts.js';

/** The demo tenant's AWS account: moto's default account, named as in Microsoft's Entra-for-AWS guide. */
export const DEMO_AWS_ACCOUNT = { id: '123456789012', name: 'Account1' } as const;

export interface DemoAwsAccountOptions {
  /** Omit to talk to real AWS; the local AWS (moto) passes its endpoint here. */
  endpoint?: string;
  region: string;
  /** Defaults to dummy credentials when an endpoint is given, else to the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The IAM SAML provider the roles trust; Ferry registers its IdP metadata under this name. */
  samlProviderName?: string;
}

export interface DemoAwsAccount {
  accountId: string;
  roles: Array<{ name: string; arn: string; created: boolean }>;
}

/** AWS's audience for SAML sign-in to the console and for AssumeRoleWithSAML. */
const AWS_SAML_AUDIENCE = SIGNIN_ENDPOINTS.aws;
// AWS's own limit for a role session; Ferry's policy decides the actual, usually far shorter, duration.
const MAX_SESSION_DURATION_SECONDS = 43_200;
const DEMO_TAG = { Key: 'ferry:demo', Value: 'true' };

interface DemoRole {
  name: string;
  description: string;
  /** Name of an AWS managed policy, attached as in a real account. */
  managedPolicy: string;
  /** The same permissions inline, for an emulator that does not know the managed policy. */
  inlineFallback: { name: string; actions: string };
}

const DEMO_ROLES: DemoRole[] = [
  {
    name: 'Administrator',
    description: 'Ferry demo: full administrative access (AWS-Account1-Administrators)',
    managedPolicy: 'AdministratorAccess',
    inlineFallback: { name: 'ferry-demo-administrator', actions: '*' },
  },
  {
    name: 'Developer',
    description: 'Ferry demo: S3 access only (AWS-Account1-Developers)',
    managedPolicy: 'AmazonS3FullAccess',
    inlineFallback: { name: 'ferry-demo-developer-s3', actions: 's3:*' },
  },
];

/**
 * Makes sure the demo account has the roles Administrator and Developer, trusting Ferry's SAML provider.
 * Idempotent: an existing role is brought back in line (trust, session duration, tag, policy) and reported
 * with `created: false`.
 */
export async function ensureDemoAwsAccount(opts: DemoAwsAccountOptions): Promise<DemoAwsAccount> {
  const credentials =
    opts.credentials ??
    // moto accepts any credentials; against real AWS the SDK's own chain must find real ones.
    (opts.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
  const config = {
    region: opts.region,
    ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  };
  const sts = new STSClient(config);
  const iam = new IAMClient(config);
  try {
    const caller = await sts.send(new GetCallerIdentityCommand({}));
    const accountId = caller.Account;
    if (!accountId) throw new Error('STS GetCallerIdentity returned no account id');
    // arn:<partition>:... so the same code works in aws-cn and aws-us-gov.
    const partition = caller.Arn?.split(':')[1] || 'aws';
    const samlProviderArn = `arn:${partition}:iam::${accountId}:saml-provider/${opts.samlProviderName ?? 'Ferry'}`;
    const trustPolicy = samlTrustPolicy(samlProviderArn);

    const roles: DemoAwsAccount['roles'] = [];
    for (const role of DEMO_ROLES) {
      const { arn, created } = await ensureRole(iam, role, trustPolicy);
      await ensureRolePermissions(iam, role, partition);
      roles.push({ name: role.name, arn, created });
    }
    return { accountId, roles };
  } finally {
    sts.destroy();
    iam.destroy();
  }
}

function samlTrustPolicy(samlProviderArn: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: samlProviderArn },
        Action: 'sts:AssumeRoleWithSAML',
        Condition: { StringEquals: { 'SAML:aud': AWS_SAML_AUDIENCE } },
      },
    ],
  };
}

interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Array<Record<string, unknown>>;
}

async function ensureRole(
  iam: IAMClient,
  role: DemoRole,
  trustPolicy: PolicyDocument,
): Promise<{ arn: string; created: boolean }> {
  const existing = await getRole(iam, role.name);
  if (existing === undefined) {
    try {
      const out = await iam.send(
        new CreateRoleCommand({
          RoleName: role.name,
          Description: role.description,
          AssumeRolePolicyDocument: JSON.stringify(trustPolicy),
          MaxSessionDuration: MAX_SESSION_DURATION_SECONDS,
          Tags: [DEMO_TAG],
        }),
      );
      return { arn: roleArn(out.Role, role.name), created: true };
    } catch (err) {
      // Another Ferry instance created it between our read and our write: converge like any existing role.
      if (!(err instanceof EntityAlreadyExistsException)) throw err;
    }
  }
  const current = existing ?? (await getRole(iam, role.name));
  if (current === undefined) throw new Error(`IAM role ${role.name} vanished while being ensured`);

  if (!sameDocument(current.AssumeRolePolicyDocument, trustPolicy)) {
    await iam.send(
      new UpdateAssumeRolePolicyCommand({ RoleName: role.name, PolicyDocument: JSON.stringify(trustPolicy) }),
    );
  }
  if (current.MaxSessionDuration !== MAX_SESSION_DURATION_SECONDS) {
    await iam.send(
      new UpdateRoleCommand({ RoleName: role.name, MaxSessionDuration: MAX_SESSION_DURATION_SECONDS }),
    );
  }
  if (!current.Tags?.some((t) => t.Key === DEMO_TAG.Key && t.Value === DEMO_TAG.Value)) {
    await iam.send(new TagRoleCommand({ RoleName: role.name, Tags: [DEMO_TAG] }));
  }
  return { arn: roleArn(current, role.name), created: false };
}

async function getRole(iam: IAMClient, name: string): Promise<Role | undefined> {
  try {
    return (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
  } catch (err) {
    if (err instanceof NoSuchEntityException) return undefined;
    throw err;
  }
}

function roleArn(role: Role | undefined, name: string): string {
  if (!role?.Arn) throw new Error(`IAM returned no ARN for role ${name}`);
  return role.Arn;
}

async function ensureRolePermissions(iam: IAMClient, role: DemoRole, partition: string): Promise<void> {
  const policyArn = `arn:${partition}:iam::aws:policy/${role.managedPolicy}`;
  const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: role.name }));
  if (attached.AttachedPolicies?.some((p) => p.PolicyArn === policyArn)) return;
  try {
    await iam.send(new AttachRolePolicyCommand({ RoleName: role.name, PolicyArn: policyArn }));
  } catch (err) {
    // moto only knows AWS managed policies when started with MOTO_IAM_LOAD_MANAGED_POLICIES=true.
    if (!(err instanceof NoSuchEntityException)) throw err;
    const document: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: role.inlineFallback.actions, Resource: '*' }],
    };
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: role.name,
        PolicyName: role.inlineFallback.name,
        PolicyDocument: JSON.stringify(document),
      }),
    );
  }
}

/** IAM returns policy documents URL-encoded; key order is irrelevant to their meaning. */
function sameDocument(encoded: string | undefined, wanted: PolicyDocument): boolean {
  if (encoded === undefined) return false;
  try {
    return canonicalJson(JSON.parse(decodeURIComponent(encoded))) === canonicalJson(wanted);
  } catch {
    return false;
  }
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
