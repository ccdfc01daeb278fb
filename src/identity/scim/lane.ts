import { type Kysely, type SqlBool, sql } from 'kysely';
import { type Clock, iso } from '../../clock.js';
import { insertRow } from '../../store/insert-row.js';
import type { Database } from '../../store/schema.js';
import { mutability, ScimError, scimNotFound } from './errors.js';

export type ManagedKind = 'user' | 'group';

/**
 * What one SCIM connection may touch (issue 14 point 11): the users and groups it provisioned, or that
 * an admin handed to it. Others it neither sees (lists leave them out, a read is 404) nor changes
 * (403). It sets a password only when enabled for the connection, and never on an account that was
 * created elsewhere and handed to it.
 */
export class ScimLane {
  constructor(
    readonly connectionId: string,
    readonly passwordWrites: boolean,
    private readonly clock: Clock,
  ) {}

  /** The ids this connection manages, as a subquery for `where('id', 'in', …)`. */
  managed(db: Kysely<Database>, kind: ManagedKind) {
    return db
      .selectFrom('scim_managed_objects')
      .select('object_id')
      .where('kind', '=', kind)
      .where('connection_id', '=', this.connectionId);
  }

  /**
   * True for rows this connection manages: a key lookup per row. (`id in managed(…)` made SQLite build
   * the lane's whole list for every query: a userName lookup cost O(lane size).)
   */
  isManaged(kind: ManagedKind, idColumn: 'users.id' | 'groups.id') {
    return sql<SqlBool>`exists (select 1 from scim_managed_objects m where m.kind = ${kind} and m.object_id = ${sql.ref(idColumn)} and m.connection_id = ${this.connectionId})`;
  }

  /**
   * Of these ids, the ones this connection manages: a key lookup per id, whatever the size of the lane
   * (`in (all of the lane's objects)` was built in full on SQLite on every call, and a join let its
   * planner scan the lane by connection first).
   */
  async managedAmong(db: Kysely<Database>, kind: ManagedKind, ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let at = 0; at < ids.length; at += 500) {
      const rows = await db
        .selectFrom('scim_managed_objects')
        .select(['object_id', 'connection_id'])
        .where('kind', '=', kind)
        .where('object_id', 'in', ids.slice(at, at + 500))
        .execute();
      for (const r of rows) if (r.connection_id === this.connectionId) out.add(r.object_id);
    }
    return out;
  }

  private async originOf(db: Kysely<Database>, kind: ManagedKind, id: string) {
    const row = await db
      .selectFrom('scim_managed_objects')
      .select(['origin', 'connection_id'])
      .where('kind', '=', kind)
      .where('object_id', '=', id)
      .executeTakeFirst();
    return row?.connection_id === this.connectionId ? row.origin : null;
  }

  /** A read of another lane's object is answered as if it did not exist. */
  async checkRead(db: Kysely<Database>, kind: ManagedKind, id: string): Promise<void> {
    if ((await this.originOf(db, kind, id)) === null)
      throw scimNotFound(kind === 'user' ? 'User' : 'Group', id);
  }

  /** RFC 7644 §3.12: 403, "operation is not permitted based on the supplied authorization". */
  async checkWrite(db: Kysely<Database>, kind: ManagedKind, id: string): Promise<'provisioned' | 'handed'> {
    const origin = await this.originOf(db, kind, id);
    if (origin === null) {
      const table = kind === 'user' ? 'users' : 'groups';
      const exists = await db.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) throw scimNotFound(kind === 'user' ? 'User' : 'Group', id);
      throw new ScimError(
        403,
        `${kind} ${id} is not managed by this SCIM connection (an admin can hand it over: ferry scim token hand-over)`,
      );
    }
    return origin;
  }

  /** Setting a password: refused unless enabled for this connection, and always for a handed-over account. */
  checkPassword(origin: 'provisioned' | 'handed'): void {
    if (!this.passwordWrites) {
      throw mutability(
        'this SCIM connection may not set passwords (enable it with ferry scim token create --allow-passwords)',
      );
    }
    if (origin === 'handed') {
      throw mutability(
        'the password of an account not created by this SCIM connection cannot be set over SCIM',
      );
    }
  }

  /** Records that this connection created the object, in the transaction that created it. */
  async claim(trx: Kysely<Database>, kind: ManagedKind, id: string): Promise<void> {
    await insertRow(trx, 'scim_managed_objects', {
      kind,
      object_id: id,
      connection_id: this.connectionId,
      origin: 'provisioned',
      since: iso(this.clock.now()),
    });
  }

  /** claim for many objects, a statement per 500. */
  async claimAll(trx: Kysely<Database>, kind: ManagedKind, ids: string[]): Promise<void> {
    const since = iso(this.clock.now());
    for (let at = 0; at < ids.length; at += 500) {
      await trx
        .insertInto('scim_managed_objects')
        .values(
          ids.slice(at, at + 500).map((id) => ({
            kind,
            object_id: id,
            connection_id: this.connectionId,
            origin: 'provisioned' as const,
            since,
          })),
        )
        .execute();
    }
  }
}
