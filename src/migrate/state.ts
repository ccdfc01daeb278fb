import { InvalidInput, NotFound } from '../errors.js';
import type { AccountInventory } from './inventory.js';
import { MIGRATION_STATES, type MigrationPlan, type MigrationState, type UserChecklist } from './plan.js';

/**
 * The per-user checklist (mapped → signed in through Ferry → IAM user removed), kept in a JSON file next
 * to the plan so it travels with it and needs no server. States only move forward, each with its date.
 */
export interface MigrationStateFile {
  kind: 'ferry-migration-state';
  version: 1;
  users: Array<UserChecklist & { history: Array<{ state: MigrationState; at: string }> }>;
}

const ORDER: Record<MigrationState, number> = { unmapped: 0, mapped: 1, 'signed-in': 2, removed: 3 };

/** A new state file for `plan`, keeping the progress already recorded in `previous` (a re-plan never goes back). */
export function stateFromPlan(
  plan: MigrationPlan,
  previous: MigrationStateFile | null,
  at: Date,
): MigrationStateFile {
  const old = new Map((previous?.users ?? []).map((u) => [`${u.account}/${u.user}`, u]));
  const users = plan.accounts.flatMap((a) =>
    a.users.map((u) => {
      const before = old.get(`${u.account}/${u.user}`);
      if (before && ORDER[before.state] >= ORDER[u.state])
        return { ...u, state: before.state, history: before.history };
      return { ...u, history: [...(before?.history ?? []), { state: u.state, at: at.toISOString() }] };
    }),
  );
  // Users gone from the new inventory but tracked before were removed meanwhile.
  const current = new Set(users.map((u) => `${u.account}/${u.user}`));
  for (const [key, u] of old) if (!current.has(key)) users.push(advance(u, 'removed', at));
  return { kind: 'ferry-migration-state', version: 1, users };
}

export function parseState(value: unknown): MigrationStateFile {
  const v = value as Partial<MigrationStateFile> | null;
  if (v?.kind !== 'ferry-migration-state' || !Array.isArray(v.users))
    throw new InvalidInput('not a Ferry migration state file (kind ferry-migration-state)', 'state');
  return v as MigrationStateFile;
}

/** `ferry migrate status --mark USER signed-in|removed`: USER is a name, or ACCOUNT/NAME when names repeat. */
export function mark(state: MigrationStateFile, ref: string, to: string, at: Date): UserChecklist {
  if (to !== 'signed-in' && to !== 'removed')
    throw new InvalidInput(`--mark takes signed-in or removed (got ${to})`, 'mark');
  const matches = state.users.filter((u) => u.user === ref || `${u.account}/${u.user}` === ref);
  if (matches.length === 0) throw new NotFound('IAM user', ref);
  if (matches.length > 1)
    throw new InvalidInput(`${ref} is in several accounts: write ACCOUNT/${ref}`, 'mark');
  const u = matches[0]!;
  if (u.state === 'unmapped' && to === 'signed-in')
    throw new InvalidInput(`${ref} has no role in the plan: there is nothing to sign in to`, 'mark');
  Object.assign(u, advance(u, to, at));
  return u;
}

/** Marks "removed" every tracked user of the inventory's account that no longer exists there. */
export function detectRemoved(state: MigrationStateFile, inv: AccountInventory, at: Date): string[] {
  const present = new Set(inv.users.map((u) => u.name));
  const removed: string[] = [];
  for (const u of state.users) {
    if (u.account !== inv.accountId || present.has(u.user) || u.state === 'removed') continue;
    Object.assign(u, advance(u, 'removed', at));
    removed.push(u.user);
  }
  return removed;
}

function advance<T extends MigrationStateFile['users'][number]>(u: T, to: MigrationState, at: Date): T {
  if (ORDER[u.state] >= ORDER[to]) return u;
  return { ...u, state: to, history: [...u.history, { state: to, at: at.toISOString() }] };
}

export function countByState(users: Array<{ state: MigrationState }>): Record<MigrationState, number> {
  const out = Object.fromEntries(MIGRATION_STATES.map((s) => [s, 0])) as Record<MigrationState, number>;
  for (const u of users) out[u.state]++;
  return out;
}
