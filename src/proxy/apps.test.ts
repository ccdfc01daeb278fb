import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { listAudit } from '../audit/ledger.js';
import { principalOf } from '../identity/principal-of.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const browser = { client: 'browser' as const, ip: '127.0.0.1' };

describe.each(ENGINES)('proxied apps and app assignments on %s', (engine) => {
  let ferry: TestFerry;

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('closes a new app with no group to everyone, opens it when configured open, then only to its groups', async () => {
    const s = ferry.services;
    const devs = await s.groups.create(ctx, { displayName: 'Dash-Devs' });
    const ops = await s.groups.create(ctx, { displayName: 'Dash-Ops' });
    const dev = await s.users.create(ctx, { userName: 'dev@contoso.example' });
    const outsider = await s.users.create(ctx, { userName: 'outsider@contoso.example' });
    await s.groups.setMembership(ctx, devs.id, dev.id, true);
    const who = (id: string) => principalOf(s.store.db, id, null);
    const target = { kind: 'app' as const, name: 'dash' };

    const added = await s.proxyApps.set(ctx, 'dash', {
      upstream: 'http://10.0.0.5:3000/',
      url: 'https://dash.apps.example/',
      groups: [],
    });
    expect(added.app.openToAll).toBe(false);
    for (const id of [dev.id, outsider.id])
      expect(await s.access.decide(await who(id), target, browser)).toEqual({
        effect: 'deny',
        reasons: [
          {
            source: 'assignment',
            message:
              'app:dash is assigned to no group and is not open to all users; an administrator must assign it',
          },
        ],
      });

    // Configured open: every signed-in, active person may use it while no group is assigned.
    const opened = await s.proxyApps.set(ctx, 'dash', {
      upstream: 'http://10.0.0.5:3000',
      url: 'https://dash.apps.example',
      groups: [],
      openToAll: true,
    });
    expect(opened).toMatchObject({ changed: true, app: { openToAll: true } });
    const open = await s.access.decide(await who(outsider.id), target, browser);
    expect(open).toMatchObject({
      effect: 'allow',
      reasons: [{ message: 'app:dash is open to all active users' }],
    });
    const updated = await listAudit(s.store.db, { type: 'proxy-app.updated', subject: 'app:dash' });
    expect(updated.at(-1)!.data).toMatchObject({ openToAll: true, previous: { openToAll: false } });

    const { app, created } = await s.proxyApps.set(ctx, 'dash', {
      upstream: 'http://10.0.0.5:3000',
      url: 'https://dash.apps.example',
      groups: [
        { type: 'group', id: devs.id, name: devs.displayName },
        { type: 'group', id: ops.id, name: ops.displayName },
      ],
    });
    expect(created).toBe(false);
    expect(app).toMatchObject({
      upstream: 'http://10.0.0.5:3000',
      url: 'https://dash.apps.example',
      groups: ['Dash-Devs', 'Dash-Ops'],
    });
    const allowed = await s.access.decide(await who(dev.id), target, browser);
    expect(allowed.effect).toBe('allow');
    expect(allowed.reasons[0]!.message).toBe('member of Dash-Devs, which is assigned app:dash');
    const denied = await s.access.decide(await who(outsider.id), target, browser);
    expect(denied).toEqual({
      effect: 'deny',
      reasons: [
        {
          source: 'assignment',
          message: 'app:dash is assigned to Dash-Devs, Dash-Ops; outsider@contoso.example is in none of them',
        },
      ],
    });
    const changes = await listAudit(s.store.db, { type: 'app-assignment.changed', subject: 'app:dash' });
    expect(changes.at(-1)!.data).toMatchObject({ added: ['Dash-Devs', 'Dash-Ops'], removed: [] });

    // The same set again changes nothing and writes nothing.
    const again = await s.proxyApps.set(ctx, 'dash', {
      upstream: 'http://10.0.0.5:3000',
      url: 'https://dash.apps.example',
      groups: [
        { type: 'group', id: ops.id, name: ops.displayName },
        { type: 'group', id: devs.id, name: devs.displayName },
      ],
    });
    expect(again.changed).toBe(false);
    expect(await listAudit(s.store.db, { type: 'app-assignment.changed', subject: 'app:dash' })).toHaveLength(
      1,
    );

    expect(await s.proxyApps.byHost('DASH.apps.example')).toMatchObject({ name: 'dash' });
    expect(await s.proxyApps.byHost('other.apps.example')).toBeNull();

    // Removing the app removes its assignments: a later app of the same name starts closed again.
    await s.proxyApps.remove(ctx, 'dash');
    expect(await s.appAssignments.groupsOf('dash')).toEqual([]);
    await expect(s.proxyApps.get('dash')).rejects.toThrow('not found');
    await s.proxyApps.set(ctx, 'dash', {
      upstream: 'http://10.0.0.5:3000',
      url: 'https://dash.apps.example',
      groups: [],
    });
    expect((await s.access.decide(await who(dev.id), target, browser)).effect).toBe('deny');
    await s.proxyApps.remove(ctx, 'dash');
  });

  it('refuses names, URLs and origins it cannot serve', async () => {
    const s = ferry.services;
    const input = { upstream: 'http://10.0.0.5', url: 'https://x.apps.example', groups: [] };
    await expect(s.proxyApps.set(ctx, 'Bad Name', input)).rejects.toThrow('lower-case');
    await expect(s.proxyApps.set(ctx, 'x', { ...input, url: 'https://x.apps.example/sub' })).rejects.toThrow(
      'without a path',
    );
    await expect(s.proxyApps.set(ctx, 'x', { ...input, upstream: 'file:///etc/passwd' })).rejects.toThrow(
      'http(s) URL',
    );
    await expect(s.proxyApps.set(ctx, 'x', { ...input, url: 'https://u:p@x.apps.example' })).rejects.toThrow(
      'credentials',
    );
    await s.proxyApps.set(ctx, 'first', input);
    await expect(s.proxyApps.set(ctx, 'second', input)).rejects.toThrow('already serves the app first');
  });
});

describe.each(ENGINES)('proxied apps in the tenant file on %s', (engine) => {
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
      body: (await res.json()) as {
        changes: Array<{ action: string; kind: string; name: string; detail?: string }>;
        detail?: string;
      },
    };
  };

  it('creates, updates and prunes apps with their groups; applying twice changes nothing', async () => {
    const doc = {
      groups: [{ name: 'Grafana-Users' }],
      proxyApps: [
        {
          name: 'grafana',
          upstream: 'http://10.0.3.7:3000',
          url: 'https://grafana.apps.example',
          groups: ['Grafana-Users'],
        },
      ],
    };
    const dry = await apply(doc, { dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body.changes).toContainEqual({ action: 'create', kind: 'proxy-app', name: 'grafana' });
    await expect(ferry.services.proxyApps.get('grafana')).rejects.toThrow('not found');
    expect((await apply(doc)).status).toBe(200);
    expect(await ferry.services.proxyApps.get('grafana')).toMatchObject({
      groups: ['Grafana-Users'],
      url: 'https://grafana.apps.example',
    });
    expect((await apply(doc)).body.changes).toEqual([]);

    const moved = {
      ...doc,
      proxyApps: [{ ...doc.proxyApps[0]!, upstream: 'http://10.0.3.8:3000', groups: [], openToAll: true }],
    };
    const update = await apply(moved);
    expect(update.body.changes).toEqual([
      {
        action: 'update',
        kind: 'proxy-app',
        name: 'grafana',
        detail:
          'upstream: "http://10.0.3.7:3000" → "http://10.0.3.8:3000", openToAll: false → true, groups: Grafana-Users → ',
      },
    ]);
    expect(await ferry.services.proxyApps.get('grafana')).toMatchObject({ groups: [], openToAll: true });
    // Leaving openToAll out of the file keeps what the app has.
    const { openToAll: _, ...unsaid } = moved.proxyApps[0]!;
    expect((await apply({ ...doc, proxyApps: [unsaid] })).body.changes).toEqual([]);

    const pruned = await apply({ groups: doc.groups }, { prune: true });
    expect(pruned.body.changes).toContainEqual({ action: 'delete', kind: 'proxy-app', name: 'grafana' });
    await expect(ferry.services.proxyApps.get('grafana')).rejects.toThrow('not found');

    const bad = await apply({ proxyApps: [{ name: 'x', upstream: 'gopher://x', url: 'https://x.example' }] });
    expect(bad.status).toBe(400);
  });
});
