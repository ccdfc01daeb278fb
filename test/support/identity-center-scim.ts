import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A SCIM server on loopback that behaves like IAM Identity Center's, limits included, and FAILS
 * (400, SCIM Error naming the limit) any request that breaks one: filters other than `eq` joined by
 * `and`, /Bulk, more than one email/phone/address, more than 100 member values in one PatchGroup or
 * CreateGroup, list pages over 50, a replace of group members. GetGroup/ListGroups return no
 * members. Faults (429 with Retry-After, 5xx, lost answers) can be injected; every request is recorded.
 */

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const MAX_MEMBERS = 100;
const MAX_COUNT = 50;

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  /** ms since the server started */
  at: number;
  /** the client's port of the connection it came on (which process sent it: see socketOwner) */
  clientPort: number;
  /** the SCIM error detail, when the request failed */
  detail?: string;
}

export interface Fault {
  method?: string;
  /** matched against the path (no query) */
  path?: RegExp;
  status: number;
  retryAfter?: string;
  /** how many matching requests fail (default 1) */
  times?: number;
  /** apply the request, then answer with the fault (an answer lost after the change was made) */
  afterApply?: boolean;
}

export interface RemoteUserRecord {
  id: string;
  userName: string;
  active: boolean;
  [k: string]: unknown;
}

export interface RemoteGroupRecord {
  id: string;
  displayName: string;
  externalId?: string;
  members: Set<string>;
}

export interface IdentityCenterScimServer {
  /** what Identity Center shows as "SCIM endpoint" */
  endpoint: string;
  /** what it shows as "Access token" */
  token: string;
  users: Map<string, RemoteUserRecord>;
  groups: Map<string, RemoteGroupRecord>;
  requests: RecordedRequest[];
  inject(fault: Fault): void;
  /**
   * Until `undo()`, matching requests are handled (and answered) `delayMs` late: a request in flight
   * has status 0 in `requests`, and is applied even if its client went away meanwhile.
   */
  slow(match: { method?: string; path?: RegExp; delayMs: number }): { undo(): void };
  userByName(userName: string): RemoteUserRecord | undefined;
  groupByName(displayName: string): RemoteGroupRecord | undefined;
  /** userNames of a group's members (the test's view; SCIM clients never see them) */
  memberNames(displayName: string): string[];
  close(): Promise<void>;
}

class LimitError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: string | undefined,
    detail: string,
  ) {
    super(detail);
  }
}

const bad = (scimType: string, detail: string) => new LimitError(400, scimType, detail);

/** Identity Center's filter grammar: `attr eq "value"` clauses joined by `and`, nothing else. */
export function parseEqFilter(filter: string, allowed: string[]): Array<{ attr: string; value: string }> {
  const tokens: string[] = [];
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|([()[\]])|([^\s()[\]"]+))/gy;
  let consumed = 0;
  while (consumed < filter.length) {
    const m = re.exec(filter);
    if (m === null) break;
    consumed = re.lastIndex;
    if (m[2])
      throw bad('invalidFilter', 'grouping and value-path filters are not supported; use eq joined by and');
    tokens.push(m[1] ?? m[3]!);
  }
  if (filter.slice(consumed).trim() !== '') throw bad('invalidFilter', 'unterminated string in filter');
  const clauses: Array<{ attr: string; value: string }> = [];
  for (let i = 0; i < tokens.length; ) {
    const [attr, op, value] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    if (attr?.toLowerCase() === 'not')
      throw bad('invalidFilter', 'the not operator is not supported; only eq joined by and');
    if (!attr || !op || value === undefined) throw bad('invalidFilter', 'incomplete filter expression');
    if (op.toLowerCase() !== 'eq')
      throw bad('invalidFilter', `operator ${op} is not supported; only eq joined by and`);
    if (!allowed.some((a) => a.toLowerCase() === attr.toLowerCase()))
      throw bad('invalidFilter', `filtering on ${attr} is not supported`);
    if (!value.startsWith('"')) throw bad('invalidFilter', 'eq needs a quoted string');
    clauses.push({ attr: attr.toLowerCase(), value: JSON.parse(value) as string });
    i += 3;
    const join = tokens[i];
    if (join === undefined) break;
    if (join.toLowerCase() === 'or')
      throw bad('invalidFilter', 'the or operator is not supported; only eq joined by and');
    if (join.toLowerCase() !== 'and') throw bad('invalidFilter', `unexpected ${join}; only eq joined by and`);
    i += 1;
    if (tokens[i] === undefined) throw bad('invalidFilter', 'filter ends after and');
  }
  if (clauses.length === 0) throw bad('invalidFilter', 'empty filter');
  return clauses;
}

function checkSingleValued(body: Record<string, unknown>): void {
  for (const attr of ['emails', 'phoneNumbers', 'addresses']) {
    const v = body[attr];
    if (v === undefined) continue;
    if (!Array.isArray(v)) throw bad('invalidValue', `${attr} must be an array`);
    if (v.length > 1)
      throw bad('invalidValue', `multiple values for ${attr} are not supported; send only the primary one`);
  }
}

function checkUser(body: Record<string, unknown>): void {
  checkSingleValued(body);
  const name = body.name as { givenName?: unknown; familyName?: unknown } | undefined;
  for (const [attr, value] of [
    ['userName', body.userName],
    ['displayName', body.displayName],
    ['name.givenName', name?.givenName],
    ['name.familyName', name?.familyName],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '') throw bad('invalidValue', `${attr} is required`);
  }
}

export async function startIdentityCenterScim(): Promise<IdentityCenterScimServer> {
  const token = randomBytes(24).toString('base64url');
  const users = new Map<string, RemoteUserRecord>();
  const groups = new Map<string, RemoteGroupRecord>();
  const requests: RecordedRequest[] = [];
  const faults: Array<Fault & { left: number }> = [];
  const started = performance.now();
  const tenant = randomUUID().slice(0, 8);
  const prefix = `/${tenant}/scim/v2`;

  const userByName = (userName: string) =>
    [...users.values()].find((u) => u.userName.toLowerCase() === userName.toLowerCase());
  const groupByName = (displayName: string) =>
    [...groups.values()].find((g) => g.displayName === displayName);
  const groupView = (g: RemoteGroupRecord) => ({
    schemas: [GROUP],
    id: g.id,
    displayName: g.displayName,
    ...(g.externalId ? { externalId: g.externalId } : {}),
    meta: { resourceType: 'Group' },
  });
  const userView = (u: RemoteUserRecord) => ({ schemas: [USER], ...u, meta: { resourceType: 'User' } });

  const memberIdsOf = (value: unknown, allowEmpty: boolean): string[] => {
    if (!Array.isArray(value)) throw bad('invalidValue', 'members must be an array of { value }');
    if (!allowEmpty && value.length === 0) throw bad('invalidValue', 'no members given');
    return value.map((m) => {
      const id = (m as { value?: unknown }).value;
      if (typeof id !== 'string' || !users.has(id))
        throw bad('invalidValue', `member ${String(id)} is not a user`);
      return id;
    });
  };

  function list(resources: unknown[], query: Record<string, string>) {
    const count = query.count === undefined ? MAX_COUNT : Number(query.count);
    if (!Number.isInteger(count) || count < 0)
      throw bad('invalidValue', 'count must be a non-negative integer');
    if (count > MAX_COUNT)
      throw bad('invalidValue', `count ${count} is over the limit of ${MAX_COUNT} per page`);
    const start = Math.max(1, Number(query.startIndex ?? 1) || 1);
    const page = resources.slice(start - 1, start - 1 + count);
    return {
      schemas: [LIST],
      totalResults: resources.length,
      startIndex: start,
      itemsPerPage: page.length,
      Resources: page,
    };
  }

  function route(method: string, path: string, query: Record<string, string>, body: Record<string, unknown>) {
    if (path === '/Bulk') throw bad('invalidSyntax', 'Bulk operations are not supported');
    const [, kind, id, extra] = path.split('/');
    if (extra !== undefined || (kind !== 'Users' && kind !== 'Groups'))
      throw new LimitError(404, undefined, `no resource at ${path}`);
    if (kind === 'Users') {
      if (!id && method === 'GET') {
        let all = [...users.values()];
        if (query.filter !== undefined) {
          for (const { attr, value } of parseEqFilter(query.filter, ['userName', 'externalId', 'id']))
            all = all.filter((u) =>
              attr === 'username'
                ? u.userName.toLowerCase() === value.toLowerCase()
                : String(u[attr === 'externalid' ? 'externalId' : 'id']) === value,
            );
        }
        return { status: 200, body: list(all.map(userView), query) };
      }
      if (!id && method === 'POST') {
        checkUser(body);
        if (userByName(String(body.userName)))
          throw new LimitError(409, 'uniqueness', `userName ${String(body.userName)} already exists`);
        const { schemas: _s, id: _i, ...rest } = body;
        const user = {
          ...rest,
          id: randomUUID(),
          userName: String(body.userName),
          active: body.active !== false,
        } as RemoteUserRecord;
        users.set(user.id, user);
        return { status: 201, body: userView(user) };
      }
      const user = id ? users.get(id) : undefined;
      if (!user) throw new LimitError(404, undefined, `user ${id} not found`);
      if (method === 'GET') return { status: 200, body: userView(user) };
      if (method === 'PUT') {
        checkUser(body);
        const other = userByName(String(body.userName));
        if (other && other.id !== user.id)
          throw new LimitError(409, 'uniqueness', `userName ${String(body.userName)} already exists`);
        const { schemas: _s, id: _i, meta: _m, ...rest } = body;
        const next = {
          ...rest,
          id: user.id,
          userName: String(body.userName),
          active: body.active !== false,
        } as RemoteUserRecord;
        users.set(user.id, next);
        return { status: 200, body: userView(next) };
      }
      if (method === 'PATCH') {
        for (const op of operationsOf(body)) {
          if (op.op.toLowerCase() !== 'replace' || !op.path)
            throw bad('invalidValue', 'PatchUser takes replace operations with a path');
          user[op.path] = op.value;
        }
        checkUser(user);
        return { status: 200, body: userView(user) };
      }
      if (method === 'DELETE') {
        users.delete(user.id);
        for (const g of groups.values()) g.members.delete(user.id);
        return { status: 204, body: undefined };
      }
    } else {
      if (!id && method === 'GET') {
        let all = [...groups.values()];
        if (query.filter !== undefined) {
          for (const { attr, value } of parseEqFilter(query.filter, ['displayName', 'externalId', 'id']))
            all = all.filter(
              (g) =>
                (attr === 'displayname' ? g.displayName : attr === 'externalid' ? g.externalId : g.id) ===
                value,
            );
        }
        return { status: 200, body: list(all.map(groupView), query) };
      }
      if (!id && method === 'POST') {
        if (typeof body.displayName !== 'string' || body.displayName.trim() === '')
          throw bad('invalidValue', 'displayName is required');
        if (Array.isArray(body.members) && body.members.length > MAX_MEMBERS)
          throw bad(
            'tooMany',
            `CreateGroup takes at most ${MAX_MEMBERS} members (got ${body.members.length})`,
          );
        const members = body.members === undefined ? [] : memberIdsOf(body.members, true);
        if (groupByName(body.displayName))
          throw new LimitError(409, 'uniqueness', `group ${body.displayName} already exists`);
        const group: RemoteGroupRecord = {
          id: randomUUID(),
          displayName: body.displayName,
          ...(typeof body.externalId === 'string' ? { externalId: body.externalId } : {}),
          members: new Set(members),
        };
        groups.set(group.id, group);
        return { status: 201, body: groupView(group) };
      }
      const group = id ? groups.get(id) : undefined;
      if (!group) throw new LimitError(404, undefined, `group ${id} not found`);
      if (method === 'GET') return { status: 200, body: groupView(group) };
      if (method === 'PUT') throw bad('invalidSyntax', 'PUT on Groups is not supported; use PATCH');
      if (method === 'PATCH') {
        const ops = operationsOf(body);
        let memberValues = 0;
        for (const op of ops) {
          const kind = op.op.toLowerCase();
          const path = op.path ?? '';
          const targetsMembers =
            /^members\b/i.test(path) ||
            (path === '' &&
              typeof op.value === 'object' &&
              op.value !== null &&
              'members' in (op.value as object));
          if (kind === 'replace' && targetsMembers)
            throw bad('invalidValue', 'replace of group members is not supported; use add and remove');
          if (targetsMembers) memberValues += Array.isArray(op.value) ? op.value.length : 1;
        }
        if (memberValues > MAX_MEMBERS)
          throw bad(
            'tooMany',
            `PatchGroup takes at most ${MAX_MEMBERS} member changes (got ${memberValues})`,
          );
        for (const op of ops) {
          const kind = op.op.toLowerCase();
          const path = op.path ?? '';
          if (kind === 'replace' && path.toLowerCase() === 'displayname') {
            if (typeof op.value !== 'string' || op.value.trim() === '')
              throw bad('invalidValue', 'displayName is required');
            group.displayName = op.value;
          } else if (kind === 'replace' && path.toLowerCase() === 'externalid')
            group.externalId = String(op.value);
          else if (kind === 'add' && path.toLowerCase() === 'members')
            for (const m of memberIdsOf(op.value, false)) group.members.add(m);
          else if (kind === 'remove' && path.toLowerCase() === 'members') {
            for (const m of memberIdsOf(op.value, false)) group.members.delete(m);
          } else if (kind === 'remove' && /^members\[value eq "([^"]+)"\]$/i.test(path)) {
            group.members.delete(/^members\[value eq "([^"]+)"\]$/i.exec(path)![1]!);
          } else throw bad('invalidPath', `unsupported PatchGroup operation ${op.op} ${path}`);
        }
        return { status: 204, body: undefined };
      }
      if (method === 'DELETE') {
        groups.delete(group.id);
        return { status: 204, body: undefined };
      }
    }
    throw new LimitError(405, undefined, `${method} is not supported on ${path}`);
  }

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      ...headers,
    });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const errorBody = (status: number, detail: string, scimType?: string) => ({
    schemas: [ERROR],
    status: String(status),
    ...(scimType ? { scimType } : {}),
    detail,
  });

  const slowed: Array<{ method?: string; path?: RegExp; delayMs: number }> = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const record: RecordedRequest = {
      method,
      path: url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      status: 0,
      at: performance.now() - started,
      clientPort: req.socket.remotePort ?? 0,
    };
    requests.push(record);
    const answer = (status: number, body: unknown, headers?: Record<string, string>) => {
      record.status = status;
      if (status >= 400) record.detail = (body as { detail?: string } | undefined)?.detail;
      send(res, status, body, headers);
    };
    const auth = Buffer.from(req.headers.authorization ?? '');
    const expected = Buffer.from(`Bearer ${token}`);
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected))
      return answer(401, errorBody(401, 'missing or wrong bearer token'));
    if (!url.pathname.startsWith(prefix)) return answer(404, errorBody(404, 'not a SCIM path'));
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      record.body = body;
    } catch {
      return answer(400, errorBody(400, 'body is not JSON', 'invalidSyntax'));
    }
    const slowness = slowed.find(
      (m) => (!m.method || m.method === method) && (!m.path || m.path.test(record.path)),
    );
    if (slowness) await new Promise((r) => setTimeout(r, slowness.delayMs));
    const fault = faults.find(
      (f) => f.left > 0 && (!f.method || f.method === method) && (!f.path || f.path.test(record.path)),
    );
    if (fault) fault.left -= 1;
    const faultAnswer = (f: Fault) =>
      answer(
        f.status,
        errorBody(f.status, f.status === 429 ? 'rate exceeded' : 'injected failure'),
        f.retryAfter ? { 'retry-after': f.retryAfter } : {},
      );
    if (fault && !fault.afterApply) return faultAnswer(fault);
    try {
      const out = route(method, record.path, record.query, body);
      if (fault) return faultAnswer(fault);
      answer(out.status, out.body);
    } catch (err) {
      if (err instanceof LimitError)
        return answer(err.status, errorBody(err.status, err.message, err.scimType));
      answer(500, errorBody(500, (err as Error).message));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}${prefix}`,
    token,
    users,
    groups,
    requests,
    inject(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    slow(match) {
      slowed.push(match);
      return {
        undo() {
          slowed.splice(slowed.indexOf(match), 1);
        },
      };
    },
    userByName,
    groupByName,
    memberNames(displayName) {
      const g = groupByName(displayName);
      if (!g) throw new Error(`no group ${displayName}`);
      return [...g.members].map((id) => users.get(id)?.userName ?? `(gone ${id})`).sort();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function operationsOf(body: Record<string, unknown>): Array<{ op: string; path?: string; value?: unknown }> {
  const ops = body.Operations;
  if (!Array.isArray(ops) || ops.length === 0)
    throw bad('invalidSyntax', 'Operations must be a non-empty array');
  return ops.map((o) => {
    const op = o as { op?: unknown; path?: unknown; value?: unknown };
    if (typeof op.op !== 'string' || !['add', 'remove', 'replace'].includes(op.op.toLowerCase()))
      throw bad('invalidSyntax', `unknown op ${String(op.op)}`);
    return { op: op.op, ...(typeof op.path === 'string' ? { path: op.path } : {}), value: op.value };
  });
}
