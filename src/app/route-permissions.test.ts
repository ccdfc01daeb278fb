import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { isPermission } from '../access/admin-roles.js';
import { NON_ADMIN_ROUTES, registeredRoutes } from './route-permissions.js';

/** A path to call for a route pattern: every parameter and wildcard filled with a harmless value. */
const concrete = (url: string) => url.replace(/:[A-Za-z_]+/g, 'probe').replace(/\*$/, 'probe');

describe.each(ENGINES)('every /api/v1 route on %s', (engine) => {
  let ferry: TestFerry;
  /** two tokens with one permission each, so every admin route refuses at least one of them */
  const probes: string[] = [];

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    for (const scope of ['tenant:write', 'mfa:reset']) {
      const res = await ferry.api('/api/v1/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: `probe-${scope.replace(':', '-')}`, scopes: [scope] }),
      });
      probes.push(((await res.json()) as { token: string }).token);
    }
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('is an admin route that declares a permission and enforces it, or is listed as public/self/named', async () => {
    const routes = registeredRoutes(ferry.app).filter(
      (r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD' && r.method !== 'OPTIONS',
    );
    expect(routes.length).toBeGreaterThan(100);
    const keys = new Set(routes.map((r) => `${r.method} ${r.url}`));
    // a listed route that no longer exists is a stale exemption
    expect(Object.keys(NON_ADMIN_ROUTES).filter((k) => !keys.has(k))).toEqual([]);
    const gaps: string[] = [];
    const table: string[] = [];
    for (const r of routes) {
      const key = `${r.method} ${r.url}`;
      if (NON_ADMIN_ROUTES[key]) {
        table.push(`${key}\t${NON_ADMIN_ROUTES[key].kind}${r.permission ? ` (${r.permission})` : ''}`);
        continue;
      }
      const path = concrete(r.url);
      const init = (token?: string): RequestInit => ({
        method: r.method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { 'content-type': 'application/json' }),
        },
        ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { body: '{}' }),
      });
      const anonymous = await fetch(`${ferry.url}${path}`, init());
      if (anonymous.status !== 401) {
        gaps.push(`${key}: answered ${anonymous.status} without credentials`);
        continue;
      }
      let enforced: string | undefined;
      for (const token of probes) {
        const res = await fetch(`${ferry.url}${path}`, init(token));
        if (res.status !== 403) continue;
        const body = (await res.json()) as { type: string; permission?: string };
        if (body.type.endsWith('/insufficient-scope') && body.permission && isPermission(body.permission)) {
          enforced = body.permission;
          break;
        }
      }
      if (!enforced) {
        gaps.push(`${key}: no admin token was refused a permission`);
        continue;
      }
      if (r.permission !== undefined && r.permission !== enforced)
        gaps.push(`${key}: declares ${r.permission} but the guard asked ${enforced}`);
      table.push(`${key}\t${enforced}${r.permission ? '' : ' (group default)'}`);
    }
    if (process.env.FERRY_ROUTE_TABLE) writeFileSync(process.env.FERRY_ROUTE_TABLE, `${table.join('\n')}\n`);
    expect(gaps).toEqual([]);
  });
});
