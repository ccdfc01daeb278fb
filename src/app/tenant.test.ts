import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

const document = {
  groups: [{ name: 'T-Admins' }, { name: 'T-Devs', description: 'developers' }],
  accounts: [
    {
      id: '111122223333',
      alias: 'Sandbox',
      roles: [{ name: 'Admin', maxSessionDuration: '12h' }, { name: 'Dev' }],
    },
  ],
  assignments: [
    { group: 'T-Admins', account: 'Sandbox', role: 'Admin' },
    { group: 'T-Devs', account: '111122223333', role: 'Dev' },
  ],
};

describe.each(ENGINES)('tenant file on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });
  const apply = async (doc: unknown, flags: { dryRun?: boolean; prune?: boolean } = {}) => {
    const res = await ferry.api('/api/v1/tenant/apply', {
      method: 'POST',
      body: JSON.stringify({ document: doc, ...flags }),
    });
    return {
      status: res.status,
      body: (await res.json()) as { changes: Array<{ action: string; kind: string; name: string }> },
    };
  };

  it('dry run lists the changes and changes nothing; apply makes them; a second apply changes nothing', async () => {
    const dry = await apply(document, { dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body.changes.map((c) => `${c.action} ${c.kind}`)).toEqual([
      'create group',
      'create group',
      'create aws-account',
      'create aws-role',
      'create aws-role',
      'create assignment',
      'create assignment',
    ]);
    expect((await ferry.api('/api/v1/aws/accounts/111122223333')).status).toBe(404);

    const first = await apply(document);
    expect(first.body.changes).toHaveLength(7);
    const account = (await (await ferry.api('/api/v1/aws/accounts/Sandbox')).json()) as {
      roles: Array<{ name: string; maxSessionDuration: number }>;
    };
    expect(account.roles).toEqual([
      expect.objectContaining({ name: 'Admin', maxSessionDuration: 43200 }),
      expect.objectContaining({ name: 'Dev', maxSessionDuration: 3600 }),
    ]);
    expect((await apply(document)).body.changes).toEqual([]);
  });

  it('reports an update as a diff, and prune removes assignments the file no longer lists', async () => {
    const changed = structuredClone(document);
    changed.accounts[0]!.roles[1] = { name: 'Dev', maxSessionDuration: '2h' };
    changed.assignments.pop();
    const dry = await apply(changed, { dryRun: true, prune: true });
    expect(dry.body.changes).toEqual([
      expect.objectContaining({ action: 'update', kind: 'aws-role', name: 'aws:111122223333/Dev' }),
      expect.objectContaining({ action: 'delete', kind: 'assignment' }),
    ]);
    await apply(changed, { prune: true });
    const list = (await (await ferry.api('/api/v1/assignments?account=Sandbox')).json()) as {
      items: unknown[];
    };
    expect(list.items).toHaveLength(1);
  });

  it('carries PIM eligibilities: created with their rules, unchanged on a second apply, updated, pruned', async () => {
    const doc = {
      groups: [{ name: 'E-Admins' }, { name: 'E-Devs' }],
      accounts: [{ id: '444455556666', alias: 'Elig', roles: [{ name: 'Admin' }] }],
      eligibilities: [
        {
          group: 'E-Devs',
          account: 'Elig',
          role: 'Admin',
          maxDuration: '1h',
          requireJustification: true,
          approvers: { groups: ['E-Admins'] },
          autoApprove: { maxDuration: '30m', withTicket: true },
        },
      ],
    };
    const dry = await apply(doc, { dryRun: true });
    expect(dry.body.changes.filter((c) => c.kind === 'eligibility')).toEqual([
      expect.objectContaining({ action: 'create', name: 'group:E-Devs → aws:444455556666/Admin' }),
    ]);
    await apply(doc);
    const list = (await (await ferry.api('/api/v1/pim/eligibilities')).json()) as {
      items: Array<Record<string, unknown>>;
    };
    const e = list.items.find((x) => x.target === 'aws:444455556666/Admin');
    expect(e).toMatchObject({
      principalType: 'group',
      maxDuration: 3600,
      requireJustification: true,
      requireTicket: false,
      requireMfa: false,
      approvalsRequired: 1,
      approvers: [expect.objectContaining({ type: 'group', name: 'E-Admins' })],
      autoApprove: { maxDuration: 1800, withTicket: true },
    });
    expect((await apply(doc)).body.changes).toEqual([]);
    const longer = structuredClone(doc);
    longer.eligibilities[0]!.maxDuration = '2h';
    expect((await apply(longer)).body.changes).toEqual([
      expect.objectContaining({ action: 'update', kind: 'eligibility' }),
    ]);
    const pruned = await apply({ ...doc, eligibilities: [] }, { prune: true, dryRun: true });
    expect(pruned.body.changes).toContainEqual(
      expect.objectContaining({ action: 'delete', kind: 'eligibility' }),
    );
    const bad = await apply({
      eligibilities: [{ group: 'E-Devs', account: 'Elig', role: 'Admin', maxDuration: '5m' }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('maxDuration');
  });

  it('carries eligibilities for a group membership and an SSH login (target), converging on a second apply', async () => {
    const doc = {
      groups: [{ name: 'T-Devs' }, { name: 'T-Breakglass' }],
      eligibilities: [
        { group: 'T-Devs', target: 'group:T-Breakglass', maxDuration: '1h', requireJustification: true },
        { group: 'T-Devs', target: 'ssh:root@*.prod.internal', maxDuration: '30m' },
      ],
    };
    const dry = await apply(doc, { dryRun: true });
    expect(dry.body.changes.filter((c) => c.kind === 'eligibility').map((c) => c.name)).toEqual([
      'group:T-Devs → group:T-Breakglass',
      'group:T-Devs → ssh:root@*.prod.internal',
    ]);
    expect((await apply(doc)).status).toBe(200);
    const list = (await (await ferry.api('/api/v1/pim/eligibilities')).json()) as {
      items: Array<Record<string, unknown>>;
    };
    expect(list.items.filter((x) => x.principalName === 'T-Devs').map((x) => [x.kind, x.target])).toEqual(
      expect.arrayContaining([
        ['group', 'group:T-Breakglass'],
        ['ssh', 'ssh:root@*.prod.internal'],
      ]),
    );
    expect((await apply(doc)).body.changes).toEqual([]);
    const bad = await apply({
      eligibilities: [{ group: 'T-Devs', target: 'ssh:-bad@host', maxDuration: '30m' }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('not a Linux user name');
  });

  it('refuses a bad document with a problem naming the key', async () => {
    const bad = await apply({ accounts: [{ id: '12', alias: 'x' }] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('accounts.0.id');
    const unknown = await apply({ assignments: [{ group: 'Nobody', account: 'Sandbox', role: 'Admin' }] });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain('unknown group Nobody');
  });
});
