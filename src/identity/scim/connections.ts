import type { AuditContext } from '../../audit/actor.js';
import type { Clock } from '../../clock.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Store } from '../../store/open.js';
import { type BearerTokenRow, BearerTokens } from '../bearer-tokens.js';

/** A provisioning client (Entra ID, …) and the state of its bearer token; the token itself is never kept. */
export interface ScimConnection {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const fromRow = (r: BearerTokenRow): ScimConnection => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** SCIM connections: `ferry_scim_<id>_<secret>` (see BearerTokens for how they are kept). */
export class ScimConnections {
  readonly #tokens: BearerTokens;

  constructor(store: Store, clock: Clock, masterKey: MasterKey) {
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
    });
  }

  /** Creates a connection and returns its bearer token: the only time it is ever shown. */
  async create(
    ctx: AuditContext,
    input: { name: string },
  ): Promise<{ token: string; connection: ScimConnection }> {
    const { token, row } = await this.#tokens.create(ctx, input);
    return { token, connection: fromRow(row) };
  }

  /** The connection a bearer value names, or null if it is malformed, unknown or revoked. */
  async authenticate(bearer: string): Promise<ScimConnection | null> {
    const row = await this.#tokens.authenticate(bearer);
    return row && fromRow(row);
  }

  async list(): Promise<ScimConnection[]> {
    return (await this.#tokens.list()).map(fromRow);
  }

  async revoke(ctx: AuditContext, id: string): Promise<ScimConnection> {
    return fromRow(await this.#tokens.revoke(ctx, id));
  }
}
