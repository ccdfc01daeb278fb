import {
  DescribePermissionSetCommand,
  ListInstancesCommand,
  ListPermissionSetsCommand,
  type SSOAdminClient,
} from '@aws-sdk/client-sso-admin';

/** A permission set as PIM needs it: its ARN (for assignments) and its SessionDuration in seconds. */
export interface PermissionSetRef {
  instanceArn: string;
  arn: string;
  name: string;
  /** seconds; Identity Center's default (1 hour) when the permission set names none */
  sessionDurationSeconds: number;
}

/** Identity Center has no instance, or several, so Ferry cannot tell which one to use. */
export class IdentityCenterInstanceUnknown extends Error {
  constructor(count: number) {
    super(
      count === 0
        ? 'no IAM Identity Center instance is visible with the configured AWS credentials'
        : `${count} IAM Identity Center instances are visible; Ferry expects exactly one`,
    );
    this.name = 'IdentityCenterInstanceUnknown';
  }
}

/** ISO 8601 durations as Identity Center writes SessionDuration (PT1H, PT8H, PT1H30M). */
export function isoDurationSeconds(text: string): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(text);
  if (!m || (!m[1] && !m[2] && !m[3])) throw new Error(`not an ISO 8601 duration: ${text}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/**
 * Finds a permission set by name: ListInstances (exactly one), ListPermissionSets, DescribePermissionSet
 * for each until the name matches (Identity Center has no lookup by name). The instance is remembered;
 * permission sets are not (one may be deleted and created again under the same name).
 */
export class PermissionSetLookup {
  private instance: Promise<string> | null = null;

  constructor(private readonly sso: SSOAdminClient) {}

  instanceArn(): Promise<string> {
    this.instance ??= (async () => {
      const res = await this.sso.send(new ListInstancesCommand({}));
      const list = res.Instances ?? [];
      if (list.length !== 1 || !list[0]!.InstanceArn) throw new IdentityCenterInstanceUnknown(list.length);
      return list[0]!.InstanceArn;
    })().catch((err: unknown) => {
      this.instance = null;
      throw err;
    });
    return this.instance;
  }

  /** The permission set of that name, or null when Identity Center has none. */
  async byName(name: string): Promise<PermissionSetRef | null> {
    const instanceArn = await this.instanceArn();
    let token: string | undefined;
    do {
      const page = await this.sso.send(
        new ListPermissionSetsCommand({ InstanceArn: instanceArn, NextToken: token, MaxResults: 100 }),
      );
      for (const arn of page.PermissionSets ?? []) {
        const { PermissionSet: ps } = await this.sso.send(
          new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
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
