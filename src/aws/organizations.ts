import type { OrgSnapshot } from '../access/organization.js';
import { type IdentityCenterConnection, sdkConfig } from './identity-center/sso-admin.js';
import { organizationsSdk } from './sdk.js';

export interface DiscoveredOrganization extends OrgSnapshot {
  managementAccountId: string | null;
  delegatedAdministrators: Array<{ accountId: string; name: string }>;
}

/**
 * Reads AWS Organizations from the management account (or a delegated administrator): the root, every OU
 * (walked from the root, as Organizations has no "list all OUs"), each account with the OU it is in, and
 * the delegated administrators.
 */
export async function discoverOrganization(conn: IdentityCenterConnection): Promise<DiscoveredOrganization> {
  const client = new organizationsSdk.OrganizationsClient(sdkConfig(conn));
  try {
    const org = await client.send(new organizationsSdk.DescribeOrganizationCommand({}));
    const units: OrgSnapshot['units'] = [];
    const accounts: OrgSnapshot['accounts'] = [];
    const roots = (await client.send(new organizationsSdk.ListRootsCommand({}))).Roots ?? [];
    const queue: Array<{ id: string; name: string; parentId: string | null }> = roots.map((r) => ({
      id: r.Id!,
      name: r.Name ?? 'Root',
      parentId: null,
    }));
    while (queue.length > 0) {
      const unit = queue.shift()!;
      units.push(unit);
      let token: string | undefined;
      do {
        const res = await client.send(
          new organizationsSdk.ListOrganizationalUnitsForParentCommand({
            ParentId: unit.id,
            NextToken: token,
          }),
        );
        for (const ou of res.OrganizationalUnits ?? [])
          queue.push({ id: ou.Id!, name: ou.Name!, parentId: unit.id });
        token = res.NextToken;
      } while (token);
      do {
        const res = await client.send(
          new organizationsSdk.ListAccountsForParentCommand({ ParentId: unit.id, NextToken: token }),
        );
        for (const a of res.Accounts ?? [])
          accounts.push({
            id: a.Id!,
            name: a.Name ?? a.Id!,
            email: a.Email ?? null,
            status: a.Status ?? 'ACTIVE',
            parentId: unit.id,
          });
        token = res.NextToken;
      } while (token);
    }
    const delegated = [];
    let token: string | undefined;
    do {
      const res = await client.send(
        new organizationsSdk.ListDelegatedAdministratorsCommand({ NextToken: token }),
      );
      for (const d of res.DelegatedAdministrators ?? [])
        delegated.push({ accountId: d.Id!, name: d.Name ?? d.Id! });
      token = res.NextToken;
    } while (token);
    return {
      units,
      accounts,
      managementAccountId: org.Organization?.MasterAccountId ?? null,
      delegatedAdministrators: delegated,
    };
  } finally {
    client.destroy();
  }
}

/** An account name as a Ferry alias (letters, digits, . _ -; at most 63). */
export function aliasOf(name: string, id: string): string {
  const alias = name
    .replace(/[^\w.-]+/g, '-')
    .replace(/^[^a-zA-Z0-9]+/, '')
    .slice(0, 63);
  return alias || `account-${id}`;
}
