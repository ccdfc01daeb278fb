import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import { type Outcome, runTogether } from '../../store/group-commit.js';
import type { Store } from '../../store/open.js';
import type { Database } from '../../store/schema.js';
import { isObject } from './coerce.js';
import { invalidSyntax, invalidValue, ScimError } from './errors.js';
import type { ScimGroups } from './groups-endpoint.js';
import { type PreparedWrite, uniquenessError } from './request.js';
import { etagOf } from './user-resource.js';
import type { NewScimUser, ScimUsers } from './users-endpoint.js';

export const BULK_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const BULK_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';

/** Advertised in /ServiceProviderConfig (RFC 7643 §5) and enforced with 413 (RFC 7644 §3.7.4). */
export const BULK_MAX_OPERATIONS = 1000;
export const BULK_MAX_PAYLOAD_BYTES = 1_048_576;

/**
 * Operations committed together: one transaction per this many, each operation in a savepoint of its
 * own. Below PostgreSQL's 64 cached subtransactions per transaction, past which every snapshot taken
 * meanwhile must consult pg_subtrans.
 */
const OPERATIONS_PER_COMMIT = 50;
/** User creates in a row are tried this many at a time in a few statements (see runPrepared). */
const CREATES_PER_STATEMENT = 500;

type Method = 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Kind = 'Users' | 'Groups';

/** One operation of a BulkRequest, checked. */
interface Operation {
  index: number;
  method: Method;
  bulkId: string | undefined;
  kind: Kind;
  /** the resource id (PUT, PATCH, DELETE), possibly `bulkId:…` */
  id: string | undefined;
  version: string | undefined;
  data: unknown;
  /** every bulkId this operation refers to (in its path or anywhere in its data) */
  refs: Set<string>;
}

/** One entry of the BulkResponse's Operations (RFC 7644 §3.7.3). */
export interface OperationResult {
  method: string;
  bulkId?: string;
  location?: string;
  version?: string;
  status: string;
  response?: Record<string, unknown>;
}

export interface BulkDeps {
  store: Store;
  users: ScimUsers;
  groups: ScimGroups;
  /** the SCIM base URL, e.g. https://ferry.example/scim/v2 */
  baseUrl: string;
  /** any error as the SCIM error it is answered with (the same mapping as single requests) */
  errorOf(err: unknown): ScimError;
}

const BULK_ID_REF = /^bulkId:(.+)$/;

/** Deeper than any SCIM resource nests (a complex multi-valued attribute is 3 levels). */
const MAX_DEPTH = 32;

/** Every `bulkId:…` string anywhere in a value (which may nest MAX_DEPTH levels at most). */
function collectRefs(v: unknown, into: Set<string>, depth = 0): void {
  if (depth > MAX_DEPTH) throw invalidSyntax(`data nests deeper than ${MAX_DEPTH} levels`);
  if (typeof v === 'string') {
    const m = BULK_ID_REF.exec(v);
    if (m) into.add(m[1]!);
  } else if (Array.isArray(v)) {
    for (const x of v) collectRefs(x, into, depth + 1);
  } else if (isObject(v)) {
    for (const x of Object.values(v)) collectRefs(x, into, depth + 1);
  }
}

function decodedId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalidSyntax('the resource id in path is not valid percent-encoding');
  }
}

/** The value with each `bulkId:…` string replaced by the id it was given. */
function substitute(v: unknown, ids: Map<string, string>): unknown {
  if (typeof v === 'string') {
    const m = BULK_ID_REF.exec(v);
    return m ? (ids.get(m[1]!) ?? v) : v;
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, ids));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, ids)]));
  return v;
}

/** The request as a whole: schemas, failOnErrors and Operations (their number within the limit). */
export function parseBulkRequest(body: unknown): {
  failOnErrors: number | undefined;
  operations: unknown[];
} {
  if (!isObject(body)) throw invalidSyntax('the request body must be a BulkRequest object');
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.includes(BULK_REQUEST_SCHEMA)) {
    throw invalidSyntax(`schemas must contain ${BULK_REQUEST_SCHEMA}`);
  }
  const operations = body.Operations;
  if (!Array.isArray(operations)) throw invalidSyntax('Operations must be an array');
  if (operations.length > BULK_MAX_OPERATIONS) {
    throw new ScimError(
      413,
      `the bulk request has ${operations.length} operations; maxOperations is ${BULK_MAX_OPERATIONS}`,
    );
  }
  const f = body.failOnErrors;
  if (f !== undefined && f !== null && (typeof f !== 'number' || !Number.isInteger(f) || f < 1)) {
    throw invalidValue('failOnErrors must be an integer of at least 1');
  }
  return { failOnErrors: typeof f === 'number' ? f : undefined, operations };
}

const METHODS: readonly Method[] = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** One operation, checked; a ScimError (answered for this operation alone) when it is malformed. */
function parseOperation(raw: unknown, index: number): Operation {
  if (!isObject(raw)) throw invalidSyntax(`operation ${index + 1} must be an object`);
  const method = typeof raw.method === 'string' ? raw.method.toUpperCase() : '';
  if (!METHODS.includes(method as Method)) throw invalidSyntax('method must be POST, PUT, PATCH or DELETE');
  const bulkId = raw.bulkId;
  if (bulkId !== undefined && (typeof bulkId !== 'string' || bulkId === '')) {
    throw invalidSyntax('bulkId must be a non-empty string');
  }
  if (method === 'POST' && bulkId === undefined) throw invalidSyntax('a POST operation needs a bulkId');
  const path = typeof raw.path === 'string' ? raw.path : '';
  const m = /^\/(Users|Groups)(?:\/([^/?#]+))?$/.exec(path);
  if (!m) throw invalidSyntax('path must be /Users, /Groups, /Users/{id} or /Groups/{id}');
  const kind = m[1] as Kind;
  const id = m[2] === undefined ? undefined : decodedId(m[2]);
  if (method === 'POST' && id !== undefined) throw invalidSyntax('a POST operation names /Users or /Groups');
  if (method !== 'POST' && id === undefined) throw invalidSyntax(`a ${method} operation names one resource`);
  if (method !== 'DELETE' && !isObject(raw.data)) throw invalidSyntax(`a ${method} operation needs data`);
  const version = raw.version;
  if (version !== undefined && typeof version !== 'string') throw invalidSyntax('version must be a string');
  const refs = new Set<string>();
  collectRefs(raw.data, refs);
  if (id !== undefined) collectRefs(id, refs);
  return {
    index,
    method: method as Method,
    bulkId,
    kind,
    id,
    version,
    data: raw.data,
    refs,
  };
}

const errorResult = (method: string, bulkId: string | undefined, e: ScimError): OperationResult => ({
  method,
  ...(bulkId !== undefined ? { bulkId } : {}),
  status: String(e.status),
  response: e.body(),
});

/**
 * POST /Bulk (RFC 7644 §3.7): the operations in order, each as its own request would be (the same
 * checks, one audit record and outbox event per change), committed OPERATIONS_PER_COMMIT at a time
 * with a savepoint per operation, so one that fails changes nothing and the others still count.
 * `bulkId:` references resolve to resources created earlier in the request; an operation whose
 * reference names a later operation waits for it, and one that cannot be resolved (unknown, failed,
 * or circular) fails with 409. After `failOnErrors` errors the rest is not attempted.
 */
export async function runBulk(
  deps: BulkDeps,
  ctx: AuditContext,
  request: { failOnErrors: number | undefined; operations: unknown[] },
): Promise<{ schemas: string[]; Operations: OperationResult[] }> {
  const results = new Map<number, OperationResult>();
  let errors = 0;
  const failed = (op: { index: number; method: string; bulkId: string | undefined }, e: ScimError) => {
    results.set(op.index, errorResult(op.method, op.bulkId, e));
    errors++;
  };
  const stopped = () => request.failOnErrors !== undefined && errors >= request.failOnErrors;

  // Operations that are malformed fail at once; bulkIds must be unique within the request.
  let pending: Operation[] = [];
  const defined = new Set<string>();
  request.operations.forEach((raw, index) => {
    if (stopped()) return;
    const rawMethod = isObject(raw) && typeof raw.method === 'string' ? raw.method.toUpperCase() : '';
    const rawBulkId = isObject(raw) && typeof raw.bulkId === 'string' ? raw.bulkId : undefined;
    try {
      const op = parseOperation(raw, index);
      if (op.bulkId !== undefined) {
        if (defined.has(op.bulkId)) throw invalidValue(`bulkId ${op.bulkId} is used twice in this request`);
        if (op.method === 'POST') defined.add(op.bulkId);
      }
      pending.push(op);
    } catch (err) {
      failed({ index, method: rawMethod, bulkId: rawBulkId }, deps.errorOf(err));
    }
  });

  const ids = new Map<string, string>(); // bulkId → id of the resource its POST created
  const unresolvable = new Set<string>(); // bulkIds whose POST failed or was never sent
  while (pending.length > 0 && !stopped()) {
    // Ready: every reference names a created resource. Blocked: one names a POST still to come.
    const ready: Operation[] = [];
    const blocked: Operation[] = [];
    for (const op of pending) {
      const missing = [...op.refs].filter((r) => !ids.has(r));
      const dead = missing.find((r) => unresolvable.has(r) || !defined.has(r));
      if (dead !== undefined) {
        if (!stopped())
          failed(
            op,
            new ScimError(
              409,
              `bulkId ${dead} does not name a resource created in this request`,
              'invalidValue',
            ),
          );
        if (op.bulkId !== undefined) unresolvable.add(op.bulkId);
      } else if (missing.length === 0) ready.push(op);
      else blocked.push(op);
    }
    if (ready.length === 0) {
      // Only references among themselves are left: a cycle (RFC 7644 §3.7.1 allows 409 here).
      for (const op of blocked) {
        if (stopped()) break;
        failed(op, new ScimError(409, 'circular bulkId references cannot be resolved', 'invalidValue'));
      }
      break;
    }
    // Ready operations in request order; resources they create unblock others in the next round.
    ready.sort((a, b) => a.index - b.index);
    for (let i = 0; i < ready.length && !stopped(); i += CREATES_PER_STATEMENT) {
      await runChunk(deps, ctx, ready.slice(i, i + CREATES_PER_STATEMENT), ids, {
        ok: (op, r) => results.set(op.index, r),
        failed: (op, e) => {
          failed(op, e);
          if (op.bulkId !== undefined) unresolvable.add(op.bulkId);
        },
        stopped,
        errorsLeft: () =>
          request.failOnErrors === undefined ? Number.POSITIVE_INFINITY : request.failOnErrors - errors,
      });
    }
    pending = blocked;
  }
  return {
    schemas: [BULK_RESPONSE_SCHEMA],
    Operations: [...results.entries()].sort(([a], [b]) => a - b).map(([, r]) => r),
  };
}

interface ChunkSink {
  ok(op: Operation, result: OperationResult): void;
  failed(op: Operation, e: ScimError): void;
  stopped(): boolean;
  /** errors still accepted before processing stops (Infinity without failOnErrors) */
  errorsLeft(): number;
}

/**
 * Some ready operations, in request order: prepared outside the transaction (a password hashed), then
 * run together, each in a savepoint. An operation that fails while being prepared is answered after
 * those before it ran, so failOnErrors stops exactly where the request's order says.
 */
async function runChunk(
  deps: BulkDeps,
  ctx: AuditContext,
  ops: Operation[],
  ids: Map<string, string>,
  sink: ChunkSink,
): Promise<void> {
  let prepared: Prepared[] = [];
  for (const op of ops) {
    if (sink.stopped()) return;
    try {
      prepared.push({ op, ...(await prepare(deps, ctx, op, ids)) });
    } catch (err) {
      await runPrepared(deps, ctx, prepared, ids, sink);
      prepared = [];
      if (!sink.stopped()) sink.failed(op, deps.errorOf(err));
    }
  }
  await runPrepared(deps, ctx, prepared, ids, sink);
}

/** An operation ready to run; `user` for a POST /Users, which may run with others in one statement. */
interface Prepared {
  op: Operation;
  w: PreparedWrite<{ id: string; version: number | null }>;
  user?: NewScimUser;
}

async function runPrepared(
  deps: BulkDeps,
  ctx: AuditContext,
  prepared: Prepared[],
  ids: Map<string, string>,
  sink: ChunkSink,
): Promise<void> {
  if (prepared.length === 0 || sink.stopped()) return;
  const report = (p: Prepared, o: Outcome<{ id: string; version: number | null }>) => {
    const { op, w } = p;
    if (o.ok) {
      const { id, version } = o.value;
      if (op.method === 'POST' && op.bulkId !== undefined) ids.set(op.bulkId, id);
      sink.ok(op, {
        method: op.method,
        ...(op.bulkId !== undefined ? { bulkId: op.bulkId } : {}),
        location: `${deps.baseUrl}/${op.kind}/${id}`,
        ...(version !== null ? { version: etagOf(version) } : {}),
        status: op.method === 'POST' ? '201' : op.method === 'DELETE' ? '204' : '200',
      });
    } else {
      sink.failed(op, deps.errorOf(uniquenessError(o.error, w.what)));
    }
  };
  // An import's run of user creates: all in a few statements (the same rows, audit and outbox events
  // as one by one). If any fails, nothing was written and they are run one by one below instead.
  if (prepared.length > 1 && prepared.every((p) => p.user !== undefined)) {
    const [all] = await runTogether(deps.store.db, [
      (trx) =>
        deps.users.createAllIn(
          trx,
          ctx,
          prepared.map((p) => p.user!),
        ),
    ]);
    if (all?.ok) {
      all.value.forEach((row, i) => {
        report(prepared[i]!, { ok: true, value: { id: row.id, version: 1 } });
      });
      return;
    }
  }
  for (let at = 0; at < prepared.length && !sink.stopped(); at += OPERATIONS_PER_COMMIT) {
    const some = prepared.slice(at, at + OPERATIONS_PER_COMMIT);
    // failOnErrors counts this transaction's errors too: stop before the next operation once reached.
    const tolerated = sink.errorsLeft();
    let errorsHere = 0;
    const outcomes = await runTogether(
      deps.store.db,
      some.map((p) => p.w.run.bind(p.w)),
      (_i, o) => {
        if (!o.ok) errorsHere++;
        return errorsHere < tolerated;
      },
    );
    outcomes.forEach((o, i) => {
      report(some[i]!, o);
    });
  }
}

/** The operation as the write its single request would make, with its bulkId references resolved. */
async function prepare(
  deps: BulkDeps,
  ctx: AuditContext,
  op: Operation,
  ids: Map<string, string>,
): Promise<Omit<Prepared, 'op'>> {
  const data = op.refs.size > 0 ? substitute(op.data, ids) : op.data;
  const id = op.id === undefined ? undefined : (substitute(op.id, ids) as string);
  const table = op.kind === 'Users' ? 'users' : 'groups';
  const ep = op.kind === 'Users' ? deps.users : deps.groups;
  const versionOf = async (trx: Kysely<Database>, rid: string) => {
    const row = await trx.selectFrom(table).select('version').where('id', '=', rid).executeTakeFirst();
    return row ? Number(row.version) : null;
  };
  switch (op.method) {
    case 'POST': {
      if (op.kind === 'Users') {
        const w = await deps.users.creation(ctx, data);
        return {
          user: w.user,
          w: { what: w.what, run: async (trx) => ({ id: (await w.run(trx)).id, version: 1 }) },
        };
      }
      const w = deps.groups.creation(ctx, data);
      return {
        w: {
          what: w.what,
          run: async (trx) => {
            const rid = await w.run(trx);
            return { id: rid, version: await versionOf(trx, rid) };
          },
        },
      };
    }
    case 'DELETE': {
      const w = ep.deletion(ctx, id!, op.version);
      return {
        w: {
          what: w.what,
          run: async (trx) => {
            await w.run(trx);
            return { id: id!.toLowerCase(), version: null };
          },
        },
      };
    }
    default: {
      const w =
        op.method === 'PUT'
          ? await ep.replacement(ctx, id!, data, op.version)
          : await ep.patching(ctx, id!, data, op.version);
      return {
        w: {
          what: w.what,
          run: async (trx) => {
            await w.run(trx);
            const rid = id!.toLowerCase();
            return { id: rid, version: await versionOf(trx, rid) };
          },
        },
      };
    }
  }
}
