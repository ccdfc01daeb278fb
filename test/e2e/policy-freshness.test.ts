import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../support/db.js';
import { type FerryProcess, runFerry, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';

const USER = 'dev@contoso.example';
const TARGET = 'aws:123456789012/Developer';
const OFFICE_IP = '203.0.113.5';
const HOME_IP = '198.51.100.7';

/**
 * Two `ferry serve` processes on one database: a conditional access change made through one instance
 * (state switch, report-only, named location edit) governs the very next decision on the other. Each
 * instance caches its compiled policy set by a generation counter the change bumps in its own
 * transaction, so there is no window to wait out; the figure printed is the time from the change's
 * answer to the other instance's first answer.
 */
describe.each(ENGINES)('conditional access changes reach every instance at once (%s)', (engine) => {
  let db: TestDatabase;
  let dir: string;
  let a: FerryProcess;
  let b: FerryProcess;
  let token: string;
  const reached: Array<{ change: string; ms: number }> = [];

  const call = (on: FerryProcess, path: string, method = 'GET', body?: unknown) =>
    fetch(new URL(path, on.url), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const decisionOn = async (on: FerryProcess, ip: string): Promise<string> => {
    const res = await call(on, '/api/v1/access/what-if', 'POST', { user: USER, target: TARGET, ip });
    expect(res.status).toBe(200);
    return ((await res.json()) as { result: string }).result;
  };
  /** Makes the change on A, then asks B once: B must already decide by it. */
  const change = async (name: string, path: string, method: string, body: unknown) => {
    const res = await call(a, path, method, body);
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    const answered = performance.now();
    return async (ip: string) => {
      const result = await decisionOn(b, ip);
      reached.push({ change: name, ms: performance.now() - answered });
      return result;
    };
  };

  beforeAll(async () => {
    db = await createMigratedTestDatabase(engine);
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-ca2-'));
    const env = {
      FERRY_DATABASE_URL: db.url,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
      FERRY_REQUIRE_MFA: 'false',
    };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    // The machine may be busy: give each process a minute to become healthy.
    const start = () => startFerryProcess({ cwd: dir, env, readyTimeoutMs: 60_000 });
    [a, b] = await Promise.all([start(), start()]);
    expect((await call(a, '/api/v1/aws/accounts/123456789012', 'PUT', { alias: 'Account1' })).status).toBe(
      201,
    );
    expect(
      (await call(a, '/api/v1/aws/accounts/123456789012/roles/Developer', 'PUT', {})).status,
    ).toBeLessThan(300);
    expect(
      (await call(a, '/api/v1/users', 'POST', { userName: USER, password: 'correct-horse-battery-42' }))
        .status,
    ).toBe(201);
    expect(
      (await call(a, '/api/v1/assignments', 'POST', { user: USER, account: 'Account1', role: 'Developer' }))
        .status,
    ).toBe(201);
    expect(
      (await call(a, '/api/v1/named-locations/office', 'PUT', { ranges: ['203.0.113.0/24'] })).status,
    ).toBe(200);
    const policy = await call(a, '/api/v1/policies/Block%20from%20the%20office', 'PUT', {
      state: 'off',
      include: { all: true },
      targets: ['aws:*/Developer'],
      conditions: { locations: { include: ['office'] } },
      grant: { block: true },
    });
    expect(policy.status, await policy.clone().text()).toBe(201);
  }, 120_000);

  afterAll(async () => {
    if (reached.length > 0)
      console.log(
        `[${engine}] policy change → other instance's next decision: ${reached
          .map((r) => `${r.change} ${r.ms.toFixed(0)} ms`)
          .join(', ')}`,
      );
    await stopAllFerryProcesses();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('switching a policy on, to report-only and off, and editing a named location, governs the other instance’s next decision', async () => {
    const policyState = '/api/v1/policies/Block%20from%20the%20office/state';
    // B has compiled the policy set (policy off): allowed from the office.
    expect(await decisionOn(b, OFFICE_IP)).toBe('allow');

    const afterOn = await change('on', policyState, 'POST', { state: 'on' });
    expect(await afterOn(OFFICE_IP)).toBe('deny');
    expect(await decisionOn(b, HOME_IP)).toBe('allow'); // B now holds the set with the policy on

    const afterEdit = await change('named location', '/api/v1/named-locations/office', 'PUT', {
      ranges: ['203.0.113.0/24', '198.51.100.0/24'],
    });
    expect(await afterEdit(HOME_IP)).toBe('deny');

    const afterReportOnly = await change('report-only', policyState, 'POST', { state: 'report-only' });
    expect(await afterReportOnly(HOME_IP)).toBe('allow');

    expect(await (await change('on again', policyState, 'POST', { state: 'on' }))(OFFICE_IP)).toBe('deny');
    const afterOff = await change('off', policyState, 'POST', { state: 'off' });
    expect(await afterOff(OFFICE_IP)).toBe('allow');
  }, 60_000);
});
