import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Actor, AuditContext } from '../audit/actor.js';
import { NotFound } from '../errors.js';
import { generateTotpSecret } from '../identity/totp.js';
import type { Services } from './services.js';
import { applyTenant } from './tenant.js';

/** The example tenant of Microsoft's Entra-for-AWS guide. */
export const DEMO_USERS = [
  {
    userName: 'test-awsadmin@contoso.example',
    displayName: 'Test-AWSAdmin',
    givenName: 'Test',
    familyName: 'AWSAdmin',
    department: 'Cloud Platform',
    group: 'AWS-Account1-Administrators',
  },
  {
    userName: 'test-awsdeveloper@contoso.example',
    displayName: 'Test-AWSDeveloper',
    givenName: 'Test',
    familyName: 'AWSDeveloper',
    department: 'Engineering',
    group: 'AWS-Account1-Developers',
  },
  {
    userName: 'test-helpdesk@contoso.example',
    displayName: 'Test-Helpdesk',
    givenName: 'Test',
    familyName: 'Helpdesk',
    department: 'IT Support',
    group: 'Ferry-Helpdesk',
  },
  {
    userName: 'test-auditor@contoso.example',
    displayName: 'Test-Auditor',
    givenName: 'Test',
    familyName: 'Auditor',
    department: 'Internal Audit',
    group: 'Ferry-Auditors',
  },
] as const;

/**
 * Ferry's own admin roles in the demo, each granted to a group (docs/api.md, "Who may call the admin
 * API"): Test-AWSAdmin administers Ferry, Test-Helpdesk resets MFA, Test-Auditor reads everything.
 */
export const DEMO_ADMIN_GROUPS = [
  {
    displayName: 'Ferry-Administrators',
    description: 'Ferry Administrator (admin:ferry-administrator)',
    role: 'ferry-administrator',
    members: ['test-awsadmin@contoso.example'],
  },
  {
    displayName: 'Ferry-Helpdesk',
    description: 'Helpdesk (admin:helpdesk): users and MFA resets',
    role: 'helpdesk',
    members: ['test-helpdesk@contoso.example'],
  },
  {
    displayName: 'Ferry-Auditors',
    description: 'Auditor (admin:auditor): reads everything, changes nothing',
    role: 'auditor',
    members: ['test-auditor@contoso.example'],
  },
] as const;

export const DEMO_GROUPS = [
  {
    displayName: 'AWS-Account1-Administrators',
    description: 'Administrator role in AWS account Account1 (123456789012)',
  },
  {
    displayName: 'AWS-Account1-Developers',
    description: 'Developer role in AWS account Account1 (123456789012)',
  },
] as const;

/** The demo's AWS side, as a tenant file would say it (see examples/tenant.yaml). */
export const DEMO_TENANT_DOCUMENT = {
  groups: DEMO_GROUPS.map((g) => ({ name: g.displayName, description: g.description })),
  accounts: [
    {
      id: '123456789012',
      alias: 'Account1',
      partition: 'aws',
      samlProviderName: 'Ferry',
      roles: [
        { name: 'Administrator', maxSessionDuration: 43200, description: 'AdministratorAccess' },
        { name: 'Developer', maxSessionDuration: 43200, description: 'S3 access only' },
      ],
    },
  ],
  assignments: [
    { group: 'AWS-Account1-Administrators', account: 'Account1', role: 'Administrator' },
    { group: 'AWS-Account1-Developers', account: 'Account1', role: 'Developer' },
  ],
  // IAM Identity Center: a read-only permission set for the developers in Account1 (docs/identity-center.md).
  permissionSets: [
    {
      name: 'ReadOnly',
      description: 'Read-only access to every service',
      sessionDuration: 'PT4H',
      managedPolicies: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
    },
    {
      // assigned to nobody: developers activate it just in time (eligibility below); its sessions end
      // within an hour of the activation, as an elevated set's SessionDuration must not outlast one
      name: 'AdministratorAccess',
      description: 'Full access, just in time',
      sessionDuration: 'PT1H',
      managedPolicies: ['arn:aws:iam::aws:policy/AdministratorAccess'],
    },
  ],
  permissionSetAssignments: [
    { group: 'AWS-Account1-Developers', account: 'Account1', permissionSet: 'ReadOnly' },
  ],
  // Just in time: developers may activate Administrator for at most an hour, saying why, once a member
  // of AWS-Account1-Administrators approves.
  eligibilities: [
    {
      group: 'AWS-Account1-Developers',
      account: 'Account1',
      role: 'Administrator',
      maxDuration: '1h',
      requireJustification: true,
      approvers: { groups: ['AWS-Account1-Administrators'] },
      approvalsRequired: 1,
    },
    {
      group: 'AWS-Account1-Developers',
      target: 'aws:Account1/permission-set/AdministratorAccess',
      maxDuration: '1h',
      requireJustification: true,
      approvers: { groups: ['AWS-Account1-Administrators'] },
      approvalsRequired: 1,
    },
  ],
  // EC2 Linux: both groups may log in as ec2-user on every host, with a 15-minute certificate.
  sshLogins: [
    { group: 'AWS-Account1-Administrators', hosts: '*', logins: ['ec2-user'], portForwarding: true },
    { group: 'AWS-Account1-Developers', hosts: '*', logins: ['ec2-user'] },
  ],
  // Conditional access (docs/conditional-access.md): MFA everywhere, and a trial of phishing-resistant
  // MFA for administrators in report-only (see its `access.report-only` events in the audit trail).
  namedLocations: [{ name: 'office', ranges: ['203.0.113.0/24'] }],
  policies: [
    {
      name: 'Everyone needs MFA for AWS',
      state: 'on',
      include: { all: true },
      targets: ['aws:*/*'],
      grant: { require: ['mfa'] },
      session: { signInFrequency: '12h' },
    },
    {
      name: 'Administrators need a security key (trial)',
      state: 'report-only',
      include: { groups: ['AWS-Account1-Administrators'] },
      targets: ['aws:*/Administrator'],
      grant: { require: ['phishing-resistant-mfa'] },
    },
  ],
};

export interface DemoUserCredentials {
  displayName: string;
  userName: string;
  password: string;
  totpSecret: string;
  groups: string[];
}

export interface DemoCredentials {
  ferryUrl: string;
  adminToken: string;
  users: DemoUserCredentials[];
  aws: {
    endpoint: string | null;
    region: string;
    accountId: string;
    accountName: string;
    roles: Array<{ name: string; arn: string }>;
  } | null;
  /** the demo's internal app behind the identity-aware proxy */
  proxiedApp?: string;
  /** the permission set made in the local Identity Center */
  permissionSets?: string;
}

const demoActor: Actor = { type: 'operator', name: 'demo' };
const ctx: AuditContext = { actor: demoActor };

/** Readable but strong: 16 base32 characters (80 bits) after a fixed prefix. */
function demoPassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(16);
  return `Ferry-${Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')}`;
}

function readCredentials(file: string): DemoCredentials | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials;
  } catch {
    return null;
  }
}

/**
 * Creates the demo users, groups and memberships if they are absent, and makes sure every demo user
 * has a password and an authenticator whose secrets are in the credentials file. Idempotent: a second
 * run reuses what the file holds and changes nothing.
 */
export async function ensureDemoTenant(
  services: Services,
  credentialsFile: string,
): Promise<Omit<DemoCredentials, 'ferryUrl' | 'aws'>> {
  const saved = readCredentials(credentialsFile);
  for (const group of [
    ...DEMO_GROUPS,
    ...DEMO_ADMIN_GROUPS.map((g) => ({ displayName: g.displayName, description: g.description })),
  ]) {
    try {
      await services.groups.get(group.displayName);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      await services.groups.create(ctx, group);
    }
  }
  const users: DemoUserCredentials[] = [];
  for (const demo of DEMO_USERS) {
    const known = saved?.users.find((u) => u.userName === demo.userName);
    let user = await services.users.get(demo.userName).catch((err: unknown) => {
      if (err instanceof NotFound) return null;
      throw err;
    });
    let password = known?.password;
    let totpSecret = known?.totpSecret;
    if (!user) {
      password = demoPassword();
      user = await services.users.create(ctx, {
        userName: demo.userName,
        displayName: demo.displayName,
        givenName: demo.givenName,
        familyName: demo.familyName,
        emails: [{ value: demo.userName, type: 'work', primary: true }],
        attributes: { department: demo.department },
        password,
      });
      totpSecret = undefined;
    } else if (!password) {
      // The credentials file was lost: issue fresh secrets rather than leave the demo unusable.
      password = demoPassword();
      await services.users.setPassword(ctx, user.id, password);
      totpSecret = undefined;
    }
    if (!totpSecret) {
      totpSecret = generateTotpSecret();
      await services.totp.reset(ctx, user);
      const u = user;
      const secret = totpSecret;
      await services.store.db
        .transaction()
        .execute((trx) => services.totp.enroll(trx, ctx, u, { confirmed: true, secret }));
    }
    await services.groups.setMembership(ctx, demo.group, user.id, true);
    users.push({
      displayName: demo.displayName,
      userName: demo.userName,
      password,
      totpSecret,
      groups: [demo.group],
    });
  }
  for (const admin of DEMO_ADMIN_GROUPS) {
    const group = await services.groups.get(admin.displayName);
    await services.adminRoles.add(ctx, { type: 'group', id: group.id, name: group.displayName }, admin.role);
    for (const member of admin.members) {
      const user = await services.users.get(member);
      await services.groups.setMembership(ctx, group.id, user.id, true);
      const shown = users.find((u) => u.userName === member);
      if (shown && !shown.groups.includes(admin.displayName)) shown.groups.push(admin.displayName);
    }
  }
  await applyTenant(services, ctx, DEMO_TENANT_DOCUMENT, { dryRun: false, prune: false });
  let adminToken = saved?.adminToken;
  if (!adminToken || !(await services.apiTokens.authenticate(adminToken))) {
    adminToken = (await services.apiTokens.create(ctx, { name: 'demo-admin' })).token;
  }
  return { adminToken, users };
}

export function writeCredentials(file: string, credentials: DemoCredentials): void {
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
}
