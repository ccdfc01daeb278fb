import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { storeMigratedTo } from '../../test/support/migrated-store.js';
import { AppAssignments } from '../access/app-assignments.js';
import { ManualClock } from '../clock.js';
import { migrateToLatest } from '../store/migrate.js';
import { ProxyApps } from './apps.js';

/**
 * Migration 0020 closes proxied apps that have no group, but only those registered after it: apps
 * registered before keep working for every active user (as docs/proxy.md's upgrade notes say).
 */
describe.each(ENGINES)('proxied apps: upgrade to 0020 on %s', (engine) => {
  const database = storeMigratedTo(engine, '0019_audit_ledger');

  it('keeps apps registered before the upgrade open, and registers new ones closed', async () => {
    const { store } = database;
    const now = '2026-03-01T09:00:00.000Z';
    await (store.db as unknown as Kysely<Record<string, Record<string, unknown>>>)
      .insertInto('proxy_apps')
      .values({
        name: 'wiki',
        upstream_url: 'http://10.0.3.9:8080',
        public_url: 'https://wiki.apps.example',
        created_at: now,
        updated_at: now,
        created_by: 'operator',
      })
      .execute();
    await migrateToLatest(store);
    const clock = new ManualClock(now);
    const apps = new ProxyApps(store, clock, new AppAssignments(store, clock));
    expect(await apps.openToAll('wiki')).toBe(true);
    expect(await apps.get('wiki')).toMatchObject({ groups: [], openToAll: true });
    // Changing an upgraded app without saying openToAll keeps it open.
    const moved = await apps.set({ actor: { type: 'operator', name: 'test' } }, 'wiki', {
      upstream: 'http://10.0.3.10:8080',
      url: 'https://wiki.apps.example',
      groups: [],
    });
    expect(moved.app.openToAll).toBe(true);
    const added = await apps.set({ actor: { type: 'operator', name: 'test' } }, 'grafana', {
      upstream: 'http://10.0.3.7:3000',
      url: 'https://grafana.apps.example',
      groups: [],
    });
    expect(added.app.openToAll).toBe(false);
    expect(await apps.openToAll('grafana')).toBe(false);
    expect(await apps.openToAll('unknown')).toBeUndefined();
  });
});
