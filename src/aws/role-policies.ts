import type { AwsAccount } from '../access/aws-accounts.js';
import { type AwsAccountConnection, openAccountClients } from './account-clients.js';
import { iamSdk } from './sdk.js';

export interface RolePolicies {
  roleArn: string;
  /** attached managed policies by ARN, inline ones as role/<role>/<name> */
  policies: Array<{ name: string; policy: { Version?: string; Statement: unknown } }>;
}

/** IAM answers policy documents URL-encoded. */
const documentOf = (text: string | undefined): { Statement: unknown } =>
  JSON.parse(decodeURIComponent(text ?? '{"Statement":[]}')) as { Statement: unknown };

/**
 * Reads one role's identity policies from IAM (read-only: GetRole, ListAttachedRolePolicies,
 * GetPolicy, GetPolicyVersion, ListRolePolicies, GetRolePolicy), and finds the role an IAM Identity
 * Center permission set made in the account (AWSReservedSSO_<name>_<suffix>, ListRoles).
 */
export function rolePoliciesReader(connectionOf: (account: AwsAccount) => AwsAccountConnection) {
  return {
    async read(account: AwsAccount, roleName: string): Promise<RolePolicies> {
      const clients = openAccountClients(connectionOf(account));
      try {
        const { iam } = clients;
        const role = await iam.send(new iamSdk.GetRoleCommand({ RoleName: roleName }));
        const policies: RolePolicies['policies'] = [];
        const attached = await iam.send(new iamSdk.ListAttachedRolePoliciesCommand({ RoleName: roleName }));
        for (const a of attached.AttachedPolicies ?? []) {
          const p = await iam.send(new iamSdk.GetPolicyCommand({ PolicyArn: a.PolicyArn }));
          const v = await iam.send(
            new iamSdk.GetPolicyVersionCommand({
              PolicyArn: a.PolicyArn,
              VersionId: p.Policy?.DefaultVersionId,
            }),
          );
          policies.push({ name: a.PolicyArn!, policy: documentOf(v.PolicyVersion?.Document) });
        }
        const inline = await iam.send(new iamSdk.ListRolePoliciesCommand({ RoleName: roleName }));
        for (const name of inline.PolicyNames ?? []) {
          const p = await iam.send(new iamSdk.GetRolePolicyCommand({ RoleName: roleName, PolicyName: name }));
          policies.push({ name: `role/${roleName}/${name}`, policy: documentOf(p.PolicyDocument) });
        }
        return { roleArn: role.Role?.Arn ?? '', policies };
      } finally {
        clients.destroy();
      }
    },
    async permissionSetRole(account: AwsAccount, permissionSet: string): Promise<string | null> {
      const clients = openAccountClients(connectionOf(account));
      try {
        let marker: string | undefined;
        do {
          const page = await clients.iam.send(
            new iamSdk.ListRolesCommand({ PathPrefix: '/aws-reserved/sso.amazonaws.com/', Marker: marker }),
          );
          const hit = (page.Roles ?? []).find((r) =>
            r.RoleName?.startsWith(`AWSReservedSSO_${permissionSet}_`),
          );
          if (hit?.RoleName) return hit.RoleName;
          marker = page.IsTruncated ? page.Marker : undefined;
        } while (marker);
        return null;
      } finally {
        clients.destroy();
      }
    },
  };
}

export type RolePoliciesReader = ReturnType<typeof rolePoliciesReader>;
