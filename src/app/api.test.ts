import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, inputValue } from '../../test/support/browserless.js';
import { createTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { startTestFerry, type TestFerry, testConfig } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { Sequencer } from '../audit/sequencer.js';
import { ManualClock } from '../clock.js';
import { logOptions } from './server.js';
import { type RunningFerry, startFerry } from './start.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'api-test' } };
const PASSWORD = 'correct horse battery staple';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [key: string]: unknown;
}

/** Every error the API sends is RFC 7807 problem details with type, title, status and detail. */
async function expectProblem(res: Response, status: number): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Problem;
  expect(body).toMatchObject({ status });
  expect(body.type).toMatch(/^https:\/\/ferry\.dev\/problems\/[\w-]+$/);
  expect(typeof body.title).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

const json = (body: unknown, method = 'POST'): RequestInit => ({ method, body: JSON.stringify(body) });

describe.each(ENGINES)('admin API on %s', (engine) => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let ferry: TestFerry;
  let seq = 0;
  const uniqueName = (prefix: string) => `${prefix}-${++seq}@contoso.example`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, { clock });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const createUser = async (userName: string, extra: Record<string, unknown> = {}) => {
    const res = await ferry.api('/api/v1/users', json({ userName, ...extra }));
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; userName: string; version: number };
  };

  const auditFor = async (subject: string) => {
    const res = await ferry.api(`/api/v1/audit/events?subject=${encodeURIComponent(subject)}&limit=1000`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: Array<Record<string, unknown>> }).items;
  };

  const tokenId = () => /^ferry_at_([0-9a-f]{32})_/.exec(ferry.adminToken)![1]!;

  describe('authentication', () => {
    it('answers 401 with WWW-Authenticate: Bearer without a token', async () => {
      const res = await ferry.api('/api/v1/users', { auth: false });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      await expectProblem(res, 401);
    });

    it.each([
      ['a malformed token', 'not-a-token'],
      ['an unknown token', `ferry_at_${'0'.repeat(32)}_${randomBytes(32).toString('base64url')}`],
      ['a basic credential', 'Basic dXNlcjpwYXNz'],
    ])('answers 401 to %s', async (_, value) => {
      const res = await ferry.api('/api/v1/users', {
        auth: false,
        headers: { authorization: value.startsWith('Basic') ? value : `Bearer ${value}` },
      });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      await expectProblem(res, 401);
    });

    it('answers 401 to a token with the right id but a wrong secret', async () => {
      const forged = `${ferry.adminToken.slice(0, -43)}${randomBytes(32).toString('base64url')}`;
      const res = await ferry.api('/api/v1/users', {
        auth: false,
        headers: { authorization: `Bearer ${forged}` },
      });
      await expectProblem(res, 401);
    });

    it('refuses a token from the moment it is revoked', async () => {
      const created = await ferry.api('/api/v1/tokens', json({ name: 'short-lived' }));
      expect(created.status).toBe(201);
      const { token, apiToken } = (await created.json()) as { token: string; apiToken: { id: string } };
      const use = () =>
        ferry.api('/api/v1/users?limit=1', { auth: false, headers: { authorization: `Bearer ${token}` } });
      expect((await use()).status).toBe(200);

      const listed = (await (await ferry.api('/api/v1/tokens')).json()) as { items: Array<{ id: string }> };
      expect(listed.items.map((t) => t.id)).toContain(apiToken.id);
      expect(JSON.stringify(listed)).not.toContain(token.slice(-43));

      const revoked = await ferry.api(`/api/v1/tokens/${apiToken.id}`, { method: 'DELETE' });
      expect(revoked.status).toBe(200);
      expect(((await revoked.json()) as { revokedAt: string | null }).revokedAt).toBe(
        clock.now().toISOString(),
      );
      const after = await use();
      expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      await expectProblem(after, 401);
      // the admin token still works
      expect((await ferry.api('/api/v1/users?limit=1')).status).toBe(200);
    });
  });

  describe('users', () => {
    it('creates, reads (by id and case-insensitive name), changes and deletes a user', async () => {
      const name = uniqueName('Test-AWSDeveloper');
      const created = await ferry.api(
        '/api/v1/users',
        json({ userName: name, displayName: 'Test Developer', password: PASSWORD }),
      );
      expect(created.status).toBe(201);
      const user = (await created.json()) as Record<string, unknown> & { id: string };
      expect(created.headers.get('location')).toBe(`/api/v1/users/${user.id}`);
      expect(user).toMatchObject({
        userName: name,
        displayName: 'Test Developer',
        active: true,
        hasPassword: true,
      });
      expect(JSON.stringify(user)).not.toContain(PASSWORD);
      expect(user).not.toHaveProperty('password');

      const byId = await ferry.api(created.headers.get('location')!);
      expect(byId.status).toBe(200);
      expect(await byId.json()).toMatchObject({ id: user.id, userName: name, groups: [] });
      const byName = await ferry.api(`/api/v1/users/${encodeURIComponent(name.toLowerCase())}`);
      expect(byName.status).toBe(200);
      expect(await byName.json()).toMatchObject({ id: user.id, userName: name });

      const patched = await ferry.api(
        `/api/v1/users/${user.id}`,
        json({ displayName: 'Renamed', attributes: { department: 'Platform' } }, 'PATCH'),
      );
      expect(patched.status).toBe(200);
      expect(await patched.json()).toMatchObject({
        displayName: 'Renamed',
        attributes: { department: 'Platform' },
        version: 2,
      });

      const listed = await ferry.api(`/api/v1/users?q=${encodeURIComponent(name)}`);
      expect(await listed.json()).toMatchObject({ total: 1, items: [{ id: user.id }] });

      const deleted = await ferry.api(`/api/v1/users/${user.id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      expect(await deleted.text()).toBe('');
      const gone = await expectProblem(await ferry.api(`/api/v1/users/${user.id}`), 404);
      expect(gone.detail).toContain(user.id);
      await expectProblem(await ferry.api(`/api/v1/users/${user.id}`, { method: 'DELETE' }), 404);
      await expectProblem(
        await ferry.api(`/api/v1/users/${user.id}`, json({ displayName: 'x' }, 'PATCH')),
        404,
      );

      const events = await auditFor(name);
      expect(events.map((e) => e.type)).toEqual(['user.created', 'user.updated', 'user.deleted']);
      for (const e of events) {
        expect(e.actor).toEqual({ type: 'api-token', id: tokenId(), name: 'test-admin' });
        expect(e.outcome).toBe('success');
      }
    });

    it('disabling a user through the API ends their sessions', async () => {
      const name = uniqueName('leaver');
      await createUser(name, { password: PASSWORD });
      const result = await ferry.services.signin.password(name, PASSWORD, { ip: '192.0.2.10' });
      if (result.status !== 'signed-in') throw new Error(result.status);
      const res = await ferry.api(
        `/api/v1/users/${encodeURIComponent(name)}`,
        json({ active: false }, 'PATCH'),
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ active: false });
      expect(await ferry.services.sessions.resolve(result.token)).toBeNull();
      expect((await auditFor(name)).map((e) => e.type)).toContain('user.disabled');
    });

    it('refuses a second user whose name differs only in case with 409', async () => {
      const name = uniqueName('Dup');
      await createUser(name);
      const res = await ferry.api('/api/v1/users', json({ userName: name.toUpperCase() }));
      const problem = await expectProblem(res, 409);
      expect(problem.detail).toContain(name.toUpperCase());
      // renaming another user onto it is refused the same way
      const other = await createUser(uniqueName('other'));
      await expectProblem(
        await ferry.api(`/api/v1/users/${other.id}`, json({ userName: name }, 'PATCH')),
        409,
      );
    });

    it('refuses a password shorter than 8 characters with 400, creating nothing', async () => {
      const name = uniqueName('shortpw');
      const problem = await expectProblem(
        await ferry.api('/api/v1/users', json({ userName: name, password: 'seven77' })),
        400,
      );
      expect(JSON.stringify(problem)).toContain('password');
      await expectProblem(await ferry.api(`/api/v1/users/${encodeURIComponent(name)}`), 404);
      const user = await createUser(name, { password: PASSWORD });
      await expectProblem(
        await ferry.api(`/api/v1/users/${user.id}`, json({ password: 'short' }, 'PATCH')),
        400,
      );
    });

    it('refuses an unknown field with 400 naming it', async () => {
      const problem = await expectProblem(
        await ferry.api('/api/v1/users', json({ userName: uniqueName('typo'), dispalyName: 'Typo' })),
        400,
      );
      expect(problem.errors).toEqual([expect.objectContaining({ path: 'dispalyName' })]);
    });

    it('refuses an unknown field inside a nested object with 400 naming it', async () => {
      const problem = await expectProblem(
        await ferry.api(
          '/api/v1/users',
          json({ userName: uniqueName('nested'), emails: [{ value: 'a@contoso.example', primery: true }] }),
        ),
        400,
      );
      expect(problem.errors).toEqual([expect.objectContaining({ path: '/emails/0/primery' })]);
    });

    it('refuses a missing required field with 400 naming it', async () => {
      const problem = await expectProblem(
        await ferry.api('/api/v1/users', json({ displayName: 'Nobody' })),
        400,
      );
      expect(problem.errors).toEqual([expect.objectContaining({ path: 'userName' })]);
    });

    it('refuses malformed JSON with 400', async () => {
      await expectProblem(
        await ferry.api('/api/v1/users', { method: 'POST', body: '{"userName": "x@y",' }),
        400,
      );
      await expectProblem(await ferry.api('/api/v1/users', { method: 'POST', body: '' }), 400);
    });

    it('refuses a body that is not JSON with 415', async () => {
      const body = '<user><userName>x@contoso.example</userName></user>';
      const xml = await ferry.api('/api/v1/users', {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/xml' },
      });
      await expectProblem(xml, 415);
      const form = await ferry.api('/api/v1/users', {
        method: 'POST',
        body: 'userName=form%40contoso.example',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      await expectProblem(form, 415);
    });

    it('addresses a user with a long userName by name', async () => {
      const name = `${'a'.repeat(200)}-${++seq}@contoso.example`;
      const user = await createUser(name);
      const res = await ferry.api(`/api/v1/users/${encodeURIComponent(name.toUpperCase())}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: user.id });
      await expectProblem(await ferry.api(`/api/v1/users/${'b'.repeat(300)}`), 400);
    });

    it('answers a path with a broken %-escape with a 400 problem', async () => {
      const res = await ferry.api('/api/v1/users/%E0%A4%A');
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      await expectProblem(res, 400);
    });

    it('answers an unknown route with a 404 problem', async () => {
      const problem = await expectProblem(await ferry.api('/api/v1/no-such-thing'), 404);
      expect(problem.detail).toContain('/api/v1/no-such-thing');
      await expectProblem(await ferry.api('/api/v2/users', { auth: false }), 404);
    });
  });

  describe('groups', () => {
    it('creates groups, refuses duplicates, and manages members idempotently', async () => {
      const groupName = `AWS-Account1-Developers-${++seq}`;
      const created = await ferry.api(
        '/api/v1/groups',
        json({ displayName: groupName, description: 'devs' }),
      );
      expect(created.status).toBe(201);
      const group = (await created.json()) as { id: string };
      expect(created.headers.get('location')).toBe(`/api/v1/groups/${group.id}`);
      await expectProblem(
        await ferry.api('/api/v1/groups', json({ displayName: groupName.toLowerCase() })),
        409,
      );

      const name = uniqueName('member');
      const user = await createUser(name);
      const member = `/api/v1/groups/${encodeURIComponent(groupName)}/members/${encodeURIComponent(name)}`;
      const change = async (method: 'PUT' | 'DELETE') => {
        const res = await ferry.api(member, { method });
        expect(res.status).toBe(200);
        return ((await res.json()) as { changed: boolean }).changed;
      };
      expect(await change('PUT')).toBe(true);
      expect(await change('PUT')).toBe(false);

      const read = await ferry.api(`/api/v1/groups/${group.id}`);
      expect(await read.json()).toMatchObject({
        displayName: groupName,
        members: [{ id: user.id, userName: name }],
      });
      const readUser = await ferry.api(`/api/v1/users/${user.id}`);
      expect(await readUser.json()).toMatchObject({ groups: [groupName] });
      const list = await ferry.api(`/api/v1/groups?q=${encodeURIComponent(groupName)}`);
      expect(await list.json()).toMatchObject({ total: 1, items: [{ id: group.id }] });

      expect(await change('DELETE')).toBe(true);
      expect(await change('DELETE')).toBe(false);
      expect(await (await ferry.api(`/api/v1/groups/${group.id}`)).json()).toMatchObject({ members: [] });

      await expectProblem(
        await ferry.api(`/api/v1/groups/${group.id}/members/nobody@contoso.example`, { method: 'PUT' }),
        404,
      );
      await expectProblem(
        await ferry.api(`/api/v1/groups/no-such-group/members/${user.id}`, { method: 'PUT' }),
        404,
      );

      const events = await auditFor(groupName);
      // exactly one event per actual change: the no-op calls audit nothing
      expect(events.map((e) => e.type)).toEqual([
        'group.created',
        'group.member-added',
        'group.member-removed',
      ]);
      for (const e of events) expect(e.actor).toMatchObject({ type: 'api-token', id: tokenId() });

      const deleted = await ferry.api(`/api/v1/groups/${group.id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      await expectProblem(await ferry.api(`/api/v1/groups/${group.id}`), 404);
    });
  });

  describe('sessions and MFA', () => {
    it('lists a user’s sessions and revokes one', async () => {
      const name = uniqueName('sessions');
      await createUser(name, { password: PASSWORD });
      const signin = await ferry.services.signin.password(name, PASSWORD, {
        ip: '192.0.2.20',
        userAgent: 'curl',
      });
      if (signin.status !== 'signed-in') throw new Error(signin.status);

      const listed = await ferry.api(`/api/v1/users/${encodeURIComponent(name)}/sessions`);
      expect(listed.status).toBe(200);
      const { items } = (await listed.json()) as { items: Array<Record<string, unknown>> };
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({
        id: signin.session.id,
        amr: ['pwd'],
        ip: '192.0.2.20',
        userAgent: 'curl',
      });
      expect(JSON.stringify(items)).not.toContain(signin.token);

      const revoked = await ferry.api(`/api/v1/sessions/${signin.session.id}`, { method: 'DELETE' });
      expect(revoked.status).toBe(200);
      expect(await revoked.json()).toMatchObject({
        id: signin.session.id,
        revokedAt: clock.now().toISOString(),
        revokedReason: 'revoked by an administrator',
      });
      expect(await ferry.services.sessions.resolve(signin.token)).toBeNull();
      const after = await ferry.api(`/api/v1/users/${encodeURIComponent(name)}/sessions`);
      expect(await after.json()).toEqual({ items: [] });

      const events = await auditFor(name);
      expect(events.find((e) => e.type === 'session.revoked')).toMatchObject({
        actor: { type: 'api-token', id: tokenId() },
        data: { sessionId: signin.session.id },
      });
      await expectProblem(
        await ferry.api(`/api/v1/sessions/${crypto.randomUUID()}`, { method: 'DELETE' }),
        404,
      );
      await expectProblem(await ferry.api('/api/v1/users/nobody@contoso.example/sessions'), 404);
    });

    it('removes a user’s authenticators so the next sign-in needs only the password', async () => {
      const name = uniqueName('lostphone');
      const user = await createUser(name, { password: PASSWORD });
      await ferry.services.store.db
        .transaction()
        .execute((trx) =>
          ferry.services.totp.enroll(trx, ADMIN, { id: user.id, userName: name }, { confirmed: true }),
        );
      const before = await ferry.services.signin.password(name, PASSWORD, { ip: '192.0.2.30' });
      expect(before.status).toBe('second-factor-required');

      const res = await ferry.api(`/api/v1/users/${encodeURIComponent(name)}/mfa`, { method: 'DELETE' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ removed: 1 });
      expect(await ferry.services.totp.hasConfirmed(ferry.services.store.db, user.id)).toBe(false);
      const after = await ferry.services.signin.password(name, PASSWORD, { ip: '192.0.2.30' });
      expect(after.status).toBe('signed-in');

      const again = await ferry.api(`/api/v1/users/${user.id}/mfa`, { method: 'DELETE' });
      expect(await again.json()).toEqual({ removed: 0 });
      const reset = (await auditFor(name)).filter((e) => e.type === 'mfa.reset');
      expect(reset).toHaveLength(2);
      expect(reset[0]).toMatchObject({
        actor: { type: 'api-token', id: tokenId() },
        data: { factorsRemoved: 1 },
      });
      await expectProblem(
        await ferry.api('/api/v1/users/nobody@contoso.example/mfa', { method: 'DELETE' }),
        404,
      );
    });
  });

  describe('audit', () => {
    it('reads the newest events, events since a time, and verifies the chain', async () => {
      clock.advance(3_600_000);
      const since = clock.now().toISOString();
      const names = [uniqueName('audit-a'), uniqueName('audit-b'), uniqueName('audit-c')];
      for (const n of names) await createUser(n);

      const sinceRes = await ferry.api(`/api/v1/audit/events?since=${encodeURIComponent(since)}`);
      expect(sinceRes.status).toBe(200);
      const sinceItems = ((await sinceRes.json()) as { items: Array<Record<string, unknown>> }).items;
      expect(sinceItems.map((e) => [e.type, e.subject])).toEqual(names.map((n) => ['user.created', n]));

      const lastRes = await ferry.api('/api/v1/audit/events?last=5');
      const last = ((await lastRes.json()) as { items: Array<{ seq: number; subject: string }> }).items;
      expect(last).toHaveLength(5);
      const seqs = last.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs.at(-1)! - seqs[0]!).toBe(4);
      expect(last.slice(-3).map((e) => e.subject)).toEqual(names);

      // Sealing is the sequencer's work (a worker in `ferry serve`): seal now, then verify the tree.
      await new Sequencer({
        store: ferry.services.store,
        clock,
        keys: ferry.services.auditKeys,
      }).sealAll();
      const verify = await ferry.api('/api/v1/audit/verify');
      expect(verify.status).toBe(200);
      const result = (await verify.json()) as {
        ok: boolean;
        events: number;
        treeSize: number;
        unsealed: number;
        firstBad: unknown;
      };
      expect(result).toMatchObject({ ok: true, firstBad: null, unsealed: 0 });
      expect(result.events).toBe(result.treeSize);
      expect(result.events).toBeGreaterThanOrEqual(names.length);

      await expectProblem(await ferry.api('/api/v1/audit/events', { auth: false }), 401);
      await expectProblem(await ferry.api('/api/v1/audit/events?since=yesterday'), 400);
    });
  });

  describe('operations', () => {
    it('answers /healthz and /readyz without a token', async () => {
      const health = await ferry.api('/healthz', { auth: false });
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await ferry.api('/readyz', { auth: false });
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', database: 'ok' });
    });

    it('exposes request latency and counts failed sign-ins in /metrics', async () => {
      const failures = async () => {
        const text = await (await ferry.api('/metrics', { auth: false })).text();
        const m = /^ferry_signins_total\{outcome="failure"\} (\d+)$/m.exec(text);
        expect(m, 'ferry_signins_total{outcome="failure"} is exported').not.toBeNull();
        return { text, count: Number(m![1]) };
      };
      const before = await failures();
      expect(before.text).toMatch(/^ferry_http_request_duration_seconds_bucket\{/m);

      const browser = new Browser(ferry.url);
      const form = await browser.get('/signin');
      const res = await browser.post('/signin', {
        csrf: inputValue(form.text, 'csrf')!,
        username: uniqueName('nobody'),
        password: 'whatever-it-is',
      });
      expect(res.status).toBe(401);
      const after = await failures();
      expect(after.count).toBe(before.count + 1);
      expect(after.text).toMatch(/^ferry_http_request_duration_seconds_bucket\{[^}]*route="\/signin"/m);
    });

    it('echoes a request id on every response and keeps one the client sent', async () => {
      for (const res of [
        await ferry.api('/healthz', { auth: false }),
        await ferry.api('/api/v1/users', { auth: false }),
        await ferry.api('/nowhere'),
        await ferry.api('/api/v1/users?limit=1'),
      ]) {
        expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      }
      const mine = `trace-${randomBytes(6).toString('hex')}`;
      const name = uniqueName('traced');
      const res = await ferry.api('/api/v1/users', {
        ...json({ userName: name }),
        headers: { 'x-request-id': mine },
      });
      expect(res.headers.get('x-request-id')).toBe(mine);
      const [created] = await auditFor(name);
      expect(created).toMatchObject({ type: 'user.created', requestId: mine });
      // but not just any text: a client can't write into every log line of its request
      const junk = await ferry.api('/healthz', { auth: false, headers: { 'x-request-id': 'x y\tz' } });
      expect(junk.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('publishes an OpenAPI 3.1 document and the Swagger UI', async () => {
      const res = await ferry.api('/api/openapi.json', { auth: false });
      expect(res.status).toBe(200);
      const doc = (await res.json()) as {
        openapi: string;
        paths: Record<string, Record<string, { security?: unknown }>>;
        components: { securitySchemes: Record<string, unknown> };
      };
      expect(doc.openapi).toMatch(/^3\.1\./);
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          '/api/v1/users',
          '/api/v1/users/{ref}',
          '/api/v1/groups/{ref}/members/{user}',
        ]),
      );
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.paths['/api/v1/users']?.post?.security).toEqual([{ bearer: [] }]);

      const ui = await fetch(new URL('/api/docs/', ferry.url));
      expect(ui.status).toBe(200);
      expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await ui.text()).toMatch(/swagger-ui/i);
    });
  });
});

describe.each(ENGINES)('admin API body limit on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { http: { bodyLimit: 2048 } } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('answers 413 (never a 500) to a body over http.bodyLimit', async () => {
    const big = json({ userName: 'big@contoso.example', displayName: 'x'.repeat(4096) });
    await expectProblem(await ferry.api('/api/v1/users', big), 413);

    // the same without a Content-Length (chunked): the limit still holds
    const chunks = [JSON.stringify({ userName: 'big@contoso.example', displayName: 'y'.repeat(4096) })];
    const stream = new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const chunked = await ferry.api('/api/v1/users', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectProblem(chunked, 413);

    await expectProblem(await ferry.api('/api/v1/users/big@contoso.example'), 404);
    const small = await ferry.api('/api/v1/users', json({ userName: 'small@contoso.example' }));
    expect(small.status).toBe(201);
  });
});

describe.each(ENGINES)('logs on %s', (engine) => {
  let db: TestDatabase;
  let ferry: RunningFerry;
  const lines: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(engine);
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    ferry = await startFerry({
      config: testConfig(db.url, { log: { level: 'info' } }),
      // the production logger configuration, writing to memory
      logger: { ...logOptions('info'), stream },
      workerIntervalMs: 60_000,
    });
  });
  afterAll(async () => {
    await ferry?.stop();
    await db?.drop();
  });

  it('never contain passwords, API tokens or session cookies', async () => {
    const { token } = await ferry.services.apiTokens.create(ADMIN, { name: 'log-test' });
    const name = `logged-${engine}@contoso.example`;
    const api = (path: string, init: RequestInit = {}) =>
      fetch(new URL(path, ferry.url), {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
    expect((await api('/api/v1/users', json({ userName: name, password: PASSWORD }))).status).toBe(201);
    const newPassword = 'another secret passphrase';
    expect((await api(`/api/v1/users/${name}`, json({ password: newPassword }, 'PATCH'))).status).toBe(200);
    // a password rejected by validation is not echoed into the log either
    expect((await api(`/api/v1/users/${name}`, json({ password: 'tiny-pw' }, 'PATCH'))).status).toBe(400);

    const browser = new Browser(ferry.url);
    const form = await browser.get('/signin');
    const csrf = inputValue(form.text, 'csrf')!;
    const wrongPassword = 'almost the right passphrase';
    expect((await browser.post('/signin', { csrf, username: name, password: wrongPassword })).status).toBe(
      401,
    );
    const signedIn = await browser.post('/signin', { csrf, username: name, password: newPassword });
    expect(signedIn.status).toBe(303);
    const cookie = browser.cookie('ferry_session')!;
    expect(cookie).toBeDefined();
    expect((await browser.get('/account')).status).toBe(200);

    const log = lines.join('');
    // the log is really there: requests were logged
    expect(log).toContain('"msg":"request completed"');
    expect(log).toContain('/api/v1/users');
    for (const secret of [
      PASSWORD,
      newPassword,
      wrongPassword,
      'tiny-pw',
      token,
      token.slice(-43),
      cookie,
      csrf,
    ]) {
      expect(log, 'a secret reached the log').not.toContain(secret);
    }
  });
});
