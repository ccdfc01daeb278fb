import type { Principal } from '../principal.js';
import type { Target } from '../targets.js';
import type { PolicyDefinition } from './policy.js';
import { ouPattern, targetMatches } from './target-pattern.js';

/** Distinct targets whose answer is kept per policy set; past it the memo starts over (SSH host names are open-ended). */
export const TARGET_MEMO_LIMIT = 4096;

/**
 * Which policies of a set can apply to a request, worked out when the set is compiled, so a request
 * visits only those instead of all of them (issue 16: 500 policies, 10,000 groups). By whom a
 * policy includes: everyone, a user, a group, a workload (posting lists by id); by target: for each
 * distinct target asked for, whether the policy's patterns cover it and none excludes it (computed
 * on first use, then remembered). A policy whose patterns name an OU depends on the account's OUs,
 * read per request, so it is always a candidate on the target side.
 *
 * The answer is a superset: the engine still checks each candidate in full (exclusions of users and
 * groups, the patterns again), so the index decides nothing and only skips policies that cannot apply.
 */
export class PolicyIndex {
  readonly #everyone: number[] = [];
  readonly #byUser = new Map<string, number[]>();
  readonly #byGroup = new Map<string, number[]>();
  readonly #byWorkload = new Map<string, number[]>();
  readonly #ouDependent: boolean[];
  readonly #byTarget = new Map<string, Uint8Array>();
  /** whether any policy names an OU (then the request needs the target account's OUs) */
  readonly namesOus: boolean;

  constructor(private readonly definitions: readonly PolicyDefinition[]) {
    const post = (map: Map<string, number[]>, id: string, i: number) => {
      const list = map.get(id);
      if (!list) map.set(id, [i]);
      else if (list.at(-1) !== i) list.push(i);
    };
    this.#ouDependent = definitions.map((d) => [...d.targets, ...d.excludeTargets].some((t) => ouPattern(t)));
    this.namesOus = this.#ouDependent.includes(true);
    definitions.forEach((d, i) => {
      if (d.include.all) this.#everyone.push(i);
      for (const u of d.include.users) post(this.#byUser, u.id, i);
      for (const g of d.include.groups) post(this.#byGroup, g.id, i);
      for (const w of d.include.workloads) post(this.#byWorkload, w.id, i);
    });
  }

  /** Positions, ascending, of the policies that may apply to this principal and target. */
  candidates(principal: Principal, target: Target): number[] {
    const lists: Array<readonly number[]> = [this.#everyone];
    const add = (list: readonly number[] | undefined) => {
      if (list) lists.push(list);
    };
    if (principal.kind === 'workload') add(this.#byWorkload.get(principal.id));
    else {
      add(this.#byUser.get(principal.id));
      for (const g of principal.groups) add(this.#byGroup.get(g.id));
    }
    const covers = this.#covering(target);
    const out: number[] = [];
    for (const list of lists) for (const i of list) if (covers[i] === 1) out.push(i);
    if (lists.length === 1) return out;
    out.sort((a, b) => a - b);
    // a policy naming two of the person's groups (or the person and a group) was listed twice
    let w = 0;
    for (let r = 0; r < out.length; r++) if (r === 0 || out[r] !== out[r - 1]) out[w++] = out[r]!;
    out.length = w;
    return out;
  }

  /** 1 for each policy whose target patterns may cover the target (always, when they name an OU). */
  #covering(target: Target): Uint8Array {
    const key = targetKey(target);
    let covers = this.#byTarget.get(key);
    if (covers) return covers;
    covers = new Uint8Array(this.definitions.length);
    this.definitions.forEach((d, i) => {
      covers![i] =
        this.#ouDependent[i] ||
        (!d.excludeTargets.some((t) => targetMatches(t, target)) &&
          d.targets.some((t) => targetMatches(t, target)))
          ? 1
          : 0;
    });
    if (this.#byTarget.size >= TARGET_MEMO_LIMIT) this.#byTarget.clear();
    this.#byTarget.set(key, covers);
    return covers;
  }
}

/** A target's fields, unambiguously (a formatted target could in principle read the same for two). */
function targetKey(t: Target): string {
  switch (t.kind) {
    case 'aws-role':
      return JSON.stringify([t.kind, t.account, t.role]);
    case 'permission-set':
      return JSON.stringify([t.kind, t.account, t.name]);
    case 'ssh':
      return JSON.stringify([t.kind, t.host, t.login]);
    case 'app':
      return JSON.stringify([t.kind, t.name]);
    case 'admin':
      return JSON.stringify([t.kind, t.role]);
    default:
      return JSON.stringify(t);
  }
}
