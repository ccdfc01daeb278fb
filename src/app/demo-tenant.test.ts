import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { principalOf } from '../identity/principal-of.js';
import { ensureDemoTenant } from './demo-tenant.js';

describe.each(ENGINES)('the demo tenant on %s', (engine) => {
  let ferry: TestFerry;
  let dir: string;
  beforeAll(async () => {
    // as `npm run demo` runs it: no security key demanded of a password + TOTP sign-in
    ferry = await startTestFerry(engine, { config: { adminRoles: { builtInRequirements: false } } });
    dir = mkdtempSync(join(tmpdir(), 'ferry-demo-tenant-'));
  });
  afterAll(async () => {
    await ferry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes Test-AWSAdmin a Ferry Administrator and gives the demo a helpdesk and an auditor, through groups', async () => {
    const file = join(dir, 'credentials.json');
    const first = await ensureDemoTenant(ferry.services, file);
    await ensureDemoTenant(ferry.services, file); // idempotent
    expect(first.users.find((u) => u.userName === 'test-awsadmin@contoso.example')?.groups).toContain(
      'Ferry-Administrators',
    );
    const s = ferry.services;
    const decide = async (userName: string, role: string) => {
      const user = await s.users.get(userName);
      const p = await principalOf(s.store.db, user.id, { amr: ['pwd', 'otp', 'mfa'], authTime: null });
      return (await s.access.decide(p, { kind: 'admin', role }, { client: 'browser' })).effect;
    };
    expect(await decide('test-awsadmin@contoso.example', 'ferry-administrator')).toBe('allow');
    expect(await decide('test-helpdesk@contoso.example', 'helpdesk')).toBe('allow');
    expect(await decide('test-helpdesk@contoso.example', 'ferry-administrator')).toBe('deny');
    expect(await decide('test-auditor@contoso.example', 'auditor')).toBe('allow');
    expect(await decide('test-awsdeveloper@contoso.example', 'auditor')).toBe('deny');
    expect((await s.adminRoles.list()).map((a) => a.role).sort()).toEqual([
      'auditor',
      'ferry-administrator',
      'helpdesk',
    ]);
  });
});
