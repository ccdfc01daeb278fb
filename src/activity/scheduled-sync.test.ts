import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { apiCall, iamUser, logFile, logFileKey, putLogFile } from '../../test/support/cloudtrail.js';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { type LocalAws, s3ClientFor, startLocalAws } from '../../test/support/local-aws.js';
import type { AuditContext } from '../audit/actor.js';

const ACCOUNT = '123456789012';
const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };

describe.each(ENGINES)("the worker's scheduled CloudTrail sync (%s, moto)", (engine) => {
  let aws: LocalAws;
  let s3: S3Client;
  let ferry: TestFerry;
  const bucket = `scheduled-${engine}`;

  beforeAll(async () => {
    aws = await startLocalAws();
    s3 = s3ClientFor(aws);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    ferry = await startTestFerry(engine, {
      // the worker ticks every 100 ms and syncs CloudTrail every 500 ms, on its own
      workerIntervalMs: 100,
      config: {
        aws: { endpoint: aws.endpoint, region: aws.region },
        cloudtrail: { syncInterval: '500ms' },
      },
    });
    await ferry.services.cloudtrail.addSource(ctx, { bucket });
  }, 120_000);
  afterAll(async () => {
    await ferry?.close();
    s3?.destroy();
    await aws?.stop();
  });

  const stored = async () =>
    (await ferry.services.store.db.selectFrom('cloudtrail_records').select('event_id').execute()).map(
      (r) => r.event_id,
    );
  const call = (eventId: string, time: Date) =>
    apiCall({
      identity: iamUser(ACCOUNT, 'deployer', 'AKIAIOSFODNN7EXAMPLE'),
      eventSource: 's3.amazonaws.com',
      eventName: 'ListBuckets',
      time,
      account: ACCOUNT,
      eventId,
    });

  it('reads a file that arrives later by itself, without `ferry cloudtrail sync`, and then the next one', async () => {
    const t = new Date(Date.now() - 60_000);
    await putLogFile(s3, bucket, logFileKey({ account: ACCOUNT, time: t }), logFile([call('evt-first', t)]));
    await vi.waitFor(async () => expect(await stored()).toEqual(['evt-first']), {
      timeout: 20_000,
      interval: 100,
    });
    const later = new Date(t.getTime() + 5 * 60_000);
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: later }),
      logFile([call('evt-second', later)]),
    );
    await vi.waitFor(async () => expect((await stored()).sort()).toEqual(['evt-first', 'evt-second']), {
      timeout: 20_000,
      interval: 100,
    });
    const [source] = await ferry.services.cloudtrail.sources();
    expect(source!.lastSyncAt).not.toBeNull();
    expect(source!.positions).toHaveLength(1);
    // the worker's syncs are audited (after the records commit) as the system, not as a person
    const synced = async () =>
      (
        await ferry.services.store.db
          .selectFrom('audit_events')
          .select('actor')
          .where('type', '=', 'cloudtrail.synced')
          .execute()
      ).map((a) => (JSON.parse(a.actor) as { type: string }).type);
    await vi.waitFor(async () => expect((await synced()).length).toBeGreaterThanOrEqual(2), {
      timeout: 10_000,
    });
    expect(new Set(await synced())).toEqual(new Set(['system']));
  }, 60_000);
});
