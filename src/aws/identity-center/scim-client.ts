import { type Clock, systemClock } from '../../clock.js';
import { GROUP_SCHEMA, LIST_SCHEMA, PATCH_SCHEMA, USER_SCHEMA } from '../../identity/scim/schema.js';
import { IDENTITY_CENTER_LIMITS } from './limits.js';
import type { RemoteUser } from './representation.js';

/** A SCIM request Identity Center refused (after retries, when the status was retryable). */
export class ScimPushFailed extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly scimType: string | null,
    detail: string,
  ) {
    super(`${method} ${path}: ${status}${scimType ? ` ${scimType}` : ''}: ${detail}`);
    this.name = 'ScimPushFailed';
  }
}

export interface RetryPolicy {
  /** tries per request, the first included */
  maxAttempts: number;
  /** first backoff; each retry doubles it, up to maxDelayMs, with full jitter */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 30_000 };

export interface ScimClientOptions {
  /** the SCIM endpoint Identity Center shows, e.g. https://scim.us-east-1.amazonaws.com/abc/scim/v2 */
  endpoint: string;
  token: string;
  retry?: RetryPolicy;
  requestTimeoutMs?: number;
  /**
   * The longest Retry-After waited for in place; a longer one fails the request at once (the outbox
   * retries the event later rather than holding up the events behind it).
   */
  maxRetryAfterMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** reads Retry-After dates */
  clock?: Clock;
}

export interface RemoteGroupRef {
  id: string;
  displayName: string;
}

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A SCIM 2.0 client limited to what IAM Identity Center accepts: `eq` filters joined by `and`, no
 * /Bulk, at most 100 member values per request, pages of at most 50. Retries 429 (honouring
 * Retry-After) and 5xx with exponential backoff and full jitter; other errors surface at once.
 */
export class IdentityCenterScimClient {
  private readonly base: string;
  private readonly retry: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly options: ScimClientOptions) {
    this.base = options.endpoint.replace(/\/+$/, '');
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.sleep = options.sleep ?? sleepFor;
    this.random = options.random ?? Math.random;
  }

  async createUser(user: RemoteUser): Promise<string> {
    const res = await this.send('POST', '/Users', { schemas: [USER_SCHEMA], ...user });
    return idOf(res);
  }

  async replaceUser(id: string, user: RemoteUser): Promise<void> {
    await this.send('PUT', `/Users/${encodeURIComponent(id)}`, { schemas: [USER_SCHEMA], id, ...user });
  }

  async deleteUser(id: string): Promise<void> {
    await this.send('DELETE', `/Users/${encodeURIComponent(id)}`, undefined, { notFoundOk: true });
  }

  async findUserByUserName(userName: string): Promise<string | null> {
    return this.findOne('/Users', `userName eq ${quote(userName)}`);
  }

  /** Creates a group with at most 100 initial members; callers add the rest with addMembers. */
  async createGroup(
    group: { displayName: string; externalId: string },
    memberIds: string[],
  ): Promise<string> {
    if (memberIds.length > IDENTITY_CENTER_LIMITS.membersPerRequest)
      throw new RangeError('CreateGroup takes at most 100 members');
    const res = await this.send('POST', '/Groups', {
      schemas: [GROUP_SCHEMA],
      ...group,
      ...(memberIds.length > 0 ? { members: memberIds.map((value) => ({ value })) } : {}),
    });
    return idOf(res);
  }

  async renameGroup(id: string, displayName: string): Promise<void> {
    await this.patch(`/Groups/${encodeURIComponent(id)}`, [
      { op: 'replace', path: 'displayName', value: displayName },
    ]);
  }

  /** Adds or removes members, 100 per PatchGroup; `done` is called after each accepted chunk. */
  async changeMembers(
    id: string,
    op: 'add' | 'remove',
    memberIds: string[],
    done: (chunk: string[]) => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < memberIds.length; i += IDENTITY_CENTER_LIMITS.membersPerRequest) {
      const chunk = memberIds.slice(i, i + IDENTITY_CENTER_LIMITS.membersPerRequest);
      await this.patch(`/Groups/${encodeURIComponent(id)}`, [
        { op, path: 'members', value: chunk.map((value) => ({ value })) },
      ]);
      await done(chunk);
    }
  }

  async deleteGroup(id: string): Promise<void> {
    await this.send('DELETE', `/Groups/${encodeURIComponent(id)}`, undefined, { notFoundOk: true });
  }

  async findGroupByDisplayName(displayName: string): Promise<string | null> {
    return this.findOne('/Groups', `displayName eq ${quote(displayName)}`);
  }

  private async patch(path: string, operations: unknown[]): Promise<void> {
    await this.send('PATCH', path, { schemas: [PATCH_SCHEMA], Operations: operations });
  }

  private async findOne(path: string, filter: string): Promise<string | null> {
    const q = new URLSearchParams({
      filter,
      startIndex: '1',
      count: String(IDENTITY_CENTER_LIMITS.pageSize),
    });
    const res = (await this.send('GET', `${path}?${q}`)) as {
      schemas?: string[];
      Resources?: Array<{ id: string }>;
    };
    if (res.schemas && !res.schemas.includes(LIST_SCHEMA))
      throw new Error(`${path}: not a SCIM ListResponse`);
    return res.Resources?.[0]?.id ?? null;
  }

  /** One request with retries; null for a tolerated 404. */
  private async send(
    method: string,
    path: string,
    body?: unknown,
    opts: { notFoundOk?: boolean } = {},
  ): Promise<unknown> {
    const { maxAttempts } = this.retry;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: 'application/scim+json, application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 30_000),
        });
      } catch (err) {
        // A reset or timeout: the request may or may not have been applied; callers' steps are idempotent.
        if (attempt >= maxAttempts) throw new ScimPushFailed(method, path, 0, null, reasonOf(err));
        await this.sleep(this.backoff(attempt));
        continue;
      }
      const text = await res.text();
      if (res.ok) return text ? (JSON.parse(text) as unknown) : null;
      if (res.status === 404 && opts.notFoundOk) return null;
      const retryable = res.status === 429 || res.status >= 500;
      const retryAfter = retryAfterMs(
        res.headers.get('retry-after'),
        (this.options.clock ?? systemClock).now().getTime(),
      );
      const waitable = retryAfter === null || retryAfter <= (this.options.maxRetryAfterMs ?? 300_000);
      if (retryable && waitable && attempt < maxAttempts) {
        await this.sleep(retryAfter ?? this.backoff(attempt));
        continue;
      }
      const err = parseError(text);
      throw new ScimPushFailed(method, path.split('?')[0]!, res.status, err.scimType, err.detail);
    }
  }

  /** Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(this.random() * ceiling);
  }
}

function idOf(res: unknown): string {
  const id = (res as { id?: unknown } | null)?.id;
  if (typeof id !== 'string' || id === '') throw new Error('Identity Center answered a create without an id');
  return id;
}

/** A SCIM string literal: JSON escaping is what RFC 7644 §3.4.2.2 asks for. */
const quote = (value: string) => JSON.stringify(value);

/** Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), capped at five minutes. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (!header) return null;
  const seconds = Number(header.trim());
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(ms)) return null;
  return Math.min(300_000, Math.max(0, Math.round(ms)));
}

function parseError(text: string): { scimType: string | null; detail: string } {
  try {
    const body = JSON.parse(text) as { scimType?: string; detail?: string };
    return { scimType: body.scimType ?? null, detail: body.detail ?? text.slice(0, 200) };
  } catch {
    return { scimType: null, detail: text.slice(0, 200) || 'no detail' };
  }
}

function reasonOf(err: unknown): string {
  let e = err as { cause?: unknown; code?: string; message?: string; name?: string } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  if (e?.name === 'TimeoutError') return 'no answer in time';
  return e?.code ?? e?.message ?? String(err);
}
