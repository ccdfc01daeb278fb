import type { IAMClient } from '@aws-sdk/client-iam';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsAccount, Partition } from '../access/aws-accounts.js';
import { iamSdk, stsSdk } from './sdk.js';

/** How to reach one AWS account: real AWS when `endpoint` is omitted, the local AWS (moto) when it is given. */
export interface AwsAccountConnection {
  /** Omit to talk to real AWS; the local AWS (moto) passes its endpoint here. */
  endpoint?: string;
  region: string;
  /** Defaults to dummy credentials when an endpoint is given, else to the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The 12-digit account the caller means to change; anything else is refused (see WrongAwsAccount). */
  accountId: string;
}

/**
 * The credentials in use belong to another AWS account (or partition) than the one named: nothing was changed.
 * This is the guard against pointing `ferry aws setup-account` at the wrong account with real credentials.
 */
export class WrongAwsAccount extends Error {
  readonly expected: { accountId: string; partition?: string };
  readonly actual: { accountId: string; partition: string };
  constructor(
    expected: { accountId: string; partition?: string },
    actual: { accountId: string; partition: string },
  ) {
    const want = expected.partition
      ? `${expected.accountId} (partition ${expected.partition})`
      : expected.accountId;
    super(
      `the AWS credentials in use are for account ${actual.accountId} (partition ${actual.partition}), ` +
        `not ${want}; nothing was changed`,
    );
    this.name = 'WrongAwsAccount';
    this.expected = expected;
    this.actual = actual;
  }
}

export interface AccountClients {
  iam: IAMClient;
  sts: STSClient;
  destroy(): void;
}

export function openAccountClients(conn: AwsAccountConnection): AccountClients {
  const credentials =
    conn.credentials ??
    // moto accepts any credentials; against real AWS the SDK's own chain must find real ones.
    (conn.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
  const config = {
    region: conn.region,
    ...(conn.endpoint === undefined ? {} : { endpoint: conn.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  };
  const iam = new iamSdk.IAMClient(config);
  const sts = new stsSdk.STSClient(config);
  return {
    iam,
    sts,
    destroy() {
      iam.destroy();
      sts.destroy();
    },
  };
}

/**
 * Asks STS who the caller is and throws WrongAwsAccount unless it is `accountId` (and `partition`, when given).
 * Returns the caller's partition, read from its ARN.
 */
export async function checkCallerAccount(
  sts: STSClient,
  accountId: string,
  partition?: string,
): Promise<{ partition: string }> {
  const caller = await sts.send(new stsSdk.GetCallerIdentityCommand({}));
  if (!caller.Account || !caller.Arn) throw new Error('STS GetCallerIdentity returned no account or ARN');
  const callerPartition = caller.Arn.split(':')[1] ?? '';
  if (caller.Account !== accountId || (partition !== undefined && callerPartition !== partition)) {
    throw new WrongAwsAccount(partition === undefined ? { accountId } : { accountId, partition }, {
      accountId: caller.Account,
      partition: callerPartition,
    });
  }
  return { partition: callerPartition };
}

export const ACCOUNT_ID_PATTERN = /^\d{12}$/;

/**
 * The region Ferry talks to an account's STS and IAM in. IAM and STS of the aws-us-gov and aws-cn
 * partitions answer only in their own regions (a commercial region would reach another partition's
 * IAM, where the role does not exist), so those ignore the configured region.
 */
export function partitionRegion(partition: Partition, defaultRegion: string): string {
  switch (partition) {
    case 'aws-us-gov':
      return 'us-gov-west-1';
    case 'aws-cn':
      return 'cn-north-1';
    default:
      return defaultRegion;
  }
}

/** What every AWS call for one registered account uses (credential issuance and revocation alike). */
export interface AccountConnectionDefaults {
  /** config aws.region: the region for accounts in the aws partition */
  region: string;
  /** config aws.endpoint: the local AWS for accounts without an endpoint of their own */
  endpoint?: string | null;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * How to reach one registered account: its own endpoint (else the configured one, else AWS itself) and its
 * partition's region. The one place that decides, so a deny lands where the credentials came from.
 */
export function accountConnection(
  account: Pick<AwsAccount, 'id' | 'partition' | 'endpointUrl'>,
  defaults: AccountConnectionDefaults,
): AwsAccountConnection & { partition: Partition } {
  const endpoint = account.endpointUrl ?? defaults.endpoint ?? undefined;
  return {
    accountId: account.id,
    partition: account.partition,
    region: partitionRegion(account.partition, defaults.region),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(defaults.credentials ? { credentials: defaults.credentials } : {}),
  };
}
