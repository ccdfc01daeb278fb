import type { PushPlan, PushStep } from './plan.js';

/** One line of a dry run: what would be created, updated or deleted in Identity Center. */
export interface PushChange {
  action: 'create' | 'update' | 'delete' | 'add-members' | 'remove-members';
  kind: 'user' | 'group';
  name: string;
  /** attributes that would change (updates), or the userNames added/removed (member changes) */
  details: string[];
}

export interface PushDiff {
  summary: {
    users: { create: number; update: number; delete: number };
    groups: { create: number; update: number; delete: number };
    members: { add: number; remove: number };
  };
  changes: PushChange[];
}

export function diffOf(plan: PushPlan): PushDiff {
  const summary: PushDiff['summary'] = {
    users: { create: 0, update: 0, delete: 0 },
    groups: { create: 0, update: 0, delete: 0 },
    members: { add: 0, remove: 0 },
  };
  const changes = plan.steps.map((s): PushChange => {
    switch (s.kind) {
      case 'user.create':
        summary.users.create++;
        return { action: 'create', kind: 'user', name: s.userName, details: [] };
      case 'user.update':
        summary.users.update++;
        return { action: 'update', kind: 'user', name: s.userName, details: s.fields };
      case 'user.delete':
        summary.users.delete++;
        return { action: 'delete', kind: 'user', name: s.userName, details: [] };
      case 'group.create':
        summary.groups.create++;
        return { action: 'create', kind: 'group', name: s.displayName, details: [] };
      case 'group.rename':
        summary.groups.update++;
        return { action: 'update', kind: 'group', name: s.displayName, details: ['displayName'] };
      case 'group.delete':
        summary.groups.delete++;
        return { action: 'delete', kind: 'group', name: s.displayName, details: [] };
      case 'members.add':
        summary.members.add += s.members.length;
        return {
          action: 'add-members',
          kind: 'group',
          name: s.displayName,
          details: s.members.map((m) => m.userName),
        };
      default:
        summary.members.remove += s.members.length;
        return {
          action: 'remove-members',
          kind: 'group',
          name: s.displayName,
          details: s.members.map((m) => m.userName),
        };
    }
  });
  return { summary, changes };
}

/** A short label for progress output. */
export function stepLabel(step: PushStep): string {
  const c = diffOf({ steps: [step] }).changes[0]!;
  return `${c.action} ${c.kind} ${c.name}`;
}
