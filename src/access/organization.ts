import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import type { Store } from '../store/open.js';

export interface OrgUnit {
  /** ou-… or the root's r-… */
  id: string;
  name: string;
  parentId: string | null;
  /** /Root/Workloads/Prod */
  path: string;
}

export interface OrgAccount {
  id: string;
  name: string;
  email: string | null;
  status: string;
  /** the OU (or root) it is in */
  parentId: string;
  ouPath: string;
}

/** What AWS Organizations said, as `ferry aws discover` read it. */
export interface OrgSnapshot {
  units: Array<Omit<OrgUnit, 'path'>>;
  accounts: Array<Omit<OrgAccount, 'ouPath'>>;
}

/**
 * The organization's tree as last discovered: which OU each account is in. Assignments and policy targets
 * that name an OU follow it here, so an account moved into (or out of) an OU gains (or loses) them at
 * the next discovery, with no change to the assignments themselves.
 */
export class AwsOrganization {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Replaces the recorded tree with a fresh snapshot; returns the accounts that moved. */
  async record(
    ctx: AuditContext,
    snapshot: OrgSnapshot,
  ): Promise<{ moved: Array<{ accountId: string; from: string; to: string }> }> {
    const now = iso(this.clock.now());
    const paths = pathsOf(snapshot.units);
    return this.store.db.transaction().execute(async (trx) => {
      const before = new Map(
        (await trx.selectFrom('aws_org_accounts').select(['id', 'parent_id']).execute()).map((r) => [
          r.id,
          r.parent_id,
        ]),
      );
      const beforePaths = new Map(
        (await trx.selectFrom('aws_org_units').select(['id', 'path']).execute()).map((r) => [r.id, r.path]),
      );
      await trx.deleteFrom('aws_org_accounts').execute();
      await trx.deleteFrom('aws_org_units').execute();
      for (const u of snapshot.units)
        await trx
          .insertInto('aws_org_units')
          .values({ id: u.id, name: u.name, parent_id: u.parentId, path: paths.get(u.id)!, updated_at: now })
          .execute();
      const moved = [];
      for (const a of snapshot.accounts) {
        await trx
          .insertInto('aws_org_accounts')
          .values({
            id: a.id,
            name: a.name,
            email: a.email,
            status: a.status,
            parent_id: a.parentId,
            updated_at: now,
          })
          .execute();
        const was = before.get(a.id);
        if (was !== undefined && was !== a.parentId)
          moved.push({
            accountId: a.id,
            from: beforePaths.get(was) ?? was,
            to: paths.get(a.parentId) ?? a.parentId,
          });
      }
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'aws-organization.discovered',
        outcome: 'success',
        actor: ctx.actor,
        subject: 'aws-organization',
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { units: snapshot.units.length, accounts: snapshot.accounts.length, moved },
      });
      return { moved };
    });
  }

  async units(): Promise<OrgUnit[]> {
    const rows = await this.store.db.selectFrom('aws_org_units').selectAll().orderBy('path').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, parentId: r.parent_id, path: r.path }));
  }

  async accounts(): Promise<OrgAccount[]> {
    const units = new Map((await this.units()).map((u) => [u.id, u]));
    const rows = await this.store.db.selectFrom('aws_org_accounts').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      email: r.email,
      status: r.status,
      parentId: r.parent_id,
      ouPath: units.get(r.parent_id)?.path ?? r.parent_id,
    }));
  }

  /** An OU by id (ou-…, r-…) or path (/Root/Workloads, case-insensitive); null when not discovered. */
  async unit(ref: string): Promise<OrgUnit | null> {
    const all = await this.units();
    const key = ref.replace(/\/+$/, '').toLowerCase();
    return all.find((u) => u.id === ref || u.path.toLowerCase() === key) ?? null;
  }

  /** Every active account in an OU or below it. */
  async accountsIn(unitId: string): Promise<string[]> {
    const units = await this.units();
    const unit = units.find((u) => u.id === unitId);
    if (!unit) return [];
    const under = new Set(
      units.filter((u) => u.path === unit.path || u.path.startsWith(`${unit.path}/`)).map((u) => u.id),
    );
    return (await this.accounts())
      .filter((a) => under.has(a.parentId) && a.status === 'ACTIVE')
      .map((a) => a.id);
  }

  /** The OUs an account is in, innermost first up to the root; empty when Organizations never named it. */
  async ancestorsOf(accountId: string): Promise<OrgUnit[]> {
    const row = await this.store.db
      .selectFrom('aws_org_accounts')
      .select(['parent_id', 'status'])
      .where('id', '=', accountId)
      .executeTakeFirst();
    if (!row || row.status !== 'ACTIVE') return [];
    const units = new Map((await this.units()).map((u) => [u.id, u]));
    const out: OrgUnit[] = [];
    for (
      let at = units.get(row.parent_id);
      at && out.length < 10;
      at = at.parentId ? units.get(at.parentId) : undefined
    )
      out.push(at);
    return out;
  }
}

/** /Root/A/B for each unit, from parent links (Organizations nests OUs at most five deep). */
export function pathsOf(
  units: Array<{ id: string; name: string; parentId: string | null }>,
): Map<string, string> {
  const byId = new Map(units.map((u) => [u.id, u]));
  const out = new Map<string, string>();
  const pathOf = (id: string, depth: number): string => {
    const known = out.get(id);
    if (known) return known;
    const u = byId.get(id);
    if (!u) return '';
    const parent = u.parentId && depth < 10 ? pathOf(u.parentId, depth + 1) : '';
    const p = `${parent}/${u.name}`;
    out.set(id, p);
    return p;
  };
  for (const u of units) pathOf(u.id, 0);
  return out;
}
