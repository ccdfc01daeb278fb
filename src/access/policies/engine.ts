import type { BlockList, SocketAddress } from 'node:net';
import { hasMfa, hasPhishingResistantMfa, mfaMethodOf } from '../../authn/amr.js';
import type { Clock } from '../../clock.js';
import type { Decision, PolicyEvaluation, Reason, Requirement } from '../decision.js';
import type { Principal, Signals } from '../principal.js';
import { formatTarget, type Target } from '../targets.js';
import type { DevicePostureVerifier, PostureResult } from './device-posture.js';
import { addressOf, cidrList } from './named-locations.js';
import type { GrantControl, PolicyDefinition, RiskLevel } from './policy.js';
import { PolicyIndex } from './policy-index.js';
import { type AccountOus, targetMatches } from './target-pattern.js';

/** What the engine reads besides the request: kept behind an interface so the engine is testable without a database. */
export interface PolicySource {
  /** changes whenever a policy or named location does: while it stays, the compiled set is reused */
  generation(): Promise<number>;
  /** policies not switched off, with a version so compiled forms can be cached */
  active(): Promise<Array<{ id: string; version: number; name: string; state: string; definition: string }>>;
  /** named location → its ranges */
  locations(): Promise<Map<string, BlockList>>;
  /** the user's risk from open or confirmed detections */
  userRisk(userId: string): Promise<RiskLevel>;
  /** ISO country code of an address, or null when unknown */
  country(ip: string): string | null;
  /** writes what report-only policies would have done to the sign-in log */
  recordReportOnly(
    principal: Principal,
    target: string,
    signals: Signals,
    would: PolicyEvaluation[],
  ): Promise<void>;
}

interface Compiled {
  id: string;
  version: number;
  name: string;
  state: 'on' | 'report-only';
  d: PolicyDefinition;
  ranges: Map<string, BlockList>;
}

/** Everything the conditions look at, gathered once per request (lazily: most requests need little). */
class Facts {
  #posture?: Promise<PostureResult | null>;
  #compliant?: Promise<{ compliant: boolean; why: string }>;
  #userRisk?: Promise<RiskLevel>;
  #locations?: Promise<Map<string, BlockList>>;
  /** what the promises above resolved to, once they did (evaluation is synchronous when all it needs is here) */
  readonly known: {
    compliant?: { compliant: boolean; why: string };
    userRisk?: RiskLevel;
    locations?: Map<string, BlockList>;
  } = {};
  #country?: string | null;
  #address?: SocketAddress | null;
  readonly groupIds: Set<string>;
  /** the target account's OUs, read before the policies when one names an OU (aws:ou/…) */
  ous: AccountOus = [];
  constructor(
    readonly principal: Principal,
    readonly target: Target,
    readonly signals: Signals,
    readonly now: Date,
    private readonly source: PolicySource,
    private readonly devices: DevicePostureVerifier | null,
    private readonly namedLocations: () => Promise<Map<string, BlockList>>,
  ) {
    this.groupIds = new Set(principal.groups.map((g) => g.id));
  }
  posture(): Promise<PostureResult | null> {
    this.#posture ??= (async () => {
      const assertion = this.signals.deviceAssertion;
      if (!assertion) return null;
      if (!this.devices) return { ok: false as const, problem: 'no device posture issuer is configured' };
      return this.devices.verify(assertion, this.principal);
    })();
    return this.#posture;
  }
  compliant(): Promise<{ compliant: boolean; why: string }> {
    this.#compliant ??= (async () => {
      const p = await this.posture();
      if (!p) return { compliant: false, why: 'no device assertion was presented' };
      if (!p.ok) return { compliant: false, why: p.problem };
      return p.posture.compliant
        ? { compliant: true, why: `device ${p.posture.deviceId} is compliant` }
        : { compliant: false, why: `device ${p.posture.deviceId} is not compliant` };
    })().then((c) => (this.known.compliant = c));
    return this.#compliant;
  }
  userRisk(): Promise<RiskLevel> {
    this.#userRisk ??= (
      this.principal.kind === 'user'
        ? this.source.userRisk(this.principal.id)
        : Promise.resolve('none' as const)
    ).then((r) => (this.known.userRisk = r));
    return this.#userRisk;
  }
  locations(): Promise<Map<string, BlockList>> {
    this.#locations ??= this.namedLocations().then((m) => (this.known.locations = m));
    return this.#locations;
  }
  country(): string | null {
    if (this.#country === undefined)
      this.#country = this.signals.ip ? this.source.country(this.signals.ip) : null;
    return this.#country;
  }
  /** the request's address, parsed once for every range it is checked against (null: none or not an address) */
  address(): SocketAddress | null {
    if (this.#address === undefined) this.#address = this.signals.ip ? addressOf(this.signals.ip) : null;
    return this.#address;
  }
}

type Check = { ok: boolean; why: string };

/** A policy set as compiled for one generation (opaque outside the engine). */
export interface LoadedPolicies {
  /** the policy set's generation (ca_policy_set): it also moves with every SSH login mapping change */
  readonly generation: number;
  readonly policies: readonly Compiled[];
  readonly index: PolicyIndex;
}

/**
 * Conditional access: after the assignments said who may have a target, the policies say under
 * which conditions and for how long. Block wins over everything; report-only policies are evaluated
 * and explained but never change the answer; exclusions beat inclusions.
 */
export class ConditionalAccessEngine {
  readonly #compiled = new Map<string, Compiled>();

  constructor(
    private readonly source: PolicySource,
    private readonly clock: Clock,
    private readonly devices: DevicePostureVerifier | null = null,
    /** AWS Organizations as last discovered, for targets that name an OU (aws:ou/…) */
    private readonly ancestorsOf?: (accountId: string) => Promise<AccountOus>,
  ) {}

  /** Applies every policy to an assignment decision. Deny stays deny (policies still explained). */
  async apply(
    principal: Principal,
    target: Target,
    signals: Signals,
    assigned: Decision,
    options: {
      record: boolean;
      explain?: boolean;
      /** the set load() started (e.g. while decide() read the assignments); else it is read now */
      loaded?: Promise<LoadedPolicies>;
    } = { record: true },
  ): Promise<Decision> {
    const { policies, index } = await (options.loaded ?? this.policySet());
    if (policies.length === 0) return withMfaTag(assigned, principal);
    const facts = new Facts(principal, target, signals, this.clock.now(), this.source, this.devices, () =>
      this.locations(),
    );
    if (
      this.ancestorsOf &&
      (target.kind === 'aws-role' || target.kind === 'permission-set') &&
      index.namesOus
    )
      facts.ous = await this.ancestorsOf(target.account);
    const evaluations: PolicyEvaluation[] = [];
    if (options.explain) for (const p of policies) evaluations.push(await this.evaluate(p, facts));
    else {
      // Most policies are about other people or other targets: the index leaves out those that cannot
      // apply, a check that builds no words the rest that do not, and only the applying ones are
      // evaluated in full, in the same (name) order as explain.
      for (const i of index.candidates(principal, target)) {
        const p = policies[i]!;
        if (!this.mayApply(p.d, facts)) continue;
        const now = this.evaluateNow(p, facts);
        evaluations.push(now instanceof Promise ? await this.evaluate(p, facts) : now);
      }
    }

    const enforced = evaluations.filter((e) => e.applied && e.state === 'on');
    const wouldHave = evaluations.filter(
      (e) => e.applied && e.state === 'report-only' && e.result !== 'satisfied',
    );
    const reportOnly: Reason[] = wouldHave.map((e) => ({
      source: 'policy',
      ref: e.policy,
      message: `report-only: ${e.policy} would have ${e.result === 'block' ? 'blocked access' : `asked for ${e.require!.join(' and ')}`} (${e.why.join('; ')})`,
    }));
    if (options.record && wouldHave.length > 0 && assigned.effect !== 'deny')
      await this.source.recordReportOnly(principal, formatTarget(target), signals, wouldHave);
    if (assigned.effect === 'deny') return { ...assigned, policies: evaluations };

    const blocking = enforced.filter((e) => e.result === 'block');
    if (blocking.length > 0) {
      return {
        effect: 'deny',
        reasons: [
          ...blocking.map(
            (e): Reason => ({
              source: 'policy',
              ref: e.policy,
              message: `blocked by policy ${e.policy} (${e.why.join('; ')})`,
            }),
          ),
          ...reportOnly,
        ],
        policies: evaluations,
      };
    }
    const steps = enforced.filter((e) => e.result === 'step-up');
    if (steps.length > 0) {
      const require = [...new Set(steps.flatMap((e) => e.require ?? []))] as Requirement[];
      return {
        effect: 'step-up',
        require,
        reasons: [
          ...steps.map(
            (e): Reason => ({
              source: 'policy',
              ref: e.policy,
              message: `policy ${e.policy} requires ${e.require!.join(' and ')} (${e.why.join('; ')})`,
            }),
          ),
          ...reportOnly,
        ],
        policies: evaluations,
      };
    }
    if (assigned.effect !== 'allow') return { ...assigned, policies: evaluations };
    let maxDuration = assigned.maxDuration;
    const reasons: Reason[] = [...assigned.reasons];
    for (const e of enforced) {
      if (e.maxDuration !== undefined && e.maxDuration < maxDuration) {
        maxDuration = e.maxDuration;
        reasons.push({
          source: 'policy',
          ref: e.policy,
          message: `policy ${e.policy} limits credentials to ${e.maxDuration} s`,
        });
      } else if (e.result === 'satisfied') {
        reasons.push({ source: 'policy', ref: e.policy, message: `policy ${e.policy} is satisfied` });
      }
    }
    reasons.push(...reportOnly);
    return { ...withMfaTag(assigned, principal), maxDuration, reasons, policies: evaluations } as Decision;
  }

  /** One policy against one request: does it apply, and what does it ask for. */
  async evaluate(p: Compiled, f: Facts): Promise<PolicyEvaluation> {
    for (;;) {
      const now = this.evaluateNow(p, f);
      if (!(now instanceof Promise)) return now;
      await now;
    }
  }

  /**
   * evaluate() without waiting: the answer, or the read it needs first (user risk, device posture,
   * named locations), which Facts then knows, so asking again answers. Most policies need none of
   * those, so most requests evaluate their policies without a promise each (issue 16: allocation per
   * decide() sets how often garbage collection pauses it). The reads happen exactly where evaluate()
   * used to wait for them, so none is made that a policy's earlier conditions made unnecessary.
   */
  private evaluateNow(p: Compiled, f: Facts): PolicyEvaluation | Promise<unknown> {
    const who = this.assignment(p.d, f.principal, f.groupIds);
    if (!who.ok) return notApplied(p, who.why);
    const what = this.targetCheck(p.d, f.target, f.ous);
    if (!what.ok) return notApplied(p, what.why);
    const why = [who.why, what.why];
    const failed = this.conditions(p, f, why);
    if (failed instanceof Promise) return failed;
    if (failed) return notApplied(p, failed.why);
    const d = p.d;
    const base = { policy: p.name, policyId: p.id, state: p.state } as const;
    if (d.grant.block) return { ...base, applied: true, why, result: 'block' };
    const missing: Requirement[] = [];
    const controls: Array<{ control: GrantControl; ok: boolean }> = [];
    for (const control of d.grant.require) {
      if (control === 'compliant-device') {
        const c = f.known.compliant;
        if (!c) return f.compliant();
        controls.push({ control, ok: c.compliant });
      } else controls.push({ control, ok: this.satisfied(control, f) });
    }
    const grantOk =
      controls.length === 0 ||
      (d.grant.operator === 'AND' ? controls.every((c) => c.ok) : controls.some((c) => c.ok));
    if (!grantOk) {
      if (controls.some((c) => c.control === 'compliant-device' && !c.ok)) {
        const c = f.known.compliant;
        if (!c) return f.compliant();
        why.push(c.why);
      }
      if (d.grant.operator === 'AND') missing.push(...controls.filter((c) => !c.ok).map((c) => c.control));
      else missing.push(controls[0]!.control); // one of them will do: ask for the first
      why.push(
        d.grant.operator === 'OR' && controls.length > 1
          ? `needs one of ${d.grant.require.join(', ')}`
          : `needs ${missing.join(' and ')}`,
      );
    }
    const freq = d.session.signInFrequency;
    if (freq !== undefined && f.principal.kind === 'user') {
      const age = f.principal.authTime
        ? (f.now.getTime() - Date.parse(f.principal.authTime)) / 1000
        : Number.POSITIVE_INFINITY;
      if (!(age <= freq)) {
        missing.push('reauthentication');
        why.push(
          `signed in ${Number.isFinite(age) ? `${Math.round(age)} s ago` : 'at an unknown time'}, more than the ${freq} s sign-in frequency`,
        );
      }
    }
    const max = d.session.maxCredentialLifetime;
    if (missing.length > 0) return { ...base, applied: true, why, result: 'step-up', require: missing };
    return {
      ...base,
      applied: true,
      why,
      result: 'satisfied',
      ...(max !== undefined ? { maxDuration: max } : {}),
    };
  }

  /** The assignment and target checks of evaluate(), without explanations. */
  private mayApply(d: PolicyDefinition, f: Facts): boolean {
    const p = f.principal;
    if (p.kind === 'workload') {
      if (d.exclude.workloads.some((w) => w.id === p.id)) return false;
      if (!d.include.all && !d.include.workloads.some((w) => w.id === p.id)) return false;
    } else {
      if (d.exclude.users.some((u) => u.id === p.id)) return false;
      if (d.exclude.groups.some((g) => f.groupIds.has(g.id))) return false;
      if (
        !d.include.all &&
        !d.include.users.some((u) => u.id === p.id) &&
        !d.include.groups.some((g) => f.groupIds.has(g.id))
      )
        return false;
    }
    if (d.excludeTargets.some((t) => targetMatches(t, f.target, f.ous))) return false;
    return d.targets.some((t) => targetMatches(t, f.target, f.ous));
  }

  private assignment(d: PolicyDefinition, p: Principal, groups: ReadonlySet<string>): Check {
    if (p.kind === 'workload') {
      if (d.exclude.workloads.some((w) => w.id === p.id))
        return { ok: false, why: `workload ${p.userName} is excluded` };
      if (d.include.workloads.some((w) => w.id === p.id))
        return { ok: true, why: `workload ${p.userName} is included` };
      if (d.include.all) return { ok: true, why: 'applies to everyone' };
      return { ok: false, why: `workload ${p.userName} is not included` };
    }
    if (d.exclude.users.some((u) => u.id === p.id)) return { ok: false, why: `${p.userName} is excluded` };
    const excludedGroup = d.exclude.groups.find((g) => groups.has(g.id));
    if (excludedGroup)
      return { ok: false, why: `${p.userName} is excluded as a member of ${excludedGroup.name}` };
    if (d.include.users.some((u) => u.id === p.id)) return { ok: true, why: `${p.userName} is included` };
    const includedGroup = d.include.groups.find((g) => groups.has(g.id));
    if (includedGroup)
      return { ok: true, why: `${p.userName} is included as a member of ${includedGroup.name}` };
    if (d.include.all) return { ok: true, why: 'applies to everyone' };
    return { ok: false, why: `${p.userName} is neither included nor in an included group` };
  }

  private targetCheck(d: PolicyDefinition, target: Target, ous: AccountOus): Check {
    const name = formatTarget(target);
    const excluded = d.excludeTargets.find((t) => targetMatches(t, target, ous));
    if (excluded) return { ok: false, why: `${name} is excluded by ${excluded}` };
    const included = d.targets.find((t) => targetMatches(t, target, ous));
    if (!included) return { ok: false, why: `${name} is not among the targets ${d.targets.join(', ')}` };
    return { ok: true, why: included === 'all' ? 'covers every target' : `${name} matches ${included}` };
  }

  /**
   * The policy's conditions in order, each explained into `why`; the first that fails is returned
   * (and those after it are not looked at: a user-risk read or a device check only when needed), or
   * the read a condition waits for (then ask again once it is done).
   */
  private conditions(p: Compiled, f: Facts, why: string[]): Check | null | Promise<unknown> {
    const c = p.d.conditions;
    const check = (x: Check): boolean => {
      if (x.ok) why.push(x.why);
      return x.ok;
    };
    if (c.clients) {
      const ok = c.clients.includes(f.signals.client);
      const x = {
        ok,
        why: `client ${f.signals.client} ${ok ? 'is' : 'is not'} one of ${c.clients.join(', ')}`,
      };
      if (!check(x)) return x;
    }
    if (c.signInRisk) {
      const risk = f.principal.signInRisk ?? 'none';
      const ok = c.signInRisk.includes(risk);
      const x = { ok, why: `sign-in risk ${risk} ${ok ? 'is' : 'is not'} one of ${c.signInRisk.join(', ')}` };
      if (!check(x)) return x;
    }
    if (c.userRisk) {
      const risk = f.known.userRisk;
      if (risk === undefined) return f.userRisk();
      const ok = c.userRisk.includes(risk);
      const x = { ok, why: `user risk ${risk} ${ok ? 'is' : 'is not'} one of ${c.userRisk.join(', ')}` };
      if (!check(x)) return x;
    }
    if (c.locations) {
      const named = f.known.locations;
      if (!named) return f.locations();
      const x = this.location(c.locations, p, f, named);
      if (!check(x)) return x;
    }
    if (c.countries) {
      const country = f.country();
      const shown = country ?? 'unknown';
      const x =
        country && c.countries.exclude.includes(country)
          ? { ok: false, why: `country ${shown} is excluded` }
          : c.countries.include.length > 0 && !(country && c.countries.include.includes(country))
            ? { ok: false, why: `country ${shown} is not one of ${c.countries.include.join(', ')}` }
            : { ok: true, why: `country ${shown} matches` };
      if (!check(x)) return x;
    }
    if (c.device) {
      const known = f.known.compliant;
      if (!known) return f.compliant();
      const { compliant, why: said } = known;
      const ok = (c.device === 'compliant') === compliant;
      const x = { ok, why: `${said} (condition: ${c.device} device)` };
      if (!check(x)) return x;
    }
    if (c.time) {
      const x = timeWindow(c.time, f.now);
      if (!check(x)) return x;
    }
    return null;
  }

  private location(
    loc: { include: string[]; exclude: string[] },
    p: Compiled,
    f: Facts,
    named: Map<string, BlockList>,
  ): Check {
    const ip = f.signals.ip ?? null;
    if (!ip) return { ok: false, why: 'the request has no IP address' };
    const address = f.address();
    const find = (entry: string): { list: BlockList | null; label: string } => {
      if (entry === 'any') return { list: null, label: 'any' };
      const list = p.ranges.get(entry) ?? named.get(entry) ?? null;
      return { list, label: entry };
    };
    for (const e of loc.exclude) {
      const { list, label } = find(e);
      if (e === 'any' || (list && address && list.check(address)))
        return { ok: false, why: `${ip} is in the excluded location ${label}` };
    }
    if (loc.include.length === 0) return { ok: true, why: `${ip} is in no excluded location` };
    for (const e of loc.include) {
      const { list, label } = find(e);
      if (e === 'any' || (list && address && list.check(address)))
        return { ok: true, why: `${ip} is in the location ${label}` };
    }
    const unknown = loc.include.filter((e) => e !== 'any' && !p.ranges.has(e) && !named.has(e));
    return {
      ok: false,
      why: `${ip} is in none of the locations ${loc.include.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    };
  }

  /** The controls a sign-in carries (a compliant device is asked of Facts, which may have to verify it). */
  private satisfied(control: Exclude<GrantControl, 'compliant-device'>, f: Facts): boolean {
    switch (control) {
      case 'mfa':
        return hasMfa(f.principal.amr);
      case 'phishing-resistant-mfa':
        return hasPhishingResistantMfa(f.principal.amr);
    }
  }

  #set: {
    generation: number;
    policies: Compiled[];
    index: PolicyIndex;
    locations?: Promise<Map<string, BlockList>>;
  } | null = null;

  /**
   * Starts reading the policy set for apply(), so that its one read (the generation) runs beside the
   * caller's own (on PostgreSQL on another connection, at the same time) instead of after them.
   * `generation`: the caller read it itself (in the same statement as its own reads); then the set
   * costs no read of its own while it stays the same.
   */
  load(generation?: Promise<number>): Promise<LoadedPolicies> {
    const loading = this.policySet(generation);
    loading.catch(() => {}); // apply() awaits it and throws; a caller that failed first never does
    return loading;
  }

  /** The compiled policy set and its index: one tiny read per request while nothing changed, a reload when it did. */
  private async policySet(known?: Promise<number>): Promise<LoadedPolicies> {
    const generation = await (known ?? this.source.generation());
    if (this.#set?.generation === generation) return this.#set;
    const rows = await this.source.active();
    const out: Compiled[] = [];
    for (const r of rows) {
      let c = this.#compiled.get(r.id);
      if (!c || c.version !== Number(r.version)) {
        const d = JSON.parse(r.definition) as PolicyDefinition;
        const ranges = new Map<string, BlockList>();
        for (const e of [
          ...(d.conditions.locations?.include ?? []),
          ...(d.conditions.locations?.exclude ?? []),
        ])
          if (e.includes('/') || e.includes(':') || /^[\d.]+$/.test(e)) ranges.set(e, cidrList([e]));
        c = {
          id: r.id,
          version: Number(r.version),
          name: r.name,
          state: r.state as Compiled['state'],
          d,
          ranges,
        };
        this.#compiled.set(r.id, c);
      }
      out.push(c);
    }
    if (this.#compiled.size > rows.length * 2 + 100) this.#compiled.clear();
    out.sort((a, b) => a.name.localeCompare(b.name));
    this.#set = { generation, policies: out, index: new PolicyIndex(out.map((c) => c.d)) };
    return this.#set;
  }

  /** Named locations, read once per policy-set generation (they bump it too). */
  private locations(): Promise<Map<string, BlockList>> {
    const set = this.#set;
    if (!set) return this.source.locations();
    set.locations ??= this.source.locations();
    return set.locations;
  }
}

function notApplied(p: Compiled, why: string): PolicyEvaluation {
  return { policy: p.name, policyId: p.id, state: p.state, applied: false, why: [why] };
}

function withMfaTag(d: Decision, principal: Principal): Decision {
  if (d.effect !== 'allow' || principal.kind !== 'user') return d;
  return { ...d, sessionTags: { ...d.sessionTags, MfaMethod: mfaMethodOf(principal.amr) } };
}

/** Building an Intl formatter costs far more than using one: one per time zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

const DAY_INDEX: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/**
 * Weekday and hh:mm in a time zone, remembered for the second it was asked for: every request in
 * that second (and every time-window policy of one request) reads the same, and formatting is the
 * cost (time zone offsets are whole seconds, so the answer cannot change within one).
 */
const lastWallClock = new Map<string, { second: number; day: string; hm: string }>();
function wallClock(timeZone: string, now: Date): { day: string; hm: string } {
  const second = Math.floor(now.getTime() / 1000);
  const last = lastWallClock.get(timeZone);
  if (last?.second === second) return last;
  const parts = formatterFor(timeZone).formatToParts(now);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][DAY_INDEX[get('weekday')] ?? 0]!;
  const read = { second, day, hm: `${get('hour')}:${get('minute')}` };
  lastWallClock.set(timeZone, read);
  return read;
}

/** Inside (or outside) a weekly window in a time zone; a window whose end is before its start spans midnight. */
export function timeWindow(
  t: { days: string[]; from: string; to: string; timezone: string; outside: boolean },
  now: Date,
): Check {
  const { day, hm } = wallClock(t.timezone, now);
  const inTime = t.from <= t.to ? hm >= t.from && hm < t.to : hm >= t.from || hm < t.to;
  const inside = t.days.includes(day) && inTime;
  const ok = t.outside ? !inside : inside;
  const window = `${t.days.join(',')} ${t.from}-${t.to} ${t.timezone}`;
  return {
    ok,
    why: `${day} ${hm} is ${inside ? 'inside' : 'outside'} ${window}${t.outside ? ' (applies outside it)' : ''}`,
  };
}
