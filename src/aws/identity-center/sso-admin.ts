import type { IdentitystoreClient } from '@aws-sdk/client-identitystore';
import type { SSOAdminClient } from '@aws-sdk/client-sso-admin';
import { Conflict } from '../../errors.js';
import { identityStoreSdk, ssoAdminSdk } from '../sdk.js';

/** How Ferry reaches IAM Identity Center's admin API (and the identity store): config `aws.*`. */
export interface IdentityCenterConnection {
  /** the local AWS; omit for AWS itself */
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** the access portal URL, when configured (config identityCenter.startUrl); else derived */
  startUrl?: string;
}

export interface IdentityCenterInstance {
  instanceArn: string;
  identityStoreId: string;
  /** the AWS access portal, for the AWS CLI's own `sso` profiles */
  startUrl: string;
}

export interface IdentityCenterClients {
  /** created on first use, with the SDK package (a server that never pushes loads neither; ADR 0046) */
  readonly ssoAdmin: SSOAdminClient;
  readonly identityStore: IdentitystoreClient;
  instance(): Promise<IdentityCenterInstance>;
  /** a group's or user's Identity Center id by its display name / user name; null when it is not there */
  principalId(type: 'GROUP' | 'USER', name: string): Promise<string | null>;
  destroy(): void;
}

export function sdkConfig(conn: IdentityCenterConnection) {
  const credentials =
    conn.credentials ??
    (conn.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
  return {
    region: conn.region,
    ...(conn.endpoint === undefined ? {} : { endpoint: conn.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  };
}

/** The Identity Center instance (there is one per organization) and the clients that talk to it. */
export function openIdentityCenter(conn: IdentityCenterConnection): IdentityCenterClients {
  const config = sdkConfig(conn);
  let ssoAdmin: SSOAdminClient | undefined;
  let identityStore: IdentitystoreClient | undefined;
  let instance: Promise<IdentityCenterInstance> | null = null;
  const clients: IdentityCenterClients = {
    get ssoAdmin() {
      ssoAdmin ??= new ssoAdminSdk.SSOAdminClient(config);
      return ssoAdmin;
    },
    get identityStore() {
      identityStore ??= new identityStoreSdk.IdentitystoreClient(config);
      return identityStore;
    },
    instance() {
      instance ??= (async () => {
        const res = await clients.ssoAdmin.send(new ssoAdminSdk.ListInstancesCommand({}));
        const all = (res.Instances ?? []).filter((i) => i.InstanceArn && i.IdentityStoreId);
        if (all.length !== 1)
          throw new Conflict(
            `expected one IAM Identity Center instance in ${conn.region}, found ${all.length}; enable Identity Center (organization instance) or set aws.region`,
          );
        const i = all[0]!;
        return {
          instanceArn: i.InstanceArn!,
          identityStoreId: i.IdentityStoreId!,
          startUrl: conn.startUrl ?? `https://${i.IdentityStoreId}.awsapps.com/start`,
        };
      })();
      instance.catch(() => {
        instance = null;
      });
      return instance;
    },
    async principalId(type, name) {
      const { identityStoreId } = await clients.instance();
      try {
        if (type === 'GROUP') {
          const res = await clients.identityStore.send(
            new identityStoreSdk.GetGroupIdCommand({
              IdentityStoreId: identityStoreId,
              AlternateIdentifier: {
                UniqueAttribute: { AttributePath: 'displayName', AttributeValue: name },
              },
            }),
          );
          return res.GroupId ?? null;
        }
        const res = await clients.identityStore.send(
          new identityStoreSdk.GetUserIdCommand({
            IdentityStoreId: identityStoreId,
            AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: name } },
          }),
        );
        return res.UserId ?? null;
      } catch (err) {
        if ((err as { name?: string }).name === 'ResourceNotFoundException') return null;
        throw err;
      }
    },
    destroy() {
      ssoAdmin?.destroy();
      identityStore?.destroy();
    },
  };
  return clients;
}

/**
 * The demo's stand-in for Ferry's SCIM push, which moto cannot receive: the groups in the local Identity
 * Center's identity store, so account assignments can name them. Idempotent.
 */
export async function ensureIdentityStoreGroups(
  conn: IdentityCenterConnection,
  names: string[],
): Promise<void> {
  const { CreateGroupCommand } = await import('@aws-sdk/client-identitystore');
  const c = openIdentityCenter(conn);
  try {
    const { identityStoreId } = await c.instance();
    for (const name of names)
      if (!(await c.principalId('GROUP', name)))
        await c.identityStore.send(
          new CreateGroupCommand({ IdentityStoreId: identityStoreId, DisplayName: name }),
        );
  } finally {
    c.destroy();
  }
}

/**
 * The demo's stand-in for the SCIM push of users: each person in the local Identity Center's identity
 * store under their user name, so PIM can assign them a permission set (it finds them by GetUserId).
 * Idempotent.
 */
export async function ensureIdentityStoreUsers(
  conn: IdentityCenterConnection,
  users: Array<{ userName: string; displayName: string }>,
): Promise<void> {
  const { CreateUserCommand } = await import('@aws-sdk/client-identitystore');
  const c = openIdentityCenter(conn);
  try {
    const { identityStoreId } = await c.instance();
    for (const u of users) {
      if (await c.principalId('USER', u.userName)) continue;
      const [given, ...rest] = u.displayName.split(/\s+/);
      await c.identityStore.send(
        new CreateUserCommand({
          IdentityStoreId: identityStoreId,
          UserName: u.userName,
          DisplayName: u.displayName,
          Name: { GivenName: given || u.userName, FamilyName: rest.join(' ') || u.userName },
        }),
      );
    }
  } finally {
    c.destroy();
  }
}
