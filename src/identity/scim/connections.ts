import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../../audit/actor.js';
import { actorName } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { InvalidInput, NotFound } from '../../errors.js';
import type { Store } from '../../store/open.js';
import type { ScimConnectionRow } from '../../store/schema.js';
import { findGroupRow } from '../groups.js';
import { randomToken, secretsEqual, sha256Hex } from '../secrets.js';
import { findUserRow } from '../users.js';
import { type ManagedKind, ScimLane } from './lane.js';

/** `ferry_scim_<id>_<secret>`: the id finds the row, the secret is checked against its hash in constant time. */
const TOKEN_PATTERN = /^ferry_scim_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/** A provisioning client (Entra ID, …) and the state of its bearer token; the token itself is never kept. */
export interface ScimConnection {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  /** may set passwords of the users it provisioned (off unless enabled at creation) */
  passwordWrites: boolean;
}

const fromRow = (r: ScimConnectionRow): ScimConnection => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  passwordWrites: r.password_writes === 1,
});

export class ScimConnections {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Creates a connection and returns its bearer token: the only time it is ever shown. */
  async create(
    ctx: AuditContext,
    input: { name: string; passwordWrites?: boolean },
  ): Promise<{ token: string; connection: ScimConnection }> {
    const name = input.name.trim();
    if (!/^[\w .@-]{1,64}$/.test(name)) {
      throw new InvalidInput('name must be 1-64 letters, digits, spaces or . _ @ -', 'name');
    }
    const id = randomUUID().replaceAll('-', '');
    const secret = randomToken(32);
    const row: ScimConnectionRow = {
      id,
      name,
      secret_hash: sha256Hex(secret),
      created_at: iso(this.clock.now()),
      created_by: actorName(ctx.actor),
      last_used_at: null,
      revoked_at: null,
      password_writes: input.passwordWrites ? 1 : 0,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('scim_connections').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'scim-connection.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { connectionId: id, passwordWrites: row.password_writes === 1 },
      });
    });
    return { token: `ferry_scim_${id}_${secret}`, connection: fromRow(row) };
  }

  /** The connection a bearer value names, or null if it is malformed, unknown or revoked. */
  async authenticate(bearer: string): Promise<ScimConnection | null> {
    const m = TOKEN_PATTERN.exec(bearer);
    if (!m) return null;
    const [, id, secret] = m as unknown as [string, string, string];
    const row = await this.store.db
      .selectFrom('scim_connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row || !secretsEqual(sha256Hex(secret), row.secret_hash) || row.revoked_at !== null) return null;
    const now = iso(this.clock.now());
    // Hourly granularity keeps authentication a read, not a write, on every request.
    if (!row.last_used_at || Date.parse(now) - Date.parse(row.last_used_at) > 3_600_000) {
      await this.store.db
        .updateTable('scim_connections')
        .set({ last_used_at: now })
        .where('id', '=', id)
        .execute();
    }
    return fromRow(row);
  }

  /** What an authenticated connection may see and change. */
  laneOf(connection: ScimConnection): ScimLane {
    return new ScimLane(connection.id, connection.passwordWrites, this.clock);
  }

  /**
   * Hands an existing user or group (created by an admin, the demo, or another connection) to this
   * connection, which may then manage it; never set its password (it was not created by the connection).
   */
  async handOver(
    ctx: AuditContext,
    id: string,
    kind: ManagedKind,
    ref: string,
  ): Promise<{ kind: ManagedKind; id: string; name: string; connection: ScimConnection }> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('scim_connections')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || row.revoked_at !== null) throw new NotFound('SCIM connection', id);
      const object =
        kind === 'user'
          ? await findUserRow(trx, ref).then((u) => u && { id: u.id, name: u.user_name })
          : await findGroupRow(trx, ref).then((g) => g && { id: g.id, name: g.display_name });
      if (!object) throw new NotFound(kind, ref);
      const previous = await trx
        .selectFrom('scim_managed_objects')
        .select('connection_id')
        .where('kind', '=', kind)
        .where('object_id', '=', object.id)
        .executeTakeFirst();
      await trx
        .deleteFrom('scim_managed_objects')
        .where('kind', '=', kind)
        .where('object_id', '=', object.id)
        .execute();
      await trx
        .insertInto('scim_managed_objects')
        .values({
          kind,
          object_id: object.id,
          connection_id: id,
          origin: 'handed',
          since: iso(this.clock.now()),
        })
        .execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'scim-connection.handed-over',
        outcome: 'success',
        actor: ctx.actor,
        subject: object.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          connectionId: id,
          kind,
          objectId: object.id,
          previousConnectionId: previous?.connection_id ?? null,
        },
      });
      return { kind, id: object.id, name: object.name, connection: fromRow(row) };
    });
  }

  async list(): Promise<ScimConnection[]> {
    const rows = await this.store.db
      .selectFrom('scim_connections')
      .selectAll()
      .orderBy('created_at')
      .execute();
    return rows.map(fromRow);
  }

  async revoke(ctx: AuditContext, id: string): Promise<ScimConnection> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('scim_connections')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new NotFound('SCIM connection', id);
      if (row.revoked_at === null) {
        row.revoked_at = iso(this.clock.now());
        await trx
          .updateTable('scim_connections')
          .set({ revoked_at: row.revoked_at })
          .where('id', '=', id)
          .execute();
        await appendAudit(trx, this.store.engine, this.clock, {
          type: 'scim-connection.revoked',
          outcome: 'success',
          actor: ctx.actor,
          subject: row.name,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: { connectionId: id },
        });
      }
      return fromRow(row);
    });
  }
}
