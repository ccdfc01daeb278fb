import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import type { Store } from '../store/open.js';
import type { ApiTokenRow, Database } from '../store/schema.js';
import { randomToken, secretsEqual, sha256Hex } from './secrets.js';

/** `ferry_at_<id>_<secret>`: the id finds the row, the secret is checked against its hash in constant time. */
const TOKEN_PATTERN = /^ferry_at_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface ApiToken {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

const fromRow = (r: ApiTokenRow): ApiToken => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export class ApiTokens {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Creates a token and returns its value: the only time it is ever shown. */
  async create(
    ctx: AuditContext,
    input: { name: string; expiresAt?: string | null },
  ): Promise<{ token: string; apiToken: ApiToken }> {
    const name = input.name.trim();
    if (!/^[\w .@-]{1,64}$/.test(name)) {
      throw new InvalidInput('name must be 1-64 letters, digits, spaces or . _ @ -', 'name');
    }
    const id = randomUUID().replaceAll('-', '');
    const secret = randomToken(32);
    const row: ApiTokenRow = {
      id,
      name,
      secret_hash: sha256Hex(secret),
      created_at: iso(this.clock.now()),
      created_by: actorName(ctx.actor),
      last_used_at: null,
      expires_at: input.expiresAt ?? null,
      revoked_at: null,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('api_tokens').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'api-token.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { tokenId: id, expiresAt: row.expires_at },
      });
    });
    return { token: `ferry_at_${id}_${secret}`, apiToken: fromRow(row) };
  }

  /** The token a bearer value names, or null if it is malformed, unknown, revoked or expired. */
  async authenticate(bearer: string): Promise<ApiToken | null> {
    const m = TOKEN_PATTERN.exec(bearer);
    if (!m) return null;
    const [, id, secret] = m as unknown as [string, string, string];
    const row = await this.store.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row || !secretsEqual(sha256Hex(secret), row.secret_hash)) return null;
    const now = iso(this.clock.now());
    if (row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return null;
    // Hourly granularity keeps authentication a read, not a write, on every request.
    if (!row.last_used_at || Date.parse(now) - Date.parse(row.last_used_at) > 3_600_000) {
      await this.store.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', id).execute();
    }
    return fromRow(row);
  }

  async list(): Promise<ApiToken[]> {
    const rows = await this.store.db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
    return rows.map(fromRow);
  }

  async revoke(ctx: AuditContext, id: string): Promise<ApiToken> {
    return this.store.db.transaction().execute(async (trx: Kysely<Database>) => {
      const row = await trx.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFound('api token', id);
      if (row.revoked_at === null) {
        row.revoked_at = iso(this.clock.now());
        await trx
          .updateTable('api_tokens')
          .set({ revoked_at: row.revoked_at })
          .where('id', '=', id)
          .execute();
        await appendAudit(trx, this.store.engine, this.clock, {
          type: 'api-token.revoked',
          outcome: 'success',
          actor: ctx.actor,
          subject: row.name,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: { tokenId: id },
        });
      }
      return fromRow(row);
    });
  }
}
