import type { Kysely, Transaction } from 'kysely';
import { type AuditContext, actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import type { Store } from '../store/open.js';
import type { Database } from '../store/schema.js';
import type { PrincipalRef } from './assignments.js';

/**
 * Which groups may reach an application (`app:<name>`): a proxied app, a SAML app. An app with no
 * assignment is open to every active user; once one group is assigned, only members get through.
 */
export class AppAssignments {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Group ids and names assigned to the app (empty: open to all active users). */
  async groupsOf(
    appName: string,
    db: Kysely<Database> = this.store.db,
  ): Promise<Array<{ id: string; name: string }>> {
    const rows = await db
      .selectFrom('app_assignments')
      .innerJoin('groups', 'groups.id', 'app_assignments.group_id')
      .select(['groups.id', 'groups.display_name'])
      .where('app_assignments.app_name', '=', appName)
      .orderBy('groups.display_name_key')
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.display_name }));
  }

  /** Makes exactly these groups the app's assignments, inside the caller's transaction; audited. */
  async replace(
    trx: Transaction<Database>,
    ctx: AuditContext,
    appName: string,
    groups: PrincipalRef[],
  ): Promise<boolean> {
    const current = await this.groupsOf(appName, trx);
    const wanted = new Map(groups.map((g) => [g.id, g]));
    const removed = current.filter((g) => !wanted.has(g.id));
    const added = [...wanted.values()].filter((g) => !current.some((c) => c.id === g.id));
    if (removed.length === 0 && added.length === 0) return false;
    const now = iso(this.clock.now());
    if (removed.length > 0)
      await trx
        .deleteFrom('app_assignments')
        .where('app_name', '=', appName)
        .where(
          'group_id',
          'in',
          removed.map((g) => g.id),
        )
        .execute();
    if (added.length > 0)
      await trx
        .insertInto('app_assignments')
        .values(
          added.map((g) => ({
            app_name: appName,
            group_id: g.id,
            created_at: now,
            created_by: actorName(ctx.actor),
          })),
        )
        .execute();
    await appendAudit(trx, this.store.engine, this.clock, {
      type: 'app-assignment.changed',
      outcome: 'success',
      actor: ctx.actor,
      subject: `app:${appName}`,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {
        added: added.map((g) => g.name),
        removed: removed.map((g) => g.name),
        groups: [...wanted.values()].map((g) => g.name),
      },
    });
    return true;
  }

  /** Drops every assignment of the app (the app is gone), inside the caller's transaction. */
  async removeAll(trx: Transaction<Database>, appName: string): Promise<void> {
    await trx.deleteFrom('app_assignments').where('app_name', '=', appName).execute();
  }
}
