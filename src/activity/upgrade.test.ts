import { type Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { storeMigratedTo } from '../../test/support/migrated-store.js';
import { migrateToLatest, migratorFor } from '../store/migrate.js';

type Loose = Kysely<Record<string, Record<string, unknown>>>;

const record = (eventId: string, eventTime: string, userId: string | null) => ({
  event_id: eventId,
  event_time: eventTime,
  event_source: 's3.amazonaws.com',
  event_name: 'GetObject',
  aws_region: 'us-east-1',
  account: '123456789012',
  source_ip: null,
  user_agent: null,
  error_code: null,
  error_message: null,
  identity_type: 'AssumedRole',
  access_key_id: 'ASIAEXAMPLE',
  role_arn: 'arn:aws:iam::123456789012:role/Developer',
  role_name: 'Developer',
  role_session_name: 'jane',
  source_identity: null,
  method: userId ? 'access-key' : 'none',
  user_id: userId,
  user_name: userId ? 'jane@contoso.example' : null,
  credential_id: null,
  issued_by_ferry: userId ? 1 : 0,
  raw: '{"eventType":"AwsApiCall"}',
  source_id: 'src-1',
  object_key: 'AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/06/f.json.gz',
  ingested_at: '2026-12-06T09:00:00.000Z',
});

/**
 * Migration 0037 keys CloudTrail records by (event_time, event_id) (ADR 0047): records stored before
 * it are all still there, a repeat of one of them still collides, and detection_counts is gone.
 */
describe.each(ENGINES)('cloudtrail records: upgrade to 0037 on %s', (engine) => {
  const database = storeMigratedTo(engine, '0028_audit_archive');

  it('keeps the records stored before, still refuses a repeat of one, and drops detection_counts', async () => {
    const { store } = database;
    const loose = store.db as unknown as Loose;
    const a = record('3e1c0a5e-0000-4000-8000-000000000001', '2026-12-06T08:00:00.000Z', 'u-jane');
    const b = record('3e1c0a5e-0000-4000-8000-000000000002', '2026-12-06T08:00:01.000Z', null);
    await loose.insertInto('cloudtrail_records').values([a, b]).execute();
    await migrateToLatest(store);

    const rows = await loose.selectFrom('cloudtrail_records').selectAll().orderBy('event_time').execute();
    expect(rows.map((r) => ({ ...r, issued_by_ferry: Number(r.issued_by_ferry) }))).toEqual([a, b]);
    const repeat = await loose
      .insertInto('cloudtrail_records')
      .values({ ...a, raw: '{}' })
      .onConflict((oc) => oc.columns(['event_time', 'event_id']).doNothing())
      .executeTakeFirst();
    expect(Number(repeat.numInsertedOrUpdatedRows ?? 0)).toBe(0);
    await expect(loose.insertInto('cloudtrail_records').values(a).execute()).rejects.toThrow();
    await expect(sql`select count(*) from detection_counts`.execute(store.db)).rejects.toThrow();
  });
});

/**
 * Migration 0047 drops cloudtrail_sources.lease_holder / lease_until, unused since a source's lease is a
 * row of leases (withLease): a source added before it keeps everything else, even one that was leased
 * in the old columns, and the migration goes down again cleanly.
 */
describe.each(ENGINES)('cloudtrail sources: upgrade to 0047 on %s', (engine) => {
  const database = storeMigratedTo(engine, '0042_ssh_logins_generation');

  it('keeps the sources and drops their old lease columns, and goes down again', async () => {
    const { store } = database;
    const loose = store.db as unknown as Loose;
    const source = {
      id: 'src-1',
      bucket: 'contoso-trail',
      prefix: 'org/',
      region: 'eu-west-1',
      created_at: '2026-12-06T08:00:00.000Z',
      last_sync_at: '2026-12-06T09:00:00.000Z',
      last_error: null,
    };
    await loose
      .insertInto('cloudtrail_sources')
      .values({ ...source, lease_holder: 'old-holder', lease_until: '2026-12-06T09:00:15.000Z' })
      .execute();
    await migrateToLatest(store);

    expect(await loose.selectFrom('cloudtrail_sources').selectAll().execute()).toEqual([source]);
    await expect(sql`select lease_holder from cloudtrail_sources`.execute(store.db)).rejects.toThrow();
    await expect(sql`select lease_until from cloudtrail_sources`.execute(store.db)).rejects.toThrow();

    expect((await migratorFor(store).migrateTo('0042_ssh_logins_generation')).error).toBeUndefined();
    const down = await sql<{
      lease_holder: string | null;
    }>`select lease_holder from cloudtrail_sources`.execute(store.db);
    expect(down.rows).toEqual([{ lease_holder: null }]);
  });
});
