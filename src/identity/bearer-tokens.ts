import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import type { MasterKey } from '../keys/master-key.js';
import type { Store } from '../store/open.js';
import { randomToken, secretsEqual, storedSecret } from './secrets.js';

/** The columns every table of named bearer tokens has (api_tokens, scim_connections). */
export interface BearerTokenRow {
  id: string;
  name: string;
  /** keyed hash of the secret part (see storedSecret); never the secret */
  secret_hash: string;
  created_at: string;
  created_by: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** api_tokens only */
  expires_at?: string | null;
  /** scim_connections only: 1 when the connection may set passwords */
  password_writes?: number;
  /** api_tokens only: space-separated permissions, or `*` */
  scopes?: string;
  /** api_tokens only (0035): the person whose admin rights bound the token */
  creator_user_id?: string | null;
}

/** What differs between one kind of named bearer token and another. */
export interface BearerTokenKind {
  table: 'api_tokens' | 'scim_connections';
  /** `ferry_at_`, `ferry_scim_`: the value is `<prefix><32 hex id>_<43 base64url secret>` */
  prefix: string;
  /** the lookup-key purpose its secrets are hashed under (MasterKey.lookupKey) */
  purpose: string;
  /** for "not found" problems */
  noun: string;
  /** audit event types, and the data field that names the token (its id: a handle, never the value) */
  audit: { created: string; revoked: string; idField: string };
  /** whether the table has an expiry column */
  expires: boolean;
  /**
   * How long a verified token's row may be reused without reading the database again (0 or absent:
   * never). Revoking through this object forgets it at once; another instance sees a revocation
   * within this time.
   */
  cacheMs?: number;
}

interface Verified {
  row: BearerTokenRow;
  /** clock milliseconds after which the row must be read again */
  untilMs: number;
  /**
   * SHA-256 of the secret that verified against the row's keyed hash: a request presenting the same
   * secret within untilMs is compared against this (one hash) instead of computing the keyed hash and
   * comparing that again (four: 3.7% of a SCIM create's CPU). Never the secret itself.
   */
  secretDigest: Buffer;
}

type TokenDb = Kysely<Record<BearerTokenKind['table'], BearerTokenRow>>;

/**
 * Named bearer tokens, hashed and compared one way for every kind: the id in the value finds the row,
 * the secret is compared in constant time against its keyed hash; the value is shown once, at creation.
 */
export class BearerTokens {
  readonly #pattern: RegExp;
  /** verified rows by token id (only tokens that verified; a wrong secret never enters) */
  readonly #verified = new Map<string, Verified>();
  /** bumped by every revocation: a row read before one is not cached (it may be the revoked token) */
  #revocations = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
    private readonly kind: BearerTokenKind,
  ) {
    this.#pattern = new RegExp(`^${kind.prefix}([0-9a-f]{32})_([A-Za-z0-9_-]{43})$`);
  }

  get #db(): TokenDb {
    return this.store.db as unknown as TokenDb;
  }

  async create(
    ctx: AuditContext,
    input: {
      name: string;
      expiresAt?: string | null;
      /** kind-specific columns, and what the audit event says of them */
      columns?: Pick<BearerTokenRow, 'password_writes' | 'scopes' | 'creator_user_id'>;
      auditData?: Record<string, unknown>;
    },
  ): Promise<{ token: string; row: BearerTokenRow }> {
    const name = input.name.trim();
    if (!/^[\w .@-]{1,64}$/.test(name)) {
      throw new InvalidInput('name must be 1-64 letters, digits, spaces or . _ @ -', 'name');
    }
    const id = randomUUID().replaceAll('-', '');
    const secret = randomToken(32);
    const row: BearerTokenRow = {
      id,
      name,
      secret_hash: storedSecret(this.masterKey, this.kind.purpose, secret),
      created_at: iso(this.clock.now()),
      created_by: actorName(ctx.actor),
      last_used_at: null,
      revoked_at: null,
      ...(this.kind.expires ? { expires_at: input.expiresAt ?? null } : {}),
      ...input.columns,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await (trx as unknown as TokenDb).insertInto(this.kind.table).values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: this.kind.audit.created,
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          [this.kind.audit.idField]: id,
          ...(this.kind.expires ? { expiresAt: row.expires_at } : {}),
          ...input.auditData,
        },
      });
    });
    return { token: `${this.kind.prefix}${id}_${secret}`, row };
  }

  /** The row a bearer value names, or null if it is malformed, unknown, revoked or expired. */
  async authenticate(bearer: string): Promise<BearerTokenRow | null> {
    const m = this.#pattern.exec(bearer);
    if (!m) return null;
    const [, id, secret] = m as unknown as [string, string, string];
    const nowMs = this.clock.now().getTime();
    const cacheMs = this.kind.cacheMs ?? 0;
    const secretDigest = cacheMs > 0 ? createHash('sha256').update(secret).digest() : null;
    const hit = secretDigest && this.#verified.get(id);
    if (hit) {
      // The secret is still checked on every request, in constant time, against the digest of the one
      // that verified against the stored hash; only the read and the keyed hash are saved.
      if (hit.untilMs > nowMs && timingSafeEqual(secretDigest, hit.secretDigest)) return hit.row;
      this.#verified.delete(id);
    }
    const generation = this.#revocations;
    const row = await this.#db
      .selectFrom(this.kind.table)
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row || !secretsEqual(storedSecret(this.masterKey, this.kind.purpose, secret), row.secret_hash)) {
      return null;
    }
    const now = iso(this.clock.now());
    if (row.revoked_at !== null || (row.expires_at != null && row.expires_at <= now)) return null;
    // Hourly granularity keeps authentication a read, not a write, on every request.
    if (!row.last_used_at || Date.parse(now) - Date.parse(row.last_used_at) > 3_600_000) {
      await this.#db.updateTable(this.kind.table).set({ last_used_at: now }).where('id', '=', id).execute();
      row.last_used_at = now;
    }
    if (secretDigest && generation === this.#revocations) {
      const expiresMs = row.expires_at != null ? Date.parse(row.expires_at) : Number.POSITIVE_INFINITY;
      this.#verified.set(id, { row, untilMs: Math.min(nowMs + cacheMs, expiresMs), secretDigest });
    }
    return row;
  }

  async list(): Promise<BearerTokenRow[]> {
    return this.#db.selectFrom(this.kind.table).selectAll().orderBy('created_at').execute();
  }

  async revoke(ctx: AuditContext, id: string): Promise<BearerTokenRow> {
    this.#revocations++;
    this.#verified.delete(id);
    const revoked = await this.store.db.transaction().execute(async (t) => {
      const trx = t as unknown as TokenDb;
      const row = await trx.selectFrom(this.kind.table).selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFound(this.kind.noun, id);
      if (row.revoked_at === null) {
        row.revoked_at = iso(this.clock.now());
        await trx
          .updateTable(this.kind.table)
          .set({ revoked_at: row.revoked_at })
          .where('id', '=', id)
          .execute();
        await appendAudit(t, this.store.engine, this.clock, {
          type: this.kind.audit.revoked,
          outcome: 'success',
          actor: ctx.actor,
          subject: row.name,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: { [this.kind.audit.idField]: id },
        });
      }
      return row;
    });
    // Again after the commit: a request that read the row before it may have cached it meanwhile.
    this.#revocations++;
    this.#verified.delete(id);
    return revoked;
  }
}
