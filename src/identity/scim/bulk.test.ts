import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { expectScimError, type ScimClient, scimClient } from '../../../test/support/scim.js';

const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

interface OpResult {
  method: string;
  bulkId?: string;
  location?: string;
  version?: string;
  status: string;
  response?: { schemas: string[]; status: string; scimType?: string; detail: string };
}

/** /Bulk (RFC 7644 §3.7) and group commit of concurrent creates, against real SQLite and PostgreSQL. */
describe.each(ENGINES)('SCIM /Bulk and concurrent creates on %s', (engine) => {
  let ferry: TestFerry;
  let scim: ScimClient;
  let seq = 0;
  const uniq = (what: string) => `${what}-${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    scim = await scimClient(ferry);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const bulk = (Operations: unknown[], extra: Record<string, unknown> = {}) =>
    scim.post('/Bulk', { schemas: [BULK_REQUEST], Operations, ...extra });
  const ops = (res: { body: Record<string, unknown> }) => res.body.Operations as OpResult[];
  const userOp = (bulkId: string, userName: string) => ({
    method: 'POST',
    path: '/Users',
    bulkId,
    data: { schemas: [USER], userName, active: true },
  });
  const db = () => ferry.services.store.db;
  const n = async (q: { executeTakeFirstOrThrow(): Promise<{ n: number | string }> }) =>
    Number((await q.executeTakeFirstOrThrow()).n);
  /** users whose userName starts with the prefix */
  const usersLike = (prefix: string) =>
    n(
      db()
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_name', 'like', `${prefix}%`),
    );
  /** the directory's own audit and outbox records (error detections may add others) */
  const DIRECTORY_TYPES = [
    'user.created',
    'user.updated',
    'user.deleted',
    'group.created',
    'group.member-added',
  ];
  const auditRows = () =>
    n(
      db()
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('type', 'in', DIRECTORY_TYPES),
    );
  const outboxRows = () =>
    n(
      db()
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('type', 'in', ['user.created', 'group.created', 'membership.changed']),
    );

  it('creates users and a group whose members name them by bulkId, each with its audit and outbox rows', async () => {
    const prefix = uniq('bulk-ok');
    const audit0 = await auditRows();
    const outbox0 = await outboxRows();
    const res = await bulk([
      // The group comes first but refers to users created later in the request: it waits for them.
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'g1',
        data: {
          schemas: [GROUP],
          displayName: `${prefix}-group`,
          members: [{ value: 'bulkId:u1' }, { value: 'bulkId:u2' }],
        },
      },
      userOp('u1', `${prefix}-ada@contoso.example`),
      userOp('u2', `${prefix}-bob@contoso.example`),
    ]);
    expect(res.status).toBe(200);
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:BulkResponse']);
    const results = ops(res);
    expect(results.map((r) => [r.bulkId, r.status])).toEqual([
      ['g1', '201'],
      ['u1', '201'],
      ['u2', '201'],
    ]);
    for (const r of results) {
      expect(r.method).toBe('POST');
      expect(r.location).toMatch(/\/scim\/v2\/(Users|Groups)\/[0-9a-f-]{36}$/);
      expect(r.version).toMatch(/^W\/"\d+"$/);
    }
    const groupId = results[0]!.location!.split('/').pop()!;
    const group = await scim.get(`/Groups/${groupId}`);
    expect(group.status).toBe(200);
    const memberIds = (group.body.members as Array<{ value: string }>).map((m) => m.value).sort();
    expect(memberIds).toEqual(
      results
        .slice(1)
        .map((r) => r.location!.split('/').pop()!)
        .sort(),
    );
    expect(group.headers.get('etag')).toBe(results[0]!.version);
    // 2 user.created + group.created + 2 group.member-added, and as many outbox events
    expect((await auditRows()) - audit0).toBe(5);
    expect((await outboxRows()) - outbox0).toBe(5);
  });

  it('runs PATCH, PUT and DELETE operations, by id and by bulkId, with If-Match from version', async () => {
    const prefix = uniq('bulk-rw');
    const res = await bulk([
      userOp('a', `${prefix}-a@contoso.example`),
      {
        method: 'PATCH',
        path: '/Users/bulkId:a',
        data: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'displayName', value: 'Ada' }],
        },
      },
    ]);
    const [created, patched] = ops(res);
    expect(created!.status).toBe('201');
    expect(patched).toMatchObject({
      method: 'PATCH',
      status: '200',
      location: created!.location,
      version: 'W/"2"',
    });
    const id = created!.location!.split('/').pop()!;
    expect((await scim.get(`/Users/${id}`)).body.displayName).toBe('Ada');

    const res2 = await bulk([
      {
        method: 'PUT',
        path: `/Users/${id}`,
        version: 'W/"1"', // stale
        data: { schemas: [USER], userName: `${prefix}-a@contoso.example`, displayName: 'Stale' },
      },
      {
        method: 'PUT',
        path: `/Users/${id}`,
        version: 'W/"2"',
        data: { schemas: [USER], userName: `${prefix}-a@contoso.example`, displayName: 'Ada L.' },
      },
      { method: 'DELETE', path: `/Users/${id}`, version: 'W/"3"' },
    ]);
    const [stale, put, del] = ops(res2);
    expect(stale).toMatchObject({ method: 'PUT', status: '412' });
    expect(stale!.response!.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    expect(put).toMatchObject({ status: '200', version: 'W/"3"' });
    expect(del).toMatchObject({ method: 'DELETE', status: '204' });
    expectScimError(await scim.get(`/Users/${id}`), 404);
  });

  /** a value nested `depth` levels deep */
  const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { a: [nested(depth - 1)] });

  it('answers each failed operation with its SCIM error and still commits the others', async () => {
    const prefix = uniq('bulk-err');
    const taken = `${prefix}-taken@contoso.example`;
    const res = await bulk([
      userOp('t1', taken),
      userOp('t2', taken.toUpperCase()), // userName is case-insensitive: taken
      { method: 'POST', path: '/Users', bulkId: 'bad', data: { schemas: [USER] } }, // no userName
      { method: 'POST', path: '/Users', data: { schemas: [USER], userName: `${prefix}-x@c.example` } }, // no bulkId
      { method: 'GET', path: '/Users' },
      { method: 'PATCH', path: '/Nope/1', data: {} },
      { method: 'DELETE', path: '/Users/%E0%A4%A' }, // not valid percent-encoding
      { method: 'POST', path: '/Users', bulkId: 'deep', data: { schemas: [USER], x: nested(40) } },
      userOp('ok', `${prefix}-ok@contoso.example`),
    ]);
    expect(res.status).toBe(200);
    expect(ops(res).map((r) => [r.status, r.response?.scimType ?? null])).toEqual([
      ['201', null],
      ['409', 'uniqueness'],
      ['400', 'invalidValue'],
      ['400', 'invalidSyntax'],
      ['400', 'invalidSyntax'],
      ['400', 'invalidSyntax'],
      ['400', 'invalidSyntax'],
      ['400', 'invalidSyntax'],
      ['201', null],
    ]);
    for (const r of ops(res).filter((o) => o.status !== '201')) {
      expect(r.response!.status).toBe(r.status);
      expect(typeof r.response!.detail).toBe('string');
    }
    expect(await usersLike(prefix)).toBe(2);
  });

  it('fails unknown, failed and circular bulkId references with 409 and creates nothing for them', async () => {
    const prefix = uniq('bulk-refs');
    const audit0 = await auditRows();
    const res = await bulk([
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'unknown-ref',
        data: { schemas: [GROUP], displayName: `${prefix}-g0`, members: [{ value: 'bulkId:nobody' }] },
      },
      // a cycle: each group lists the other as a member
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'c1',
        data: { schemas: [GROUP], displayName: `${prefix}-c1`, members: [{ value: 'bulkId:c2' }] },
      },
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'c2',
        data: { schemas: [GROUP], displayName: `${prefix}-c2`, members: [{ value: 'bulkId:c1' }] },
      },
      // refers to a POST that fails
      { method: 'POST', path: '/Users', bulkId: 'fails', data: { schemas: [USER] } },
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'g-fails',
        data: { schemas: [GROUP], displayName: `${prefix}-g2`, members: [{ value: 'bulkId:fails' }] },
      },
      { method: 'PATCH', path: '/Users/bulkId:nobody', data: { schemas: [], Operations: [] } },
    ]);
    expect(res.status).toBe(200);
    const byId = new Map(ops(res).map((r) => [r.bulkId ?? r.method, r]));
    for (const bulkId of ['unknown-ref', 'c1', 'c2', 'g-fails', 'PATCH']) {
      expect(byId.get(bulkId), bulkId).toMatchObject({ status: '409' });
      expect(byId.get(bulkId)!.response!.scimType).toBe('invalidValue');
    }
    expect(byId.get('fails')!.status).toBe('400');
    expect(ops(res)).toHaveLength(6);
    expect(await auditRows()).toBe(audit0);
    const groups = await scim.get(`/Groups?filter=${encodeURIComponent(`displayName sw "${prefix}"`)}`);
    expect(groups.body.totalResults).toBe(0);
  });

  it('stops after failOnErrors errors and leaves the rest unprocessed', async () => {
    const prefix = uniq('bulk-stop');
    const res = await bulk(
      [
        userOp('a', `${prefix}-a@contoso.example`),
        { method: 'POST', path: '/Users', bulkId: 'e1', data: { schemas: [USER] } },
        userOp('b', `${prefix}-b@contoso.example`),
        userOp('dup', `${prefix}-a@contoso.example`),
        userOp('c', `${prefix}-c@contoso.example`),
      ],
      { failOnErrors: 2 },
    );
    expect(res.status).toBe(200);
    expect(ops(res).map((r) => [r.bulkId, r.status])).toEqual([
      ['a', '201'],
      ['e1', '400'],
      ['b', '201'],
      ['dup', '409'],
    ]);
    expect(await usersLike(prefix)).toBe(3 - 1); // a and b; c was never attempted
    const one = await bulk(
      [{ method: 'POST', path: '/Users', bulkId: 'x', data: {} }, userOp('y', `${prefix}-y@c.example`)],
      {
        failOnErrors: 1,
      },
    );
    expect(ops(one).map((r) => r.status)).toEqual(['400']);
    expectScimError(await bulk([], { failOnErrors: 0 }), 400, 'invalidValue');
  });

  it('refuses more than maxOperations operations and a larger payload with 413, and malformed requests with 400', async () => {
    const spc = await scim.get('/ServiceProviderConfig');
    const { maxOperations, maxPayloadSize } = spc.body.bulk as {
      maxOperations: number;
      maxPayloadSize: number;
    };
    expect(spc.body.bulk).toMatchObject({ supported: true });
    const prefix = uniq('bulk-limit');
    const tooMany = Array.from({ length: maxOperations + 1 }, (_, i) =>
      userOp(`u${i}`, `${prefix}-${i}@c.example`),
    );
    const many = expectScimError(await bulk(tooMany), 413);
    expect(many.detail).toContain(String(maxOperations));
    const big = expectScimError(
      await bulk([
        {
          method: 'POST',
          path: '/Users',
          bulkId: 'big',
          data: { schemas: [USER], userName: `${prefix}@c.example`, title: 'x'.repeat(maxPayloadSize) },
        },
      ]),
      413,
    );
    expect(big.detail).toContain('maxPayloadSize');
    expect(await usersLike(prefix)).toBe(0);
    expectScimError(await scim.post('/Bulk', { Operations: [] }), 400, 'invalidSyntax');
    expectScimError(await scim.post('/Bulk', { schemas: [BULK_REQUEST] }), 400, 'invalidSyntax');
    expectScimError(await scim.post('/Bulk', '{"schemas":'), 400, 'invalidSyntax');
    const empty = await bulk([]);
    expect(empty.status).toBe(200);
    expect(empty.body.Operations).toEqual([]);
  });

  it('answers 401 without a valid token, and stays in the connection lane', async () => {
    const body = JSON.stringify({
      schemas: [BULK_REQUEST],
      Operations: [userOp('u', `${uniq('bulk-auth')}@c.example`)],
    });
    for (const authorization of [
      undefined,
      `Bearer ferry_scim_${'0'.repeat(32)}_${'A'.repeat(43)}`,
      `Bearer ${ferry.adminToken}`,
    ]) {
      const res = await fetch(new URL('/scim/v2/Bulk', ferry.url), {
        method: 'POST',
        headers: { 'content-type': 'application/scim+json', ...(authorization ? { authorization } : {}) },
        body,
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { schemas: string[] }).schemas).toEqual([
        'urn:ietf:params:scim:api:messages:2.0:Error',
      ]);
    }
    // another connection's user is not found (404) through Bulk as through its own path
    const other = await scimClient(ferry, uniq('other'));
    const mine = await bulk([userOp('m', `${uniq('bulk-lane')}@c.example`)]);
    const id = ops(mine)[0]!.location!.split('/').pop()!;
    const res = await other.post('/Bulk', {
      schemas: [BULK_REQUEST],
      Operations: [{ method: 'DELETE', path: `/Users/${id}` }],
    });
    expect(ops(res)[0]).toMatchObject({ status: '403' });
    expect((await scim.get(`/Users/${id}`)).status).toBe(200);
  });

  it('takes exactly one of 8 concurrent creates of the same userName, and answers the others 409', async () => {
    const userName = `${uniq('same')}@contoso.example`;
    const audit0 = await auditRows();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => scim.post('/Users', { schemas: [USER], userName })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expectScimError(r, 409, 'uniqueness');
    expect(await usersLike(userName)).toBe(1);
    expect((await auditRows()) - audit0).toBe(1);
  });

  it('commits every one of a burst of concurrent creates once, each with its audit and outbox rows', async () => {
    const prefix = uniq('burst');
    const audit0 = await auditRows();
    const outbox0 = await outboxRows();
    const burst = 120;
    const results = await Promise.all(
      Array.from({ length: burst }, (_, i) =>
        scim.post('/Users', {
          schemas: [USER],
          // every 10th repeats an earlier name: those fail alone, the rest of their batch commits
          userName: `${prefix}-${i % 10 === 9 ? i - 1 : i}@contoso.example`,
        }),
      ),
    );
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(burst - burst / 10);
    expect(results.filter((r) => r.status === 409)).toHaveLength(burst / 10);
    const ids = created.map((r) => r.body.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    // each answered user exists, exactly once
    const rows = await ferry.services.store.db
      .selectFrom('users')
      .select('id')
      .where('id', 'in', ids)
      .execute();
    expect(rows).toHaveLength(ids.length);
    expect(await usersLike(prefix)).toBe(ids.length);
    expect((await auditRows()) - audit0).toBe(ids.length);
    expect((await outboxRows()) - outbox0).toBe(ids.length);
  });
});
