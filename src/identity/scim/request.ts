import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../../store/errors.js';
import { transactTogether } from '../../store/group-commit.js';
import type { Store } from '../../store/open.js';
import type { Database } from '../../store/schema.js';
import { invalidValue, ScimError } from './errors.js';
import { LIST_SCHEMA } from './schema.js';

export const MAX_RESULTS = 1000;

/** Query parameters of a list request (RFC 7644 §3.4.2). */
export interface ListQuery {
  filter?: string;
  startIndex?: string;
  count?: string;
  attributes?: string;
  excludedAttributes?: string;
  sortBy?: string;
}

export interface Page {
  /** 1-based, as SCIM counts */
  startIndex: number;
  count: number;
}

const intParam = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined || v === '') return undefined;
  if (!/^-?\d{1,9}$/.test(v.trim())) throw invalidValue(`${name} must be an integer`);
  return Number(v);
};

/** startIndex below 1 counts as 1 and a negative count as 0 (RFC 7644 §3.4.2.4); count is capped. */
export function pageOf(q: ListQuery): Page {
  const startIndex = Math.max(1, intParam('startIndex', q.startIndex) ?? 1);
  const count = Math.min(MAX_RESULTS, Math.max(0, intParam('count', q.count) ?? 100));
  return { startIndex, count };
}

export const listResponse = (total: number, page: Page, resources: unknown[]) => ({
  schemas: [LIST_SCHEMA],
  totalResults: total,
  startIndex: page.startIndex,
  itemsPerPage: resources.length,
  Resources: resources,
});

/** If-Match (RFC 7644 §3.14): `*` or one of the listed ETags must be the resource's version. */
export function checkIfMatch(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((t) => t.trim());
  if (tags.includes('*')) return;
  const want = `"${version}"`;
  if (!tags.some((t) => t.replace(/^W\//, '') === want)) {
    throw new ScimError(412, `the resource has changed: its version is W/${want}`);
  }
}

/** True when If-None-Match names the current version (the client's copy is fresh: 304). */
export function notModified(ifNoneMatch: string | undefined, version: number): boolean {
  if (ifNoneMatch === undefined) return false;
  const want = `"${version}"`;
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === want);
}

/** A resource as created: its id, its document (unprojected) and its version. */
export interface Created {
  id: string;
  doc: Record<string, unknown>;
  version: number;
}

/**
 * A write made ready outside any transaction (the body checked, a password hashed), to run in one:
 * its own (a request) or one shared with others (a Bulk request). `what` names the value a unique
 * violation is about, for the 409.
 */
export interface PreparedWrite<T> {
  what: string;
  run(trx: Kysely<Database>): Promise<T>;
}

/**
 * DELETE (RFC 7644 §3.6) as a prepared write: the resource read for change (`read`: not found, not this
 * connection's), If-Match checked against its version (§3.14), then `remove`d.
 */
export function deletionOf<R extends { version: number | string | bigint }>(
  what: string,
  ifMatch: string | undefined,
  read: (trx: Kysely<Database>) => Promise<R>,
  remove: (trx: Kysely<Database>, row: R) => Promise<void>,
): PreparedWrite<void> {
  return {
    what,
    run: async (trx) => {
      const row = await read(trx);
      checkIfMatch(ifMatch, Number(row.version));
      await remove(trx, row);
    },
  };
}

/** A unique violation (a userName or displayName taken) as SCIM's 409 uniqueness. */
export function uniquenessError(err: unknown, what: string): unknown {
  return isUniqueViolation(err) ? new ScimError(409, `${what} is already taken`, 'uniqueness') : err;
}

/**
 * One SCIM request, one transaction: everything it changes is written together or not at all. On
 * SQLite it may share the transaction with other requests' (group commit, in a savepoint of its own:
 * see transactTogether); it is answered only once that transaction committed.
 */
export async function inTransaction<T>(
  store: Store,
  what: string,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  try {
    return await transactTogether(store, fn);
  } catch (err) {
    throw uniquenessError(err, what);
  }
}

/** A row read for change, locked against concurrent writers where the engine allows it. */
export function forChange<Q extends { forUpdate(): Q }>(store: Store, q: Q): Q {
  return store.engine === 'postgres' ? q.forUpdate() : q;
}

const SCAN_BATCH = 500;

/** How one resource type's rows are read for a list: in sort-key order, counted, and checked in memory. */
export interface Searchable<Row> {
  /** rows that pass the SQL part of the filter (all rows without one), in sort-key order */
  rows(q: { limit: number; offset?: number; after?: string }): Promise<Row[]>;
  count(): Promise<number>;
  sortKey(row: Row): string;
  /** the in-memory check of each row, for the part of the filter SQL cannot decide */
  matching(batch: Row[]): Promise<boolean[]>;
}

/**
 * One page of a list. Where SQL decides the whole filter (`exact`), the page is one query and the total
 * one count; otherwise rows are read in batches of SCAN_BATCH, checked in memory, and every match counted.
 */
export async function searchPage<Row>(
  page: Page,
  exact: boolean,
  s: Searchable<Row>,
): Promise<{ rows: Row[]; total: number }> {
  if (exact) {
    const rows = await s.rows({ limit: page.count, offset: page.startIndex - 1 });
    if (page.startIndex === 1 && rows.length < page.count) return { rows, total: rows.length };
    return { rows, total: await s.count() };
  }
  const out: Row[] = [];
  let total = 0;
  let after: string | undefined;
  for (;;) {
    const batch = await s.rows({ limit: SCAN_BATCH, ...(after !== undefined ? { after } : {}) });
    if (batch.length === 0) break;
    const kept = await s.matching(batch);
    batch.forEach((row, i) => {
      if (!kept[i]) return;
      total++;
      if (total >= page.startIndex && out.length < page.count) out.push(row);
    });
    after = s.sortKey(batch[batch.length - 1]!);
    if (batch.length < SCAN_BATCH) break;
  }
  return { rows: out, total };
}
