import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  apiCall,
  assumedRole,
  iamUser,
  logFile,
  logFileKey,
  putLogFile,
  rootConsoleLogin,
} from '../../test/support/cloudtrail.js';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { ageHeartbeat } from '../../test/support/db-time.js';
import { gate } from '../../test/support/gate.js';
import { type LocalAws, s3ClientFor, startLocalAws } from '../../test/support/local-aws.js';
import { awsIdentityOf } from '../access/aws-identity.js';
import type { AuditContext } from '../audit/actor.js';
import { recordIssued } from '../audit/issued.js';
import { listAudit } from '../audit/ledger.js';
import { cloudTrailS3 } from '../aws/cloudtrail-s3.js';
import { ManualClock } from '../clock.js';
import { openStore, type Store } from '../store/open.js';
import { heartbeat } from '../store/outbox.js';
import { CloudTrail, type CloudTrailOptions } from './ingest.js';
import type { AttributedRecord } from './record.js';

const ACCOUNT = '123456789012';
const OTHER = '210987654321';
const ORG = 'o-a1b2c3d4e5';
const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const JANE = { id: 'u-jane', userName: 'jane@contoso.example' };
const OPTIONS: CloudTrailOptions = {
  batchSize: 50,
  retentionMs: 90 * 86_400_000,
  keepFields: null,
  clockSkewMs: 5 * 60_000,
  leaseMs: 60_000,
};

describe.each(ENGINES)('CloudTrail ingestion from S3 (%s, moto)', (engine) => {
  let aws: LocalAws;
  let s3: S3Client;
  let db: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let observed: AttributedRecord[][];
  let bucketCounter = 0;
  let bucket: string;
  let identity: string;

  const cloudtrail = (options: Partial<CloudTrailOptions> = {}) =>
    new CloudTrail(
      {
        store,
        clock,
        s3: cloudTrailS3({ region: aws.region, endpoint: aws.endpoint }),
        activityObservers: [async (batch) => void observed.push([...batch])],
      },
      { ...OPTIONS, ...options },
    );

  /** Jane's Ferry credentials for Developer: the ledger row and her AWS identity, as the broker writes them. */
  async function issueToJane(accessKeyId: string, issuedAt: Date) {
    clock.set(issuedAt);
    const name = await awsIdentityOf(store.db, clock, { kind: 'user', id: JANE.id, userName: JANE.userName });
    await store.db.transaction().execute((trx) =>
      recordIssued(trx, clock, {
        kind: 'sts-credentials',
        userId: JANE.id,
        subject: JANE.userName,
        target: `aws:${ACCOUNT}/Developer`,
        audience: null,
        externalId: accessKeyId,
        details: {
          sessionName: name,
          sourceIdentity: name,
          roleArn: `arn:aws:iam::${ACCOUNT}:role/Developer`,
        },
        expiresAt: new Date(issuedAt.getTime() + 3_600_000),
      }),
    );
    return name;
  }

  const janeCall = (o: {
    key: string;
    name: string;
    minutes: number;
    eventName?: string;
    errorCode?: string;
  }) =>
    apiCall({
      identity: assumedRole({
        account: ACCOUNT,
        role: 'Developer',
        session: identity,
        accessKeyId: o.key,
        sourceIdentity: identity,
      }),
      eventSource: 's3.amazonaws.com',
      eventName: o.eventName ?? 'ListBuckets',
      time: at(o.minutes),
      account: ACCOUNT,
      ...(o.errorCode ? { errorCode: o.errorCode } : {}),
    });

  beforeAll(async () => {
    aws = await startLocalAws();
    s3 = s3ClientFor(aws);
  }, 60_000);

  afterAll(async () => {
    s3?.destroy();
    await aws?.stop();
  });

  beforeEach(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
    clock = new ManualClock(T0);
    observed = [];
    bucket = `trail-${engine}-${++bucketCounter}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    identity = await issueToJane('ASIAJANEFERRY0000001', at(-5));
    clock.set(at(30));
  });

  afterEach(async () => {
    await store.close();
    await db.drop();
  });

  it('stores account and organization trail records, attributed in order of trust, and tells observers once each', async () => {
    const chained = apiCall({
      // Jane chained from Developer into another account's role: the key is new, the source identity stays.
      identity: assumedRole({
        account: OTHER,
        role: 'Auditor',
        session: 'chained',
        accessKeyId: 'ASIACHAINED000000001',
        sourceIdentity: identity,
      }),
      eventSource: 'iam.amazonaws.com',
      eventName: 'ListRoles',
      time: at(3),
      account: OTHER,
    });
    const byName = apiCall({
      // A console session (no key in the ledger) of the role, with Jane's session name.
      identity: assumedRole({
        account: ACCOUNT,
        role: 'Developer',
        session: identity,
        accessKeyId: 'ASIACONSOLE000000001',
      }),
      eventSource: 'ec2.amazonaws.com',
      eventName: 'DescribeInstances',
      time: at(4),
      account: ACCOUNT,
    });
    const rootCall = rootConsoleLogin(ACCOUNT, at(5));
    const iamUserCall = apiCall({
      identity: iamUser(ACCOUNT, 'legacy-deployer', 'AKIAIOSFODNN7EXAMPLE'),
      eventSource: 'iam.amazonaws.com',
      eventName: 'CreateUser',
      time: at(6),
      account: ACCOUNT,
      readOnly: false,
    });
    const otherFederation = apiCall({
      identity: assumedRole({
        account: ACCOUNT,
        role: 'Developer',
        session: 'someone-else',
        accessKeyId: 'ASIAOTHER00000000001',
      }),
      eventSource: 's3.amazonaws.com',
      eventName: 'ListBuckets',
      time: at(7),
      account: ACCOUNT,
    });
    const denied = janeCall({
      key: 'ASIAJANEFERRY0000001',
      name: identity,
      minutes: 2,
      eventName: 'CreateBucket',
      errorCode: 'AccessDenied',
    });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(5) }),
      logFile([
        janeCall({ key: 'ASIAJANEFERRY0000001', name: identity, minutes: 1 }),
        denied,
        byName,
        rootCall,
        iamUserCall,
        otherFederation,
      ]),
    );
    await putLogFile(
      s3,
      bucket,
      logFileKey({ org: ORG, account: OTHER, region: 'eu-west-1', time: at(5) }),
      logFile([chained]),
    );
    const ct = cloudtrail();
    const source = await ct.addSource(ctx, { bucket, prefix: '' });
    await ct.addSource(ctx, { bucket, prefix: 'org-trail' });

    const result = await ct.sync();
    expect(result.sources[0]).toMatchObject({
      files: 2,
      records: 7,
      stored: 7,
      duplicates: 0,
      rejected: 0,
      error: null,
    });
    expect(result.skipped).toEqual([]);
    const seen = observed.flat();
    expect(seen).toHaveLength(7);
    const byEvent = new Map(seen.map((r) => [r.eventId, r]));
    const attribution = (raw: Record<string, unknown>) => byEvent.get(raw.eventID as string)!.attribution;
    expect(attribution(denied)).toMatchObject({ method: 'access-key', userId: JANE.id, issuedByFerry: true });
    expect(byEvent.get(denied.eventID as string)).toMatchObject({
      errorCode: 'AccessDenied',
      roleArn: `arn:aws:iam::${ACCOUNT}:role/Developer`,
    });
    expect(attribution(chained)).toMatchObject({
      method: 'source-identity',
      userId: JANE.id,
      issuedByFerry: true,
    });
    expect(attribution(byName)).toMatchObject({
      method: 'session-name',
      userId: JANE.id,
      issuedByFerry: true,
    });
    for (const notFerry of [rootCall, iamUserCall, otherFederation])
      expect(attribution(notFerry)).toEqual({
        method: 'none',
        userId: null,
        userName: null,
        credentialId: null,
        issuedByFerry: false,
      });
    expect(byEvent.get(rootCall.eventID as string)?.identityType).toBe('Root');

    const [listed] = await ct.sources();
    expect(listed?.id).toBe(source.id);
    expect(listed?.positions.map((p) => p.folder)).toEqual([
      `AWSLogs/${ACCOUNT}/CloudTrail/us-east-1/`,
      `AWSLogs/${ORG}/${OTHER}/CloudTrail/eu-west-1/`,
    ]);
  });

  it('reads only new files on the next sync, also in a folder that sorts before the last one read', async () => {
    const ct = cloudtrail();
    await ct.addSource(ctx, { bucket });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, region: 'us-west-2', time: at(5) }),
      logFile([janeCall({ key: 'K1', name: identity, minutes: 1 })]),
    );
    expect((await ct.sync()).stored).toBe(1);
    // A region folder that sorts before us-west-2, and a later file in us-west-2.
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, region: 'eu-central-1', time: at(10) }),
      logFile([janeCall({ key: 'K2', name: identity, minutes: 9 })]),
    );
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, region: 'us-west-2', time: at(10) }),
      logFile([janeCall({ key: 'K3', name: identity, minutes: 9 })]),
    );
    const second = await ct.sync();
    expect(second.sources[0]).toMatchObject({ files: 2, stored: 2 });
    expect((await ct.sync()).sources[0]).toMatchObject({ files: 0, stored: 0 });
    expect(observed.flat()).toHaveLength(3);
  });

  it('stores a file delivered twice once, and tells observers nothing new the second time', async () => {
    const ct = cloudtrail();
    await ct.addSource(ctx, { bucket });
    const body = logFile([
      janeCall({ key: 'K1', name: identity, minutes: 1 }),
      janeCall({ key: 'K1', name: identity, minutes: 2 }),
    ]);
    await putLogFile(s3, bucket, logFileKey({ account: ACCOUNT, time: at(5) }), body);
    await putLogFile(s3, bucket, logFileKey({ account: ACCOUNT, time: at(6) }), body);
    const res = await ct.sync();
    expect(res.sources[0]).toMatchObject({ files: 2, records: 4, stored: 2, duplicates: 2 });
    expect(observed.flat()).toHaveLength(2);
    const count = await store.db
      .selectFrom('cloudtrail_records')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(2);
  });

  it('skips and reports a truncated gzip file, a garbage file and records of unknown shape, and reads on past them', async () => {
    const ct = cloudtrail();
    await ct.addSource(ctx, { bucket });
    const many = Array.from({ length: 400 }, (_, i) =>
      janeCall({ key: 'K1', name: identity, minutes: i % 20 }),
    );
    const whole = logFile(many);
    const truncatedKey = logFileKey({ account: ACCOUNT, time: at(1) });
    const garbageKey = logFileKey({ account: ACCOUNT, time: at(2) });
    await putLogFile(s3, bucket, truncatedKey, whole.subarray(0, Math.floor(whole.length / 2)));
    await putLogFile(s3, bucket, garbageKey, Buffer.from('<Error>not a log file</Error>'));
    const unknown = {
      eventVersion: '9.99',
      eventTime: at(3).toISOString(),
      eventSource: 'future.amazonaws.com',
      eventName: 'DoSomethingNew',
      eventID: 'e0b5c4a8-1b6e-4d5f-8a4b-000000000001',
      userIdentity: { type: 'SomeNewIdentityType', quantum: true },
      brandNewField: [1, 2, 3],
    };
    const good = janeCall({ key: 'ASIAJANEFERRY0000001', name: identity, minutes: 4 });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(4) }),
      gzipSync(JSON.stringify({ Records: [unknown, { eventName: 'NoId' }, 'a string', good] })),
    );
    const res = await ct.sync();
    const [s] = res.sources;
    expect(s?.error).toBeNull();
    expect(res.skipped.map((k) => [k.key, k.reason])).toEqual([
      [truncatedKey, 'the gzip stream is cut short'],
      [garbageKey, 'not a CloudTrail log file (no "Records" array)'],
    ]);
    // Every record read whole before the cut is stored and counted, over several batches (each stored
    // while the next is read).
    const fromTruncated = await store.db
      .selectFrom('cloudtrail_records')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('object_key', '=', truncatedKey)
      .executeTakeFirstOrThrow();
    expect(res.skipped[0]?.recordsKept).toBeGreaterThan(2 * 50);
    expect(Number(fromTruncated.n)).toBe(res.skipped[0]?.recordsKept);
    expect(s?.rejected).toBe(2);
    const stored = observed.flat();
    expect(stored.find((r) => r.eventId === unknown.eventID)).toMatchObject({
      identityType: 'SomeNewIdentityType',
      account: ACCOUNT, // from the file name: the record has no recipientAccountId
      attribution: { method: 'none', issuedByFerry: false },
    });
    expect(stored.find((r) => r.eventId === good.eventID)?.attribution.method).toBe('access-key');
    const audit = await listAudit(store.db, { type: 'cloudtrail.file.skipped' });
    expect(audit.map((e) => e.data.key)).toEqual([truncatedKey, garbageKey]);
    // The position moved past them: the next sync does not read them again.
    expect((await ct.sync()).skipped).toEqual([]);
  });

  it('attributes across clock skew within the allowance, and counts records from ahead of Ferry’s clock', async () => {
    const ct = cloudtrail();
    await ct.addSource(ctx, { bucket });
    // Jane was issued credentials at -5 (Ferry's clock); AWS's clock is 3 minutes behind.
    const early = apiCall({
      identity: assumedRole({
        account: ACCOUNT,
        role: 'Developer',
        session: identity,
        accessKeyId: 'ASIACONSOLE000000002',
      }),
      eventSource: 's3.amazonaws.com',
      eventName: 'ListBuckets',
      time: at(-8),
      account: ACCOUNT,
    });
    const tooEarly = apiCall({
      identity: assumedRole({
        account: ACCOUNT,
        role: 'Developer',
        session: identity,
        accessKeyId: 'ASIACONSOLE000000003',
      }),
      eventSource: 's3.amazonaws.com',
      eventName: 'ListBuckets',
      time: at(-30),
      account: ACCOUNT,
    });
    const ahead = janeCall({ key: 'ASIAJANEFERRY0000001', name: identity, minutes: 90 });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(5) }),
      logFile([early, tooEarly, ahead]),
    );
    const res = await ct.sync();
    expect(res.sources[0]).toMatchObject({ stored: 3, aheadOfClock: 1 });
    const byEvent = new Map(observed.flat().map((r) => [r.eventId, r.attribution.method]));
    expect(byEvent.get(early.eventID as string)).toBe('session-name');
    expect(byEvent.get(tooEarly.eventID as string)).toBe('none');
    expect(byEvent.get(ahead.eventID as string)).toBe('access-key');
  });

  it('keeps the configured subset of each record and prunes records older than the retention', async () => {
    const ct = cloudtrail({ keepFields: ['eventID', 'eventName', 'errorCode'], retentionMs: 86_400_000 });
    await ct.addSource(ctx, { bucket });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(5) }),
      logFile([
        janeCall({ key: 'K1', name: identity, minutes: 1 }),
        janeCall({ key: 'K1', name: identity, minutes: 2 }),
      ]),
    );
    await ct.sync();
    const raw = await store.db.selectFrom('cloudtrail_records').select('raw').execute();
    expect(raw.map((r) => Object.keys(JSON.parse(r.raw)).sort())).toEqual([
      ['eventID', 'eventName'],
      ['eventID', 'eventName'],
    ]);
    // the detections still see the whole record
    expect(observed.flat().map((r) => typeof r.raw.userIdentity)).toEqual(['object', 'object']);
    clock.set(new Date(T0.getTime() + 2 * 86_400_000));
    expect((await ct.sync()).pruned).toBe(2);
  });

  it('stores every value as read, also text with control characters, the null marker or nothing', async () => {
    const ct = cloudtrail();
    const result = { records: 0, stored: 0, duplicates: 0, rejected: 0, aheadOfClock: 0 };
    const call = (minutes: number, userAgent: string, errorMessage?: string) => ({
      ...janeCall({ key: 'ASIAJANEFERRY0000001', name: identity, minutes }),
      userAgent,
      ...(errorMessage ? { errorCode: 'AccessDenied', errorMessage } : {}),
    });
    const records = [
      call(1, 'aws-cli/2 \x1e split', 'no\x1dte'),
      call(2, '\x1d'),
      call(3, 'tab\there, bell\x07, é and 💡', 'line\nbreak'),
      call(4, 'plain'),
    ];
    const from = { sourceId: 'direct', objectKey: 'file-1', fileAccount: ACCOUNT };
    await ct.ingest(records, from, result);
    // a lone record whose object key (the same for the whole batch) is empty
    await ct.ingest([call(5, 'alone')], { ...from, objectKey: '' }, result);
    expect(result).toMatchObject({ records: 5, stored: 5, duplicates: 0 });
    const rows = await store.db
      .selectFrom('cloudtrail_records')
      .select(['user_agent', 'error_message', 'error_code', 'object_key', 'issued_by_ferry', 'method', 'raw'])
      .orderBy('event_time')
      .execute();
    expect(rows.map((r) => [r.user_agent, r.error_message, r.error_code, r.object_key])).toEqual([
      ['aws-cli/2 \x1e split', 'no\x1dte', 'AccessDenied', 'file-1'],
      ['\x1d', null, null, 'file-1'],
      ['tab\there, bell\x07, é and 💡', 'line\nbreak', 'AccessDenied', 'file-1'],
      ['plain', null, null, 'file-1'],
      ['alone', null, null, ''],
    ]);
    expect(rows.map((r) => [Number(r.issued_by_ferry), r.method])).toEqual(rows.map(() => [1, 'access-key']));
    expect(rows.map((r) => (JSON.parse(r.raw) as { userAgent: string }).userAgent)).toEqual([
      'aws-cli/2 \x1e split',
      '\x1d',
      'tab\there, bell\x07, é and 💡',
      'plain',
      'alone',
    ]);
    // the same records again are duplicates, whichever way they were stored
    observed.length = 0;
    await ct.ingest(records, from, result);
    expect(result).toMatchObject({ records: 9, stored: 5, duplicates: 4 });
    expect(observed).toEqual([]);
    // a batch of stored and new records, both ways (column texts and jsonb): observers get the new ones
    await ct.ingest(
      [records[0]!, call(6, 'new'), records[3]!, call(7, 'new \x1e too'), call(8, 'new again')],
      from,
      result,
    );
    expect(result).toMatchObject({ records: 14, stored: 8, duplicates: 6 });
    expect(observed.flat().map((r) => r.userAgent)).toEqual(['new', 'new \x1e too', 'new again']);
  });

  it('stops a source whose bucket cannot be read, keeps its position, and still syncs the others', async () => {
    const ct = cloudtrail();
    await ct.addSource(ctx, { bucket: `missing-${bucket}` });
    await ct.addSource(ctx, { bucket });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(5) }),
      logFile([janeCall({ key: 'K1', name: identity, minutes: 1 })]),
    );
    const res = await ct.sync();
    expect(res.sources[0]?.error).toMatch(/bucket/i);
    expect(res.sources[1]).toMatchObject({ stored: 1, error: null });
    const [missing] = await ct.sources();
    expect(missing?.lastError).toMatch(/bucket/i);
    const failed = await listAudit(store.db, { type: 'cloudtrail.synced' });
    expect(failed.map((e) => e.outcome).sort()).toEqual(['failure', 'success']);
  });

  it('refuses a bucket name S3 would not accept and the same place twice', async () => {
    const ct = cloudtrail();
    await expect(ct.addSource(ctx, { bucket: 'Not_A_Bucket' })).rejects.toThrow(/not an S3 bucket name/);
    await expect(ct.addSource(ctx, { bucket, prefix: 'x\u0007' })).rejects.toThrow(/prefix/);
    await ct.addSource(ctx, { bucket, prefix: 'trail' });
    await expect(ct.addSource(ctx, { bucket, prefix: 'trail/' })).rejects.toThrow(/already/);
  });

  it('lets only one instance sync a source at a time', async () => {
    // A holds the source (its observer waits) while B tries.
    const a = stuckInstance(undefined);
    const b = cloudtrail();
    await a.ct.addSource(ctx, { bucket });
    await putLogFile(
      s3,
      bucket,
      logFileKey({ account: ACCOUNT, time: at(5) }),
      logFile([janeCall({ key: 'K1', name: identity, minutes: 1 })]),
    );
    const first = a.ct.sync();
    await a.inside;
    const second = await b.sync();
    a.release();
    expect(second.sources[0]).toMatchObject({ busy: true, stored: 0 });
    expect((await first).stored).toBe(1);
    expect(observed.flat()).toHaveLength(1);
    // Released at the end: B syncs it next time (nothing new).
    expect((await b.sync()).sources[0]?.busy).toBeUndefined();
  });

  /**
   * A CloudTrail of instance `instanceId` (none: the CLI) that stops in its observer at the first stored
   * batch until `release` (as good as killed with -9 once its worker stops beating), and whose S3 fails
   * from `breakS3` on (it cannot read on after it wakes up).
   */
  function stuckInstance(instanceId: string | undefined, options: Partial<CloudTrailOptions> = {}) {
    const held = gate();
    const inside = gate();
    const real = cloudTrailS3({ region: aws.region, endpoint: aws.endpoint });
    let broken = false;
    const ct = new CloudTrail(
      {
        store,
        clock,
        s3: (source) => {
          const client = real(source);
          return {
            send: (command: never) =>
              broken ? Promise.reject(new Error('S3 unreachable')) : client.send(command),
          } as unknown as S3Client;
        },
        instanceId,
        activityObservers: [
          async (batch) => {
            observed.push([...batch]);
            inside.open();
            await held.opened;
          },
        ],
      },
      { ...OPTIONS, ...options },
    );
    const breakS3 = () => {
      broken = true;
    };
    return { ct, inside: inside.opened, release: held.open, breakS3 };
  }

  const otherInstance = (instanceId: string, options: Partial<CloudTrailOptions> = {}) =>
    new CloudTrail(
      {
        store,
        clock,
        s3: cloudTrailS3({ region: aws.region, endpoint: aws.endpoint }),
        instanceId,
        activityObservers: [async (batch) => void observed.push([...batch])],
      },
      { ...OPTIONS, ...options },
    );

  /** Two log files of one record each (K1, K2), in the order they are read. */
  async function twoFiles(): Promise<[string, string]> {
    const first = logFileKey({ account: ACCOUNT, time: at(5) });
    const second = logFileKey({ account: ACCOUNT, time: at(6) });
    await putLogFile(s3, bucket, first, logFile([janeCall({ key: 'K1', name: identity, minutes: 1 })]));
    await putLogFile(s3, bucket, second, logFile([janeCall({ key: 'K2', name: identity, minutes: 2 })]));
    return [first, second];
  }

  const positions = async () => (await cloudtrail().sources())[0]?.positions.map((p) => p.afterKey);
  const keysObserved = () =>
    observed
      .flat()
      .map((r) => r.accessKeyId)
      .sort();

  it('takes over a source from an instance that stopped heartbeating within seconds, never from a live one', async () => {
    // The lease term (60 s) never runs out here: only the heartbeat decides.
    const a = stuckInstance('inst-a');
    const b = otherInstance('inst-b');
    await a.ct.addSource(ctx, { bucket });
    const [, second] = await twoFiles();
    await heartbeat(store, 'inst-a');
    await heartbeat(store, 'inst-b');
    const running = a.ct.sync();
    await a.inside;

    // A live holder keeps the source while it beats (its last beat under 5 s ago, database time).
    expect((await b.sync()).sources[0]).toMatchObject({ busy: true, stored: 0 });
    await ageHeartbeat(store, 'inst-a', 4_000);
    expect((await b.sync()).sources[0]).toMatchObject({ busy: true, stored: 0 });

    // A stops beating: 5 s after its last beat B takes the source and reads on from the position
    // saved (the first file again: its record is there already, stored once).
    await ageHeartbeat(store, 'inst-a', 6_000);
    const taken = (await b.sync()).sources[0];
    expect(taken).toMatchObject({ files: 2, records: 2, stored: 1, duplicates: 1, error: null });
    expect(taken?.busy).toBeUndefined();
    expect(await positions()).toEqual([second]);

    // A wakes up before it notices (its next renewal is 20 s away), saves the first file's position
    // and fails on the second file: the position stays where B left it, nothing is stored twice.
    a.breakS3();
    a.release();
    expect((await running).sources[0]).toMatchObject({ files: 2, stored: 1, error: 'S3 unreachable' });
    expect(await positions()).toEqual([second]);
    expect(keysObserved()).toEqual(['K1', 'K2']);
    expect(await store.db.selectFrom('cloudtrail_records').select('event_id').execute()).toHaveLength(2);
  });

  it('stops a holder that lost its source at its next step, without writing its position', async () => {
    // A short lease (renewed every 200 ms) so A finds out it lost the source while it is stuck.
    const a = stuckInstance('inst-a', { leaseMs: 600 });
    const b = otherInstance('inst-b', { leaseMs: 600 });
    await a.ct.addSource(ctx, { bucket });
    const [, second] = await twoFiles();
    await heartbeat(store, 'inst-a');
    const running = a.ct.sync();
    await a.inside;
    await ageHeartbeat(store, 'inst-a', 6_000);
    await heartbeat(store, 'inst-b');
    expect((await b.sync()).sources[0]).toMatchObject({ files: 2, stored: 1, duplicates: 1, error: null });
    expect(await positions()).toEqual([second]);
    const lastSync = (await cloudtrail().sources())[0]?.lastSyncAt;

    await new Promise((resolve) => setTimeout(resolve, 500));
    clock.advance(1_000);
    a.release();
    const stopped = (await running).sources[0];
    // A read no further than the file it was stuck in and wrote neither a position nor its sync state.
    expect(stopped).toMatchObject({ files: 1, stored: 1 });
    expect(stopped?.error).toMatch(/lease cloudtrail-source:.* lost/);
    expect(await positions()).toEqual([second]);
    expect((await cloudtrail().sources())[0]?.lastSyncAt).toBe(lastSync);
    expect(keysObserved()).toEqual(['K1', 'K2']);
  });
});
