import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../clock.js';
import type { Decision } from '../decision.js';
import type { Principal, Signals } from '../principal.js';
import type { Target } from '../targets.js';
import { ConditionalAccessEngine, type PolicySource } from './engine.js';
import type { PolicyDefinition, Ref } from './policy.js';
import { PolicyIndex, TARGET_MEMO_LIMIT } from './policy-index.js';

const ref = (id: string): Ref => ({ id, name: `name of ${id}` });

function policy(over: {
  all?: boolean;
  users?: string[];
  groups?: string[];
  workloads?: string[];
  excludeUsers?: string[];
  excludeGroups?: string[];
  excludeWorkloads?: string[];
  targets?: string[];
  excludeTargets?: string[];
  conditions?: PolicyDefinition['conditions'];
  grant?: PolicyDefinition['grant'];
  session?: PolicyDefinition['session'];
}): PolicyDefinition {
  return {
    include: {
      all: over.all ?? false,
      users: (over.users ?? []).map(ref),
      groups: (over.groups ?? []).map(ref),
      workloads: (over.workloads ?? []).map(ref),
    },
    exclude: {
      users: (over.excludeUsers ?? []).map(ref),
      groups: (over.excludeGroups ?? []).map(ref),
      workloads: (over.excludeWorkloads ?? []).map(ref),
    },
    targets: over.targets ?? ['all'],
    excludeTargets: over.excludeTargets ?? [],
    conditions: over.conditions ?? {},
    grant: over.grant ?? { block: false, require: ['mfa'], operator: 'AND' },
    session: over.session ?? {},
  };
}

const user = (id: string, groups: string[]): Principal => ({
  kind: 'user',
  id,
  userName: `${id}@contoso.example`,
  active: true,
  groups: groups.map((g) => ({ id: g, name: `name of ${g}` })),
  attributes: {},
  amr: ['pwd'],
  authTime: null,
});
const workload = (id: string): Principal => ({ ...user(id, []), kind: 'workload' });
const role = (account: string, name: string): Target => ({ kind: 'aws-role', account, role: name });
const DEV = role('111122223333', 'Developer');

describe('the policy index', () => {
  it('lists a policy naming a group for exactly the members of that group', () => {
    const index = new PolicyIndex([policy({ groups: ['g1'] }), policy({ groups: ['g2', 'g3'] })]);
    expect(index.candidates(user('u1', ['g1']), DEV)).toEqual([0]);
    expect(index.candidates(user('u2', ['g3', 'g9']), DEV)).toEqual([1]);
    expect(index.candidates(user('u3', ['g1', 'g2', 'g3']), DEV)).toEqual([0, 1]);
    expect(index.candidates(user('u4', ['g9']), DEV)).toEqual([]);
    expect(index.candidates(user('u5', []), DEV)).toEqual([]);
  });

  it('lists everyone-policies for every person and workload, user and workload policies for that one only', () => {
    const index = new PolicyIndex([
      policy({ users: ['u1'] }),
      policy({ all: true }),
      policy({ workloads: ['w1'] }),
      policy({ users: ['u1'], groups: ['g1'] }),
    ]);
    expect(index.candidates(user('u1', ['g1']), DEV)).toEqual([0, 1, 3]);
    expect(index.candidates(user('u2', ['g1']), DEV)).toEqual([1, 3]);
    expect(index.candidates(user('u2', []), DEV)).toEqual([1]);
    expect(index.candidates(workload('w1'), DEV)).toEqual([1, 2]);
    expect(index.candidates(workload('u1'), DEV)).toEqual([1]); // a workload is never a user
  });

  it('leaves out policies whose targets do not cover the request, wildcards and exclusions included', () => {
    const index = new PolicyIndex([
      policy({ all: true, targets: ['aws:*/Dev*'] }),
      policy({ all: true, targets: ['aws:111122223333/*'], excludeTargets: ['aws:*/Developer'] }),
      policy({ all: true, targets: ['ssh:*.prod.internal'] }),
      policy({ all: true, targets: ['ssh:root@*'] }),
      policy({ all: true, targets: ['app:wiki', 'aws:*/ReadOnly'] }),
      policy({ all: true, targets: ['all'], excludeTargets: ['app:*'] }),
    ]);
    const p = user('u1', []);
    expect(index.candidates(p, DEV)).toEqual([0, 5]);
    expect(index.candidates(p, role('111122223333', 'ReadOnly'))).toEqual([1, 4, 5]);
    expect(index.candidates(p, role('999999999999', 'DEVELOPER'))).toEqual([0, 5]); // globs ignore case
    expect(index.candidates(p, { kind: 'ssh', host: 'db.prod.internal', login: 'ec2-user' })).toEqual([2, 5]);
    expect(index.candidates(p, { kind: 'ssh', host: 'db.dev.internal', login: 'root' })).toEqual([3, 5]);
    expect(index.candidates(p, { kind: 'app', name: 'wiki' })).toEqual([4]);
  });

  it('keeps a policy that names an OU as a candidate for every target (its OUs are read per request)', () => {
    const index = new PolicyIndex([
      policy({ all: true, targets: ['aws:ou/Root/Workloads/*'] }),
      policy({ all: true, targets: ['all'], excludeTargets: ['aws:ou/r-ab12/*'] }),
      policy({ all: true, targets: ['app:*'] }),
    ]);
    expect(index.namesOus).toBe(true);
    expect(index.candidates(user('u1', []), DEV)).toEqual([0, 1]);
    expect(new PolicyIndex([policy({ all: true })]).namesOus).toBe(false);
  });

  it('starts its memo of targets over past the limit and still answers the same', () => {
    const index = new PolicyIndex([policy({ all: true, targets: ['ssh:*.prod.internal'] })]);
    const p = user('u1', []);
    for (let i = 0; i <= TARGET_MEMO_LIMIT + 10; i++)
      expect(index.candidates(p, { kind: 'ssh', host: `h${i}.prod.internal`, login: 'x' })).toEqual([0]);
    expect(index.candidates(p, { kind: 'ssh', host: 'h1.dev.internal', login: 'x' })).toEqual([]);
  });
});

/** A fixed policy set, as the engine reads it from the database. */
function sourceOf(definitions: PolicyDefinition[]): PolicySource {
  return {
    generation: async () => 1,
    active: async () =>
      definitions.map((d, i) => ({
        id: `p${i}`,
        version: 1,
        // names sort differently from positions, so the evaluation order is the engine's, not ours
        name: `policy ${String((i * 7) % definitions.length).padStart(3, '0')}-${i}`,
        state: i % 5 === 4 ? 'report-only' : 'on',
        definition: JSON.stringify(d),
      })),
    locations: async () => new Map(),
    userRisk: async () => 'none',
    country: () => null,
    recordReportOnly: async () => {},
  };
}

/** mulberry32: the same random policies on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('decide() with the index answers as it does evaluating every policy (what-if)', () => {
  it('applies a group policy to members only, and not to members excluded by group or by name', async () => {
    const engine = new ConditionalAccessEngine(
      sourceOf([
        policy({ groups: ['g1'], excludeGroups: ['g2'], excludeUsers: ['u3'] }),
        policy({ all: true, excludeGroups: ['g1'], targets: ['aws:*/Dev*'] }),
      ]),
      new ManualClock(),
    );
    const allowed: Decision = { effect: 'allow', maxDuration: 3600, sessionTags: {}, reasons: [] };
    const applied = async (p: Principal, target = DEV) =>
      ((await engine.apply(p, target, { client: 'browser' }, allowed, { record: false })).policies ?? [])
        .filter((e) => e.applied)
        .map((e) => e.policyId);
    expect(await applied(user('u1', ['g1']))).toEqual(['p0']);
    expect(await applied(user('u2', ['g1', 'g2']))).toEqual([]);
    expect(await applied(user('u3', ['g1']))).toEqual([]);
    expect(await applied(user('u4', ['g7']))).toEqual(['p1']);
    expect(await applied(user('u4', ['g7']), role('111122223333', 'ReadOnly'))).toEqual([]);
    expect(await applied(workload('w1'))).toEqual(['p1']);
  });

  it('for random policies, people, workloads and targets', async () => {
    const rnd = prng(0x1dec5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const some = <T>(xs: readonly T[], max: number): T[] =>
      Array.from({ length: Math.floor(rnd() * (max + 1)) }, () => pick(xs));
    const groups = Array.from({ length: 12 }, (_, i) => `g${i}`);
    const users = Array.from({ length: 8 }, (_, i) => `u${i}`);
    const workloads = ['w0', 'w1', 'w2'];
    const patterns = [
      'all',
      'aws:*/Admin*',
      'aws:111122223333/*',
      'aws:*/Developer',
      'ssh:*.prod.internal',
      'ssh:root@*',
      'app:*',
      'app:wiki',
    ];
    const definitions = Array.from({ length: 120 }, () =>
      policy({
        all: rnd() < 0.2,
        users: some(users, 1),
        groups: some(groups, 3),
        workloads: some(workloads, 1),
        excludeUsers: some(users, 1),
        excludeGroups: some(groups, 1),
        excludeWorkloads: some(workloads, 1),
        targets: some(patterns, 2),
        excludeTargets: rnd() < 0.3 ? [pick(patterns)] : [],
        conditions: pick<PolicyDefinition['conditions']>([
          {},
          { clients: ['cli'] },
          { signInRisk: ['high'] },
          { locations: { include: ['any'], exclude: ['10.0.0.0/8'] } },
        ]),
        grant:
          rnd() < 0.15
            ? { block: true, require: [], operator: 'AND' }
            : { block: false, require: [pick(['mfa', 'phishing-resistant-mfa'] as const)], operator: 'AND' },
        session: rnd() < 0.3 ? { maxCredentialLifetime: 600 } : {},
      }),
    );
    const engine = new ConditionalAccessEngine(sourceOf(definitions), new ManualClock());
    const targets: Target[] = [
      role('111122223333', 'Developer'),
      role('111122223333', 'Administrator'),
      role('444455556666', 'ReadOnly'),
      { kind: 'ssh', host: 'web.prod.internal', login: 'ec2-user' },
      { kind: 'ssh', host: 'web.dev.internal', login: 'root' },
      { kind: 'app', name: 'wiki' },
    ];
    const allowed: Decision = { effect: 'allow', maxDuration: 3600, sessionTags: {}, reasons: [] };
    let applied = 0;
    for (let n = 0; n < 300; n++) {
      const principal = rnd() < 0.2 ? workload(pick(workloads)) : user(pick(users), some(groups, 4));
      const target = pick(targets);
      const signals: Signals = {
        client: pick(['browser', 'cli'] as const),
        ip: pick(['10.1.2.3', '203.0.113.9']),
      };
      const fast = await engine.apply(principal, target, signals, allowed, { record: false });
      const full = await engine.apply(principal, target, signals, allowed, { record: false, explain: true });
      const { policies: fastPolicies, ...fastDecision } = fast;
      const { policies: fullPolicies, ...fullDecision } = full;
      expect(fastDecision).toEqual(fullDecision);
      // every policy that applied is there, in the same order; the rest failed only on a condition
      const fastApplied = fastPolicies!.filter((e) => e.applied);
      expect(fastApplied).toEqual(fullPolicies!.filter((e) => e.applied));
      for (const e of fastPolicies!) expect(fullPolicies).toContainEqual(e);
      applied += fastApplied.length;
    }
    expect(applied).toBeGreaterThan(300); // the policies did apply, so the comparison compared something
  });
});
