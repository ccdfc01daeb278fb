import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { NotFound } from '../../errors.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Store } from '../../store/open.js';
import { type BearerTokenRow, BearerTokens } from '../bearer-tokens.js';
import { findGroupRow } from '../groups.js';
import { findUserRow } from '../users.js';
import { type ManagedKind, ScimLane } from './lane.js';

/** How long a verified SCIM token is trusted without reading its row again. */
export const SCIM_TOKEN_CACHE_MS = 5_000;

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

const fromRow = (r: BearerTokenRow): ScimConnection => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  passwordWrites: r.password_writes === 1,
});

/** SCIM connections: `ferry_scim_<id>_<secret>` (see BearerTokens for how they are kept). */
export class ScimConnections {
  readonly #tokens: BearerTokens;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    masterKey: MasterKey,
  ) {
    this.#tokens = new BearerTokens(store, clock, masterKey, {
      table: 'scim_connections',
      prefix: 'ferry_scim_',
      purpose: 'scim-token',
      noun: 'SCIM connection',
      audit: {
        created: 'scim-connection.created',
        revoked: 'scim-connection.revoked',
        idField: 'connectionId',
      },
      expires: false,
      // Entra sends the same token with every request: verified rows are reused for a few seconds
      // (revoking here forgets at once; another instance stops accepting it within this time).
      cacheMs: SCIM_TOKEN_CACHE_MS,
    });
  }

  /** Creates a connection and returns its bearer token: the only time it is ever shown. */
  async create(
    ctx: AuditContext,
    input: { name: string; passwordWrites?: boolean },
  ): Promise<{ token: string; connection: ScimConnection }> {
    const passwordWrites = input.passwordWrites === true;
    const { token, row } = await this.#tokens.create(ctx, {
      name: input.name,
      columns: { password_writes: passwordWrites ? 1 : 0 },
      auditData: { passwordWrites },
    });
    return { token, connection: fromRow(row) };
  }

  /** The connection a bearer value names, or null if it is malformed, unknown or revoked. */
  async authenticate(bearer: string): Promise<ScimConnection | null> {
    const row = await this.#tokens.authenticate(bearer);
    return row && fromRow(row);
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
    return (await this.#tokens.list()).map(fromRow);
  }

  async revoke(ctx: AuditContext, id: string): Promise<ScimConnection> {
    return fromRow(await this.#tokens.revoke(ctx, id));
  }
}
