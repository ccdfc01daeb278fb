import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import {
  ENTERPRISE,
  expectScimError,
  filterQuery,
  PATCH_OP,
  type ScimClient,
  scimClient,
} from '../../../test/support/scim.js';
import { ManualClock } from '../../clock.js';
import { SCIM_TOKEN_CACHE_MS } from './connections.js';

describe.each(ENGINES)('SCIM service provider on %s', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let scim: ScimClient;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
    scim = await scimClient(ferry);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const createUser = async (body: Record<string, unknown>) => {
    const res = await scim.post('/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      ...body,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; userName: string; meta: { version: string; location: string } };
  };
  const userRow = (id: string) =>
    ferry.services.store.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  const auditCount = async () =>
    Number(
      (
        await ferry.services.store.db
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  describe('authentication', () => {
    it.each([
      '/Users',
      '/Groups',
      '/Users/00000000-0000-0000-0000-000000000000',
      '/ServiceProviderConfig',
      '/Schemas',
      '/ResourceTypes',
      '/NoSuchThing',
    ])('answers 401 on %s without a token, with a wrong one and with an admin API token', async (path) => {
      for (const authorization of [
        undefined,
        `Bearer ferry_scim_${'0'.repeat(32)}_${'A'.repeat(43)}`,
        `Bearer ${ferry.adminToken}`,
      ]) {
        const res = await fetch(new URL(`/scim/v2${path}`, ferry.url), {
          headers: authorization ? { authorization } : {},
        });
        expect(res.status).toBe(401);
        expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
        const body = (await res.json()) as Record<string, unknown>;
        expect(body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      }
    });

    it('stops accepting a token revoked by another instance within the verification cache lifetime', async () => {
      const other = await scimClient(ferry, 'revoked-elsewhere');
      expect((await other.get('/Users?count=1')).status).toBe(200);
      // as another instance would: the row changes, this process is not told
      await ferry.services.store.db
        .updateTable('scim_connections')
        .set({ revoked_at: clock.now().toISOString() })
        .where('id', '=', other.connectionId)
        .execute();
      clock.advance(SCIM_TOKEN_CACHE_MS);
      expectScimError(await other.get('/Users?count=1'), 401);
    });

    it('refuses a verified token’s id with another secret, and still accepts the right one after', async () => {
      expect((await scim.get('/Users?count=1')).status).toBe(200); // verified: its row is cached
      const secret = scim.token.slice(-43);
      const other = secret.startsWith('A') ? `B${secret.slice(1)}` : `A${secret.slice(1)}`;
      const res = await fetch(new URL('/scim/v2/Users?count=1', ferry.url), {
        headers: { authorization: `Bearer ${scim.token.slice(0, -43)}${other}` },
      });
      expect(res.status).toBe(401);
      expect((await scim.get('/Users?count=1')).status).toBe(200);
    });

    it('answers 401 once the connection is revoked, and audits the revocation', async () => {
      const other = await scimClient(ferry, 'to-revoke');
      expect((await other.get('/Users?count=1')).status).toBe(200);
      const list = await ferry.api('/api/v1/scim/tokens');
      const items = ((await list.json()) as { items: Array<{ id: string; name: string }> }).items;
      const id = items.find((c) => c.name === 'to-revoke')!.id;
      expect((await ferry.api(`/api/v1/scim/tokens/${id}`, { method: 'DELETE' })).status).toBe(200);
      expectScimError(await other.get('/Users'), 401);
    });

    it('stores only a hash of the token', async () => {
      const rows = await ferry.services.store.db.selectFrom('scim_connections').selectAll().execute();
      const secret = scim.token.slice(-43); // <prefix><32 hex id>_<43 base64url secret>; the secret itself may contain '_'
      for (const r of rows) expect(JSON.stringify(r)).not.toContain(secret);
    });
  });

  describe('discovery', () => {
    it('serves ServiceProviderConfig, Schemas and ResourceTypes', async () => {
      const spc = await scim.get('/ServiceProviderConfig');
      expect(spc.body).toMatchObject({
        patch: { supported: true },
        filter: { supported: true },
        etag: { supported: true },
        bulk: { supported: true, maxOperations: 1000, maxPayloadSize: 1048576 },
      });
      const schemas = await scim.get('/Schemas');
      expect(schemas.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
      expect(schemas.body.totalResults).toBe(3);
      expect(schemas.body.Resources!.map((r) => r.id)).toContain(ENTERPRISE);
      const user = await scim.get('/Schemas/urn:ietf:params:scim:schemas:core:2.0:User');
      expect((user.body.attributes as Array<{ name: string }>).map((a) => a.name)).toContain('userName');
      const types = await scim.get('/ResourceTypes');
      expect(types.body.Resources!.map((r) => r.endpoint)).toEqual(['/Users', '/Groups']);
      expectScimError(await scim.get('/Schemas/urn:nope'), 404);
    });
  });

  describe('users', () => {
    it('creates a user with its enterprise attributes, and finds it by userName and externalId', async () => {
      const u = await createUser({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
        userName: 'Ada.Lovelace@contoso.example',
        externalId: 'ext-ada',
        name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
        displayName: 'Ada Lovelace',
        title: 'Engineer',
        emails: [{ value: 'ada@contoso.example', type: 'work', primary: true }],
        phoneNumbers: [{ value: '+1 555 0100', type: 'mobile' }],
        [ENTERPRISE]: {
          department: 'R&D',
          costCenter: 'CC-1',
          employeeNumber: '42',
          manager: { value: 'mgr-1' },
        },
      });
      expect(u.meta.version).toBe('W/"1"');
      expect(u.meta.location).toBe(`${ferry.url}/scim/v2/Users/${u.id}`);
      const byName = await scim.get(`/Users?${filterQuery('userName eq "ada.lovelace@CONTOSO.example"')}`);
      expect(byName.body.totalResults).toBe(1);
      expect(byName.body.Resources![0]).toMatchObject({
        id: u.id,
        userName: 'Ada.Lovelace@contoso.example',
        name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
        title: 'Engineer',
        active: true,
        [ENTERPRISE]: {
          department: 'R&D',
          costCenter: 'CC-1',
          employeeNumber: '42',
          manager: { value: 'mgr-1' },
        },
      });
      const byExt = await scim.get(`/Users?${filterQuery('externalId eq "ext-ada"')}`);
      expect(byExt.body.Resources!.map((r) => r.id)).toEqual([u.id]);
      // externalId is caseExact
      expect((await scim.get(`/Users?${filterQuery('externalId eq "EXT-ADA"')}`)).body.totalResults).toBe(0);
      // the directory (admin API) sees the same person
      const admin = (await (await ferry.api(`/api/v1/users/${u.id}`)).json()) as {
        attributes: Record<string, string>;
      };
      expect(admin.attributes).toMatchObject({ department: 'R&D', jobTitle: 'Engineer', manager: 'mgr-1' });
      const single = await scim.get(`/Users/${u.id}`);
      expect(single.headers.get('etag')).toBe('W/"1"');
    });

    it('answers 409 uniqueness for a taken userName (any case) and writes nothing', async () => {
      await createUser({ userName: 'dup@contoso.example' });
      const before = await auditCount();
      expectScimError(await scim.post('/Users', { userName: 'DUP@contoso.example' }), 409, 'uniqueness');
      expect(await auditCount()).toBe(before);
    });

    it('answers 404 for unknown ids, and 400 for bodies that are not users', async () => {
      expectScimError(await scim.get('/Users/00000000-0000-4000-8000-000000000000'), 404);
      expectScimError(await scim.get('/Users/not-an-id'), 404);
      expectScimError(await scim.del('/Users/00000000-0000-4000-8000-000000000000'), 404);
      expectScimError(
        await scim.patch('/Users/00000000-0000-4000-8000-000000000000', [
          { op: 'replace', path: 'active', value: false },
        ]),
        404,
      );
      expectScimError(await scim.post('/Users', { displayName: 'no userName' }), 400, 'invalidValue');
      expectScimError(await scim.post('/Users', { userName: 'x@y', active: 'maybe' }), 400, 'invalidValue');
      expectScimError(await scim.post('/Users', { userName: 'has space@y' }), 400, 'invalidValue');
      expectScimError(await scim.request('POST', '/Users', '{"userName": '), 400, 'invalidSyntax');
      expectScimError(await scim.get('/Nope'), 404);
    });

    it('accepts application/json as well as application/scim+json', async () => {
      const res = await scim.request(
        'POST',
        '/Users',
        { userName: 'plainjson@contoso.example' },
        { 'content-type': 'application/json' },
      );
      expect(res.status).toBe(201);
    });
  });

  describe('filters', () => {
    const people = [
      {
        userName: 'alice@filter.example',
        displayName: 'Alice Adams',
        active: true,
        emails: [
          { value: 'alice@work.example', type: 'work' },
          { value: 'alice@home.example', type: 'home' },
        ],
        [ENTERPRISE]: { department: 'Sales' },
      },
      {
        userName: 'bob@filter.example',
        displayName: 'Bob Brown',
        active: false,
        emails: [{ value: 'bob@work.example', type: 'work' }],
        [ENTERPRISE]: { department: 'Engineering' },
      },
      {
        userName: 'carol@filter.example',
        displayName: 'Carol Clark',
        active: true,
        externalId: 'C-3',
        emails: [{ value: 'carol@home.example', type: 'home' }],
        [ENTERPRISE]: { department: 'engineering' },
      },
      { userName: 'dave@filter.example', active: true, title: 'CTO' },
    ];
    beforeAll(async () => {
      for (const p of people) {
        await createUser(p);
        clock.advance(60_000);
      }
    });
    const names = async (filter: string) => {
      const res = await scim.get(
        `/Users?${filterQuery(`userName ew "@filter.example" and (${filter})`)}&count=100`,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.totalResults).toBe(res.body.Resources!.length);
      return res.body.Resources!.map((r) => String(r.userName).split('@')[0]).sort();
    };

    it.each([
      ['userName eq "ALICE@filter.example"', ['alice']],
      ['userName ne "alice@filter.example"', ['bob', 'carol', 'dave']],
      ['displayName ne "bob"', ['alice', 'bob', 'carol', 'dave']],
      ['title ne "cto"', ['alice', 'bob', 'carol']],
      ['emails.value ne "bob@work.example"', ['alice', 'carol', 'dave']],
      ['displayName co "ar"', ['carol']],
      ['displayName sw "b"', ['bob']],
      ['displayName ew "CLARK"', ['carol']],
      ['displayName pr', ['alice', 'bob', 'carol']],
      ['not (displayName pr)', ['dave']],
      ['userName gt "bob@filter.example"', ['carol', 'dave']],
      ['userName ge "bob@filter.example"', ['bob', 'carol', 'dave']],
      ['userName lt "bob@filter.example"', ['alice']],
      ['userName le "bob@filter.example"', ['alice', 'bob']],
      ['active eq false', ['bob']],
      ['active eq "False"', ['bob']],
      ['externalId eq "C-3"', ['carol']],
      ['externalId pr', ['carol']],
      ['title eq "cto"', ['dave']],
      ['emails.value eq "BOB@work.example"', ['bob']],
      ['emails eq "bob@work.example"', ['bob']],
      ['emails co "@home."', ['alice', 'carol']],
      ['emails[type eq "work" and value sw "alice"]', ['alice']],
      ['emails[type eq "work"]', ['alice', 'bob']],
      ['emails[not (type eq "work")]', ['alice', 'carol']],
      ['emails.type eq "home" and active eq true', ['alice', 'carol']],
      [`${ENTERPRISE}:department eq "engineering"`, ['bob', 'carol']],
      [`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department sw "Sal"`, ['alice']],
      ['USERNAME sw "A" or DisplayName eq "bob brown"', ['alice', 'bob']],
      ['(active eq true and emails pr) or title pr', ['alice', 'carol', 'dave']],
      ['not (active eq true) or userName eq "dave@filter.example"', ['bob', 'dave']],
      ['meta.created lt "2026-03-02T09:01:30Z"', ['alice', 'bob']],
      ['meta.lastModified ge "2026-03-02T09:02:00.000Z"', ['carol', 'dave']],
      ['urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave@filter.example"', ['dave']],
    ])('%s', async (filter, expected) => {
      expect(await names(filter)).toEqual(expected);
    });

    it.each([
      ['userName eq', 'invalidFilter'],
      ['userName xx "a"', 'invalidFilter'],
      ['(userName eq "a"', 'invalidFilter'],
      ['nosuch eq "a"', 'invalidFilter'],
      ['urn:nope:attr eq "a"', 'invalidFilter'],
      ['active gt true', 'invalidFilter'],
      ['userName eq 12', 'invalidFilter'],
      ['meta.created gt "not a date"', 'invalidFilter'],
      ['emails[type eq "work"', 'invalidFilter'],
      ['password eq "x"', 'invalidFilter'],
    ])('rejects %s with 400 %s', async (filter, scimType) => {
      expectScimError(await scim.get(`/Users?${filterQuery(filter)}`), 400, scimType);
    });

    it('pages with startIndex and count, totalResults counting every match', async () => {
      const q = filterQuery('userName ew "@filter.example"');
      const p1 = await scim.get(`/Users?${q}&startIndex=1&count=2`);
      expect(p1.body).toMatchObject({ totalResults: 4, startIndex: 1, itemsPerPage: 2 });
      const p2 = await scim.get(`/Users?${q}&startIndex=3&count=2`);
      expect(p2.body).toMatchObject({ totalResults: 4, startIndex: 3, itemsPerPage: 2 });
      const all = [...p1.body.Resources!, ...p2.body.Resources!].map((r) => r.userName);
      expect(new Set(all).size).toBe(4);
      const none = await scim.get(`/Users?${q}&count=0`);
      expect(none.body).toMatchObject({ totalResults: 4, itemsPerPage: 0, Resources: [] });
      // a filter evaluated in memory pages the same way
      const mem = filterQuery('userName ew "@filter.example" and emails pr');
      const m2 = await scim.get(`/Users?${mem}&startIndex=2&count=1`);
      expect(m2.body).toMatchObject({ totalResults: 3, startIndex: 2, itemsPerPage: 1 });
      expectScimError(await scim.get(`/Users?${q}&count=abc`), 400, 'invalidValue');
    });

    it('projects attributes and excludedAttributes', async () => {
      const q = filterQuery('userName eq "alice@filter.example"');
      const only = (await scim.get(`/Users?${q}&attributes=userName,emails.value,${ENTERPRISE}:department`))
        .body.Resources![0]!;
      expect(Object.keys(only).sort()).toEqual(['emails', 'id', 'schemas', 'userName', ENTERPRISE].sort());
      expect(only.emails).toEqual([{ value: 'alice@work.example' }, { value: 'alice@home.example' }]);
      expect(only[ENTERPRISE]).toEqual({ department: 'Sales' });
      const without = (await scim.get(`/Users?${q}&excludedAttributes=emails,meta,id`)).body.Resources![0]!;
      expect(without.emails).toBeUndefined();
      expect(without.meta).toBeUndefined();
      expect(without.id).toBeDefined(); // returned: always
      expect(without.displayName).toBe('Alice Adams');
      expectScimError(await scim.get(`/Users?${q}&attributes=nosuch`), 400, 'invalidPath');
    });
  });

  describe('PATCH, PUT and ETags', () => {
    it('applies add, replace and remove in every form, Entra-style', async () => {
      const u = await createUser({
        userName: 'patchme@contoso.example',
        emails: [{ value: 'old@contoso.example', type: 'work', primary: true }],
      });
      const res = await scim.patch(`/Users/${u.id}`, [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'new@contoso.example' },
        { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0199' },
        { op: 'replace', path: 'name.givenName', value: 'Pat' },
        { op: 'Add', path: `${ENTERPRISE}:department`, value: 'Finance' },
        { op: 'Replace', path: `${ENTERPRISE}:manager`, value: 'boss-id' },
        {
          op: 'add',
          value: {
            displayName: 'Pat Patch',
            'name.familyName': 'Patch',
            [ENTERPRISE]: { costCenter: 'CC-9' },
          },
        },
        { op: 'add', path: 'emails', value: [{ value: 'home@contoso.example', type: 'home' }] },
        { op: 'Replace', path: 'title', value: 'Dev' },
        { op: 'Remove', path: 'title' },
      ]);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({
        displayName: 'Pat Patch',
        name: { givenName: 'Pat', familyName: 'Patch' },
        emails: [
          { value: 'new@contoso.example', type: 'work', primary: true },
          { value: 'home@contoso.example', type: 'home' },
        ],
        phoneNumbers: [{ type: 'mobile', value: '+1 555 0199' }],
        [ENTERPRISE]: { department: 'Finance', costCenter: 'CC-9', manager: { value: 'boss-id' } },
      });
      expect(res.body.title).toBeUndefined();
      expect((res.body.meta as { version: string }).version).toBe('W/"2"');
      const removed = await scim.patch(`/Users/${u.id}`, [
        { op: 'remove', path: 'emails[type eq "home"]' },
        { op: 'remove', path: `${ENTERPRISE}:manager` },
      ]);
      expect(removed.body.emails).toEqual([{ value: 'new@contoso.example', type: 'work', primary: true }]);
      expect((removed.body[ENTERPRISE] as Record<string, unknown>).manager).toBeUndefined();
    });

    it('rejects bad PATCH bodies with the right scimType and writes nothing', async () => {
      const u = await createUser({ userName: 'badpatch@contoso.example', displayName: 'Before' });
      const before = await auditCount();
      const cases: Array<[unknown, string]> = [
        [
          {
            schemas: [PATCH_OP],
            Operations: [
              { op: 'replace', path: 'displayName', value: 'After' },
              { op: 'replace', path: 'nosuch', value: 1 },
            ],
          },
          'invalidPath',
        ],
        [
          {
            schemas: [PATCH_OP],
            Operations: [
              { op: 'replace', path: 'displayName', value: 'After' },
              { op: 'replace', path: 'active', value: 'perhaps' },
            ],
          },
          'invalidValue',
        ],
        [
          { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq]', value: 'x' }] },
          'invalidPath',
        ],
        [
          {
            schemas: [PATCH_OP],
            Operations: [
              { op: 'replace', path: 'emails[type eq "work" and value co "x"].value', value: 'x' },
              { op: 'replace', path: 'emails[value co "x"]', value: { value: 'y' } },
            ],
          },
          'noTarget',
        ],
        [{ schemas: [PATCH_OP], Operations: [{ op: 'remove' }] }, 'noTarget'],
        [{ schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'id', value: 'other' }] }, 'mutability'],
        [{ schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'groups', value: [] }] }, 'mutability'],
        [
          { schemas: [PATCH_OP], Operations: [{ op: 'move', path: 'displayName', value: 'x' }] },
          'invalidSyntax',
        ],
        [{ schemas: [PATCH_OP], Operations: [] }, 'invalidSyntax'],
        [{ Operations: [{ op: 'replace', path: 'displayName', value: 'After' }] }, 'invalidSyntax'],
        [
          { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'userName', value: '' }] },
          'invalidValue',
        ],
        [{ schemas: [PATCH_OP], Operations: [{ op: 'replace', value: 'not an object' }] }, 'invalidValue'],
        ['[1,2', 'invalidSyntax'],
      ];
      for (const [body, scimType] of cases) {
        expectScimError(await scim.request('PATCH', `/Users/${u.id}`, body), 400, scimType);
      }
      const row = await userRow(u.id);
      expect(row).toMatchObject({ display_name: 'Before', version: 1 });
      expect(await auditCount()).toBe(before);
    });

    it('answers 409 when a PATCH takes a userName someone has', async () => {
      const a = await createUser({ userName: 'first@contoso.example' });
      await createUser({ userName: 'second@contoso.example' });
      expectScimError(
        await scim.patch(`/Users/${a.id}`, [
          { op: 'replace', path: 'userName', value: 'Second@contoso.example' },
        ]),
        409,
        'uniqueness',
      );
      expect((await userRow(a.id))!.user_name).toBe('first@contoso.example');
    });

    it('honours If-Match (412 on a stale version) and If-None-Match (304)', async () => {
      const u = await createUser({ userName: 'etag@contoso.example', displayName: 'One' });
      const stale = await scim.patch(
        `/Users/${u.id}`,
        [{ op: 'replace', path: 'displayName', value: 'Two' }],
        { 'if-match': 'W/"7"' },
      );
      expectScimError(stale, 412);
      expect((await userRow(u.id))!.display_name).toBe('One');
      const ok = await scim.patch(`/Users/${u.id}`, [{ op: 'replace', path: 'displayName', value: 'Two' }], {
        'if-match': 'W/"1"',
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('etag')).toBe('W/"2"');
      expect((await scim.get(`/Users/${u.id}`, { 'if-none-match': 'W/"2"' })).status).toBe(304);
      expect((await scim.get(`/Users/${u.id}`, { 'if-none-match': 'W/"1"' })).status).toBe(200);
      expectScimError(await scim.del(`/Users/${u.id}`, { 'if-match': 'W/"1"' }), 412);
      expectScimError(
        await scim.put(`/Users/${u.id}`, { userName: 'etag@contoso.example' }, { 'if-match': '"1"' }),
        412,
      );
      // a PATCH that changes nothing keeps the version
      const same = await scim.patch(`/Users/${u.id}`, [{ op: 'replace', path: 'displayName', value: 'Two' }]);
      expect(same.headers.get('etag')).toBe('W/"2"');
    });

    it('PUT replaces the whole user (attributes left out are cleared; read-only ones ignored)', async () => {
      const u = await createUser({
        userName: 'put@contoso.example',
        displayName: 'Put',
        title: 'Old',
        [ENTERPRISE]: { department: 'X' },
      });
      const res = await scim.put(`/Users/${u.id}`, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        id: 'ignored',
        userName: 'put@contoso.example',
        name: { givenName: 'Put' },
        meta: { version: 'W/"99"' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.id).toBe(u.id);
      expect(res.body.displayName).toBeUndefined();
      expect(res.body.title).toBeUndefined();
      expect(res.body[ENTERPRISE]).toBeUndefined();
      expect(res.body.name).toEqual({ givenName: 'Put' });
    });
  });

  describe('groups', () => {
    it('creates groups with members, adds and removes members in both of Entra forms, renames, deletes', async () => {
      const a = await createUser({ userName: 'g-a@contoso.example' });
      const b = await createUser({ userName: 'g-b@contoso.example' });
      const c = await createUser({ userName: 'g-c@contoso.example' });
      const created = await scim.post('/Groups', {
        displayName: 'SCIM-Admins',
        externalId: 'grp-1',
        members: [{ value: a.id }],
      });
      expect(created.status).toBe(201);
      const gid = created.body.id as string;
      expect(created.body.members).toEqual([
        {
          value: a.id,
          $ref: `${ferry.url}/scim/v2/Users/${a.id}`,
          display: 'g-a@contoso.example',
          type: 'User',
        },
      ]);
      expectScimError(await scim.post('/Groups', { displayName: 'scim-admins' }), 409, 'uniqueness');

      const add = await scim.patch(`/Groups/${gid}`, [
        { op: 'Add', path: 'members', value: [{ $ref: null, value: b.id }, { value: c.id }] },
      ]);
      expect(add.status).toBe(200);
      expect((add.body.members as Array<{ value: string }>).map((m) => m.value).sort()).toEqual(
        [a.id, b.id, c.id].sort(),
      );
      await scim.patch(`/Groups/${gid}`, [{ op: 'Remove', path: 'members', value: [{ value: b.id }] }]);
      await scim.patch(`/Groups/${gid}`, [{ op: 'Remove', path: `members[value eq "${c.id}"]` }]);
      const rename = await scim.patch(`/Groups/${gid}`, [
        { op: 'Replace', path: 'displayName', value: 'SCIM-Admins-2' },
      ]);
      expect(rename.body).toMatchObject({ displayName: 'SCIM-Admins-2', members: [{ value: a.id }] });

      expect(
        (
          await scim.get(
            `/Groups?${filterQuery('displayName eq "scim-admins-2"')}&excludedAttributes=members`,
          )
        ).body.Resources,
      ).toEqual([expect.objectContaining({ id: gid, displayName: 'SCIM-Admins-2', externalId: 'grp-1' })]);
      const noMembers = await scim.get(`/Groups/${gid}?excludedAttributes=members`);
      expect(noMembers.body.members).toBeUndefined();
      expect(
        (await scim.get(`/Groups?${filterQuery(`members[value eq "${a.id}"]`)}`)).body.Resources!.map(
          (r) => r.id,
        ),
      ).toEqual([gid]);
      expect(
        (await scim.get(`/Groups?${filterQuery(`externalId eq "grp-1" and members.value eq "${b.id}"`)}`))
          .body.totalResults,
      ).toBe(0);
      // the user sees its groups (read-only)
      expect((await scim.get(`/Users/${a.id}`)).body.groups).toEqual([
        expect.objectContaining({ value: gid, display: 'SCIM-Admins-2' }),
      ]);

      // an unknown member makes the whole request fail: b is not added either
      const bad = await scim.patch(`/Groups/${gid}`, [
        {
          op: 'add',
          path: 'members',
          value: [{ value: b.id }, { value: '00000000-0000-4000-8000-000000000001' }],
        },
      ]);
      expectScimError(bad, 400, 'invalidValue');
      expect(((await scim.get(`/Groups/${gid}`)).body.members as unknown[]).length).toBe(1);

      // replace all members, then PUT with none
      const replaced = await scim.patch(`/Groups/${gid}`, [
        { op: 'replace', path: 'members', value: [{ value: b.id }, { value: c.id }] },
      ]);
      expect((replaced.body.members as Array<{ value: string }>).map((m) => m.value).sort()).toEqual(
        [b.id, c.id].sort(),
      );
      const put = await scim.put(`/Groups/${gid}`, { displayName: 'SCIM-Admins-2' });
      expect(put.body.members).toBeUndefined();

      expect((await scim.del(`/Groups/${gid}`)).status).toBe(204);
      expectScimError(await scim.get(`/Groups/${gid}`), 404);
    });
  });

  describe('audit', () => {
    it('records every SCIM change with the connection as the actor', async () => {
      const u = await createUser({ userName: 'audited@contoso.example' });
      await scim.patch(`/Users/${u.id}`, [{ op: 'replace', path: 'displayName', value: 'Audited' }]);
      const rows = await ferry.services.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('subject', '=', 'audited@contoso.example')
        .orderBy('seq')
        .execute();
      expect(rows.map((r) => r.type)).toEqual(['user.created', 'user.updated']);
      for (const r of rows)
        expect(JSON.parse(r.actor)).toMatchObject({ type: 'scim-connection', name: 'entra' });
    });
  });
});
