import type { AuditContext } from '../audit/actor.js';
import type { Clock } from '../clock.js';
import { InvalidInput } from '../errors.js';
import type { MasterKey } from '../keys/master-key.js';
import type { Store } from '../store/open.js';
import { type BearerTokenRow, BearerTokens } from './bearer-tokens.js';

export interface ApiToken {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  /** the permissions it carries; `*` is every permission (tokens made before scopes existed) */
  scopes: string[];
  /**
   * The person whose admin rights bound this token (docs/decisions/0041): it was made by them, or by a
   * token they made. At each use the token may do only what they still hold. Null: made by an operator
   * beside the server's config, or before 0035.
   */
  creatorUserId: string | null;
}

const fromRow = (r: BearerTokenRow): ApiToken => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at ?? null,
  revokedAt: r.revoked_at,
  scopes: (r.scopes ?? '*').split(' ').filter(Boolean),
  creatorUserId: r.creator_user_id ?? null,
});

/**
 * A scope list as given: each a permission (or `*`), no repeats. Which permissions exist is the access
 * module's to say (admin-roles.ts); the app passes that list in, so this floor does not import it.
 */
export function checkScopes(scopes: readonly string[], known: readonly string[]): string[] {
  const out = [...new Set(scopes.map((s) => s.trim()).filter(Boolean))];
  if (out.length === 0) throw new InvalidInput('give at least one scope', 'scopes');
  for (const s of out)
    if (s !== '*' && !known.includes(s))
      throw new InvalidInput(`unknown scope ${JSON.stringify(s)}; one of *, ${known.join(', ')}`, 'scopes');
  return out.includes('*') ? ['*'] : out;
}

/** Admin API tokens: `ferry_at_<id>_<secret>` (see BearerTokens for how they are kept). */
export class ApiTokens {
  readonly #tokens: BearerTokens;

  constructor(store: Store, clock: Clock, masterKey: MasterKey) {
    this.#tokens = new BearerTokens(store, clock, masterKey, {
      table: 'api_tokens',
      prefix: 'ferry_at_',
      purpose: 'api-token',
      noun: 'api token',
      audit: { created: 'api-token.created', revoked: 'api-token.revoked', idField: 'tokenId' },
      expires: true,
    });
  }

  /** Creates a token and returns its value: the only time it is ever shown. */
  async create(
    ctx: AuditContext,
    input: { name: string; expiresAt?: string | null; scopes?: string[]; creatorUserId?: string | null },
  ): Promise<{ token: string; apiToken: ApiToken }> {
    const scopes = input.scopes ?? ['*'];
    const creator = input.creatorUserId ?? null;
    const { token, row } = await this.#tokens.create(ctx, {
      name: input.name,
      expiresAt: input.expiresAt,
      columns: { scopes: scopes.join(' '), ...(creator ? { creator_user_id: creator } : {}) },
      auditData: { scopes, ...(creator ? { creatorUserId: creator } : {}) },
    });
    return { token, apiToken: fromRow(row) };
  }

  /** The token a bearer value names, or null if it is malformed, unknown, revoked or expired. */
  async authenticate(bearer: string): Promise<ApiToken | null> {
    const row = await this.#tokens.authenticate(bearer);
    return row && fromRow(row);
  }

  async list(): Promise<ApiToken[]> {
    return (await this.#tokens.list()).map(fromRow);
  }

  async revoke(ctx: AuditContext, id: string): Promise<ApiToken> {
    return fromRow(await this.#tokens.revoke(ctx, id));
  }
}
