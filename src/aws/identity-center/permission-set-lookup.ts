import { ssoAdminSdk } from '../sdk.js';
import type { IdentityCenterClients } from './sso-admin.js';

/** A permission set as PIM needs it: its ARN (for assignments) and its SessionDuration in seconds. */
export interface PermissionSetRef {
  instanceArn: string;
  arn: string;
  name: string;
  /** seconds; Identity Center's default (1 hour) when the permission set names none */
  sessionDurationSeconds: number;
}

/** ISO 8601 durations as Identity Center writes SessionDuration (PT1H, PT8H, PT1H30M). */
export function isoDurationSeconds(text: string): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(text);
  if (!m || (!m[1] && !m[2] && !m[3])) throw new Error(`not an ISO 8601 duration: ${text}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/**
 * Finds a permission set by name: ListPermissionSets, DescribePermissionSet for each until the name
 * matches (Identity Center has no lookup by name). The instance is the one openIdentityCenter()
 * remembers (one ListInstances for the whole server); permission sets are not remembered (one may be
 * deleted and created again under the same name).
 */
export class PermissionSetLookup {
  constructor(private readonly clients: Pick<IdentityCenterClients, 'ssoAdmin' | 'instance'>) {}

  async instanceArn(): Promise<string> {
    return (await this.clients.instance()).instanceArn;
  }

  /** The permission set of that name, or null when Identity Center has none. */
  async byName(name: string): Promise<PermissionSetRef | null> {
    const sso = this.clients.ssoAdmin;
    const instanceArn = await this.instanceArn();
    let token: string | undefined;
    do {
      const page = await sso.send(
        new ssoAdminSdk.ListPermissionSetsCommand({
          InstanceArn: instanceArn,
          NextToken: token,
          MaxResults: 100,
        }),
      );
      for (const arn of page.PermissionSets ?? []) {
        const { PermissionSet: ps } = await sso.send(
          new ssoAdminSdk.DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
        );
        if (ps?.Name === name)
          return {
            instanceArn,
            arn,
            name,
            sessionDurationSeconds: ps.SessionDuration ? isoDurationSeconds(ps.SessionDuration) : 3600,
          };
      }
      token = page.NextToken;
    } while (token);
    return null;
  }
}
