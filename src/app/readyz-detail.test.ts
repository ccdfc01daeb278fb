import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';

const METRICS_TOKEN = 'metrics-token-readyz-0123456789abcdef';
const ADMIN: AuditContext = { actor: { type: 'operator', name: 'readyz-test' } };
// A destination whose name and error carry a path (a host would do the same): what /readyz must not
// tell an anonymous caller. Its parent is a file, so the export fails (ENOTDIR).
const PARENT = join(mkdtempSync(join(tmpdir(), 'ferry-readyz-')), 'ferry-readyz-secret-mount');
writeFileSync(PARENT, '');
const HEADS_DIR = join(PARENT, 'heads');

describe('/readyz detail', () => {
  let ferry: TestFerry;
  let unscoped: string;

  beforeAll(async () => {
    ferry = await startTestFerry('sqlite', {
      config: {
        metrics: { token: METRICS_TOKEN },
        audit: { export: { destinations: [{ type: 'file', directory: HEADS_DIR }] } },
      },
    });
    unscoped = (await ferry.services.apiTokens.create(ADMIN, { name: 'users-only', scopes: ['users:read'] }))
      .token;
    await ferry.services.users.create(ADMIN, { userName: 'readyz@contoso.example' });
    await ferry.workers.sequencer.sealAll();
    await ferry.services.auditExporter.exportDue();
    const [status] = await ferry.services.auditExporter.status();
    expect(status!.lastError).toContain('ferry-readyz-secret-mount'); // the failure the test is about
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const readyz = (authorization?: string, cookie?: string) =>
    fetch(new URL('/readyz', ferry.url), {
      headers: { ...(authorization ? { authorization } : {}), ...(cookie ? { cookie } : {}) },
    });

  it.each([
    ['no credentials', undefined, undefined],
    ['a wrong bearer token', 'Bearer metrics-token-readyz-0123456789abcdeX', undefined],
    ['a malformed authorization header', 'Basic YWRtaW46YWRtaW4=', undefined],
    ['an admin token without audit:read', 'unscoped', undefined],
    ['a session cookie nobody issued', undefined, 'ferry_session=forged'],
  ])('with %s names the component that is not ready and nothing more', async (_, auth, cookie) => {
    const res = await readyz(auth === 'unscoped' ? `Bearer ${unscoped}` : auth, cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get('www-authenticate')).toBeNull();
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ status: 'ready', database: 'ok', auditExport: { ok: false } });
    expect(text).not.toMatch(/ferry-readyz-secret-mount|tmp|ENOTDIR|lastError|destination/);
  });

  it.each([
    ['the metrics token', () => `Bearer ${METRICS_TOKEN}`],
    ['an admin token with audit:read', () => `Bearer ${ferry.adminToken}`],
  ])('with %s shows the full detail', async (_, auth) => {
    const res = await readyz(auth());
    expect(res.status).toBe(200);
    const body = (await res.json()) as { auditExport: Array<Record<string, unknown>> };
    expect(body).toMatchObject({
      status: 'ready',
      database: 'ok',
      auditExport: [{ destination: `file:${HEADS_DIR}`, ok: false, failures: 1 }],
    });
    expect(body.auditExport[0]!.lastError).toContain('ferry-readyz-secret-mount');
  });

  it('a database that cannot write: 503 with the component only, the cause for the token', async () => {
    const store = ferry.services.store;
    const writable = store.writable;
    store.writable = async () => ({
      ok: false,
      cause: 'database writes fail: out of space (could not extend file "/srv/pg/tblspc/16384/1259")',
      since: '2026-12-06T12:00:00.000Z',
    });
    try {
      const anonymous = await readyz();
      expect(anonymous.status).toBe(503);
      expect(anonymous.headers.get('retry-after')).toBe('5');
      const text = await anonymous.text();
      expect(JSON.parse(text)).toEqual({
        type: 'https://ferry.dev/problems/unavailable',
        title: 'Service Unavailable',
        status: 503,
        detail: 'database writes fail',
        database: 'not-writable',
      });
      expect(text).not.toMatch(/srv|tblspc|space/);
      const operator = await readyz(`Bearer ${METRICS_TOKEN}`);
      expect(operator.status).toBe(503);
      expect(await operator.json()).toMatchObject({
        detail: expect.stringMatching(/out of space \(could not extend file "\/srv\/pg/),
        database: 'not-writable',
        since: '2026-12-06T12:00:00.000Z',
      });
    } finally {
      store.writable = writable;
    }
  });
  it('a probe with a token that lacks audit:read leaves no audited refusal behind (a health check is no attack)', async () => {
    for (let i = 0; i < 3; i++) expect((await readyz(`Bearer ${unscoped}`)).status).toBe(200);
    const refused = await ferry.services.store.db
      .selectFrom('audit_events')
      .select('id')
      .where('type', '=', 'admin.refused')
      .execute();
    expect(refused).toEqual([]);
    // the guard still refuses (and audits) the same token on an admin route
    expect(
      (
        await fetch(new URL('/api/v1/audit/events', ferry.url), {
          headers: { authorization: `Bearer ${unscoped}` },
        })
      ).status,
    ).toBe(403);
    await ferry.services.store.db
      .selectFrom('audit_events')
      .select('id')
      .where('type', '=', 'admin.refused')
      .executeTakeFirstOrThrow();
  });
});
