import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import type { Store } from '../../store/open.js';
import type { CaPoliciesTable } from '../../store/schema.js';
import { bumpPolicyGeneration } from './generation.js';
import { cidrList } from './named-locations.js';
import {
  type ParsedPolicyInput,
  type Policy,
  type PolicyDefinition,
  parsePolicyInput,
  type Ref,
} from './policy.js';

/** Finds a user (by user name), group (by name) or workload (by client id) for a policy; throws NotFound. */
export type PolicyRefResolver = (type: 'user' | 'group' | 'workload', name: string) => Promise<Ref>;

const fromRow = (r: CaPoliciesTable): Policy => ({
  id: r.id,
  name: r.name,
  state: r.state,
  definition: JSON.parse(r.definition) as PolicyDefinition,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  version: Number(r.version),
});

/** Conditional access policies: the admin's rules decide() applies after the assignments. */
export class ConditionalAccessPolicies {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly resolve: PolicyRefResolver,
  ) {}

  async list(): Promise<Policy[]> {
    const rows = await this.store.db.selectFrom('ca_policies').selectAll().orderBy('name_key').execute();
    return rows.map(fromRow);
  }

  /** Policies decide() reads: every one not switched off. */
  async active(): Promise<Array<Pick<CaPoliciesTable, 'id' | 'version' | 'name' | 'state' | 'definition'>>> {
    return this.store.db
      .selectFrom('ca_policies')
      .select(['id', 'version', 'name', 'state', 'definition'])
      .where('state', '!=', 'off')
      .execute();
  }

  async get(ref: string): Promise<Policy> {
    const row = await this.store.db
      .selectFrom('ca_policies')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('name_key', '=', ref.toLowerCase())]))
      .executeTakeFirst();
    if (!row) throw new NotFound('policy', ref);
    return fromRow(row);
  }

  /** Creates or replaces the policy with this name; returns whether anything changed. */
  async put(
    ctx: AuditContext,
    document: unknown,
  ): Promise<{ policy: Policy; created: boolean; changed: boolean }> {
    const input = parsePolicyInput(document);
    const definition = await this.definitionOf(input);
    const json = JSON.stringify(definition);
    const now = iso(this.clock.now());
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('ca_policies')
        .selectAll()
        .where('name_key', '=', input.name.toLowerCase())
        .executeTakeFirst();
      if (
        existing &&
        existing.definition === json &&
        existing.state === input.state &&
        existing.name === input.name
      )
        return { policy: fromRow(existing), created: false, changed: false };
      const row: CaPoliciesTable = existing
        ? {
            ...existing,
            name: input.name,
            state: input.state,
            definition: json,
            updated_at: now,
            version: Number(existing.version) + 1,
          }
        : {
            id: randomUUID(),
            name: input.name,
            name_key: input.name.toLowerCase(),
            state: input.state,
            definition: json,
            created_at: now,
            updated_at: now,
            version: 1,
          };
      if (existing) await trx.updateTable('ca_policies').set(row).where('id', '=', row.id).execute();
      else await trx.insertInto('ca_policies').values(row).execute();
      await bumpPolicyGeneration(trx);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: existing ? 'policy.updated' : 'policy.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: input.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          policyId: row.id,
          state: row.state,
          version: row.version,
          previousState: existing?.state ?? null,
        },
      });
      return { policy: fromRow(row), created: !existing, changed: true };
    });
  }

  async setState(ctx: AuditContext, ref: string, state: Policy['state']): Promise<Policy> {
    const policy = await this.get(ref);
    if (policy.state === state) return policy;
    return this.store.db.transaction().execute(async (trx) => {
      const now = iso(this.clock.now());
      const res = await trx
        .updateTable('ca_policies')
        .set({ state, updated_at: now, version: policy.version + 1 })
        .where('id', '=', policy.id)
        .where('version', '=', policy.version)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1)
        throw new Conflict(`policy ${policy.name} changed meanwhile; try again`);
      // Enabling, disabling or switching to report-only changes decisions on every instance at once.
      await bumpPolicyGeneration(trx);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'policy.state-changed',
        outcome: 'success',
        actor: ctx.actor,
        subject: policy.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { policyId: policy.id, state, previousState: policy.state },
      });
      return { ...policy, state, updatedAt: now, version: policy.version + 1 };
    });
  }

  async remove(ctx: AuditContext, ref: string): Promise<Policy> {
    const policy = await this.get(ref);
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('ca_policies').where('id', '=', policy.id).execute();
      await bumpPolicyGeneration(trx);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'policy.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: policy.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { policyId: policy.id },
      });
    });
    return policy;
  }

  /** Names → ids (a renamed group keeps its policies); an unknown name is the admin's mistake. */
  private async definitionOf(input: ParsedPolicyInput): Promise<PolicyDefinition> {
    const refs = async (type: 'user' | 'group' | 'workload', list: string[], field: string) => {
      const out: Ref[] = [];
      for (const name of list) {
        try {
          out.push(await this.resolve(type, name));
        } catch (err) {
          if (err instanceof NotFound)
            throw new InvalidInput(`policy ${input.name}: ${field}: unknown ${type} ${name}`, field);
          throw err;
        }
      }
      return out;
    };
    const c = input.conditions;
    for (const e of [...(c.locations?.include ?? []), ...(c.locations?.exclude ?? [])])
      if (e.includes('/') || e.includes(':') || /^[\d.]+$/.test(e)) cidrList([e], 'conditions.locations');
    return {
      include: {
        all: input.include.all,
        users: await refs('user', input.include.users, 'include.users'),
        groups: await refs('group', input.include.groups, 'include.groups'),
        workloads: await refs('workload', input.include.workloads, 'include.workloads'),
      },
      exclude: {
        users: await refs('user', input.exclude.users, 'exclude.users'),
        groups: await refs('group', input.exclude.groups, 'exclude.groups'),
        workloads: await refs('workload', input.exclude.workloads, 'exclude.workloads'),
      },
      targets: input.targets,
      excludeTargets: input.excludeTargets,
      conditions: {
        ...(c.signInRisk ? { signInRisk: c.signInRisk } : {}),
        ...(c.userRisk ? { userRisk: c.userRisk } : {}),
        ...(c.locations ? { locations: c.locations } : {}),
        ...(c.countries
          ? {
              countries: {
                include: c.countries.include.map((x) => x.toUpperCase()),
                exclude: c.countries.exclude.map((x) => x.toUpperCase()),
              },
            }
          : {}),
        ...(c.clients ? { clients: c.clients } : {}),
        ...(c.device ? { device: c.device } : {}),
        ...(c.time ? { time: c.time } : {}),
      },
      grant: input.grant,
      session: input.session,
    };
  }
}

/** A policy as the API shows it: the same shape it was written in, names instead of ids. */
export function policyView(p: Policy) {
  const d = p.definition;
  const names = (refs: Ref[]) => refs.map((r) => r.name);
  return {
    id: p.id,
    name: p.name,
    state: p.state,
    include: {
      all: d.include.all,
      users: names(d.include.users),
      groups: names(d.include.groups),
      workloads: names(d.include.workloads),
    },
    exclude: {
      users: names(d.exclude.users),
      groups: names(d.exclude.groups),
      workloads: names(d.exclude.workloads),
    },
    targets: d.targets,
    excludeTargets: d.excludeTargets,
    conditions: d.conditions,
    grant: d.grant,
    session: d.session,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    version: p.version,
  };
}
