import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Principal } from '../../src/access/principal.js';
import type { Target } from '../../src/access/targets.js';
import type { Store } from '../../src/store/open.js';
import type { Database } from '../../src/store/schema.js';

export interface DirectoryShape {
  users: number;
  groups: number;
  accounts: number;
  /** each user is in 1..maxGroupsPerUser groups (uniformly; about half that on average) */
  maxGroupsPerUser: number;
  /** share of groups assigned a second role */
  secondRoleShare: number;
  /** share of users with a role assigned directly, besides their groups' */
  directShare: number;
  /** stored as every user's password hash (one known password for the whole directory), or null */
  passwordHash: string | null;
}

export const ROLE_NAMES = ['Administrator', 'Developer', 'ReadOnly', 'Billing', 'SecurityAudit'] as const;
const DEPARTMENTS = [
  'Engineering',
  'Finance',
  'Sales',
  'Marketing',
  'Operations',
  'Legal',
  'Support',
  'Research',
];

export function shapeFor(users: number, passwordHash: string | null): DirectoryShape {
  return {
    users,
    groups: Math.max(10, Math.round(users / 10)),
    accounts: Math.max(2, Math.round(users / 500)),
    maxGroupsPerUser: 5,
    secondRoleShare: 0.2,
    directShare: 0.05,
    passwordHash,
  };
}

/** What was written, kept in memory so a benchmark can pick principals and targets without queries. */
export interface Directory {
  shape: DirectoryShape;
  userIds: string[];
  userNames: string[];
  groupIds: string[];
  groupNames: string[];
  accountIds: string[];
  /** per user: indices into groupIds */
  memberships: number[][];
  /** per group: [account index, role index] pairs */
  groupTargets: Array<Array<[number, number]>>;
  /** per user with a direct assignment */
  directTargets: Map<number, [number, number]>;
  counts: { users: number; groups: number; memberships: number; assignments: number; roles: number };
}

/** mulberry32: a small seeded PRNG, so every run builds the same directory shape. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function insertBatched<T extends keyof Database>(
  store: Store,
  table: T,
  rows: Array<Record<string, unknown>>,
  columns: number,
): Promise<void> {
  // Well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
  const batch = Math.max(1, Math.floor(12_000 / columns));
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += batch) {
      await trx
        .insertInto(table)
        .values(rows.slice(i, i + batch) as never)
        .execute();
    }
  });
}

/**
 * Writes a directory straight into the tables (users, groups, memberships, AWS accounts and roles,
 * assignments) in batched multi-row inserts inside transactions: setup, not the audited domain path.
 */
export async function populateDirectory(store: Store, shape: DirectoryShape): Promise<Directory> {
  const rnd = prng(0xfe77);
  const pick = (n: number) => Math.floor(rnd() * n);
  const now = new Date().toISOString();

  const accountIds = Array.from({ length: shape.accounts }, (_, i) => String(100_000_000_000 + i * 7919));
  await insertBatched(
    store,
    'aws_accounts',
    accountIds.map((id, i) => ({
      id,
      alias: `account-${i}`,
      alias_key: `account-${i}`,
      partition: 'aws',
      saml_provider_name: 'Ferry',
      created_at: now,
      updated_at: now,
    })),
    7,
  );
  const roles = accountIds.flatMap((account_id) =>
    ROLE_NAMES.map((name, r) => ({
      account_id,
      name,
      path: '/',
      max_session_duration: r === 0 ? 3600 : 43_200,
      description: null,
      created_at: now,
      updated_at: now,
    })),
  );
  await insertBatched(store, 'aws_roles', roles, 7);

  const userIds: string[] = [];
  const userNames: string[] = [];
  const users: Array<Record<string, unknown>> = [];
  for (let i = 0; i < shape.users; i++) {
    const id = randomUUID();
    const userName = `user${i}@contoso.example`;
    userIds.push(id);
    userNames.push(userName);
    users.push({
      id,
      user_name: userName,
      user_name_key: userName,
      display_name: `User ${i}`,
      given_name: 'User',
      family_name: String(i),
      emails: JSON.stringify([{ value: userName, type: 'work', primary: true }]),
      active: 1,
      external_id: randomUUID(),
      attributes: JSON.stringify({
        department: DEPARTMENTS[i % DEPARTMENTS.length],
        costCenter: `CC${1000 + (i % 250)}`,
      }),
      password_hash: shape.passwordHash,
      created_at: now,
      updated_at: now,
      version: 1,
    });
  }
  await insertBatched(store, 'users', users, 14);
  users.length = 0;

  const groupIds: string[] = [];
  const groupNames: string[] = [];
  const groups: Array<Record<string, unknown>> = [];
  for (let g = 0; g < shape.groups; g++) {
    const id = randomUUID();
    const name = `AWS-Group-${g}`;
    groupIds.push(id);
    groupNames.push(name);
    groups.push({
      id,
      display_name: name,
      display_name_key: name.toLowerCase(),
      description: null,
      external_id: randomUUID(),
      created_at: now,
      updated_at: now,
      version: 1,
    });
  }
  await insertBatched(store, 'groups', groups, 8);

  const memberships: number[][] = [];
  const memberRows: Array<Record<string, unknown>> = [];
  for (let u = 0; u < shape.users; u++) {
    const count = 1 + pick(shape.maxGroupsPerUser);
    const mine = new Set<number>();
    while (mine.size < count) mine.add(pick(shape.groups));
    memberships.push([...mine]);
    for (const g of mine) memberRows.push({ group_id: groupIds[g], user_id: userIds[u], created_at: now });
  }
  await insertBatched(store, 'group_members', memberRows, 3);

  const assignmentRows: Array<Record<string, unknown>> = [];
  const assignment = (type: 'group' | 'user', principalId: string, a: number, r: number) => ({
    id: randomUUID(),
    principal_type: type,
    principal_id: principalId,
    account_id: accountIds[a],
    role_name: ROLE_NAMES[r],
    created_at: now,
    created_by: 'operator:bench',
  });
  const groupTargets: Array<Array<[number, number]>> = [];
  for (let g = 0; g < shape.groups; g++) {
    const first: [number, number] = [pick(shape.accounts), pick(ROLE_NAMES.length)];
    const targets: Array<[number, number]> = [first];
    if (rnd() < shape.secondRoleShare) {
      const second: [number, number] = [pick(shape.accounts), pick(ROLE_NAMES.length)];
      if (second[0] !== first[0] || second[1] !== first[1]) targets.push(second);
    }
    groupTargets.push(targets);
    for (const [a, r] of targets) assignmentRows.push(assignment('group', groupIds[g]!, a, r));
  }
  const directTargets = new Map<number, [number, number]>();
  for (let u = 0; u < shape.users; u++) {
    if (rnd() >= shape.directShare) continue;
    const t: [number, number] = [pick(shape.accounts), pick(ROLE_NAMES.length)];
    directTargets.set(u, t);
    assignmentRows.push(assignment('user', userIds[u]!, t[0], t[1]));
  }
  await insertBatched(store, 'assignments', assignmentRows, 7);
  // PostgreSQL's autovacuum analyses new tables soon after a bulk load; do it now so plans are the
  // steady-state ones. (SQLite: Ferry never runs ANALYZE, so neither does the benchmark.)
  if (store.engine === 'postgres') await sql`analyze`.execute(store.db);

  return {
    shape,
    userIds,
    userNames,
    groupIds,
    groupNames,
    accountIds,
    memberships,
    groupTargets,
    directTargets,
    counts: {
      users: shape.users,
      groups: shape.groups,
      memberships: memberRows.length,
      assignments: assignmentRows.length,
      roles: roles.length,
    },
  };
}

/** The principal a caller would build for user `u` (as principalOf does from the session). */
export function principalFor(d: Directory, u: number): Principal {
  return {
    kind: 'user',
    id: d.userIds[u]!,
    userName: d.userNames[u]!,
    active: true,
    groups: d.memberships[u]!.map((g) => ({ id: d.groupIds[g]!, name: d.groupNames[g]! })),
    attributes: { department: DEPARTMENTS[u % DEPARTMENTS.length]!, costCenter: `CC${1000 + (u % 250)}` },
    amr: ['pwd'],
    authTime: new Date().toISOString(),
  };
}

/** Every AWS role user `u` is entitled to (through groups or directly). */
export function targetsFor(d: Directory, u: number): Array<Extract<Target, { kind: 'aws-role' }>> {
  const pairs = d.memberships[u]!.flatMap((g) => d.groupTargets[g]!);
  const direct = d.directTargets.get(u);
  if (direct) pairs.push(direct);
  const seen = new Map<string, Extract<Target, { kind: 'aws-role' }>>();
  for (const [a, r] of pairs) {
    const account = d.accountIds[a]!;
    const role = ROLE_NAMES[r]!;
    seen.set(`${account}/${role}`, { kind: 'aws-role', account, role });
  }
  return [...seen.values()];
}

export function describe(d: Directory): string {
  const c = d.counts;
  return `${c.users.toLocaleString('en-US')} users, ${c.groups.toLocaleString('en-US')} groups, ${c.memberships.toLocaleString('en-US')} memberships, ${c.roles.toLocaleString('en-US')} roles in ${d.accountIds.length} accounts, ${c.assignments.toLocaleString('en-US')} assignments`;
}
