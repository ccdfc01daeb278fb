import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { awsIdentityOf } from '../src/access/aws-identity.js';
import { CloudTrail, DEFAULT_KEEP_FIELDS } from '../src/activity/ingest.js';
import { recordIssued } from '../src/audit/issued.js';
import { cloudTrailS3 } from '../src/aws/cloudtrail-s3.js';
import { systemClock } from '../src/clock.js';
import type { Store } from '../src/store/open.js';
import { apiCall, assumedRole, iamUser, logFile } from '../test/support/cloudtrail.js';
import { processCpuSeconds } from './lib/cpu.js';
import type { BenchEnv } from './lib/env.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';
import { stat } from './lib/stats.js';

const ACCOUNT = '123456789012';
const FILES = 4;
const RECORDS_PER_FILE = 10_000;
const PEOPLE = 20;

/**
 * Log files as a busy organization trail writes them: 10,000 records each, most made with credentials
 * Ferry issued (20 people), some chained into other roles (source identity), some by IAM users.
 */
export function makeFiles(start: Date): Buffer[] {
  const files: Buffer[] = [];
  for (let f = 0; f < FILES; f++) {
    const records: unknown[] = [];
    for (let i = 0; i < RECORDS_PER_FILE; i++) {
      const person = i % PEOPLE;
      const time = new Date(start.getTime() + (f * RECORDS_PER_FILE + i) * 50);
      const kind = i % 20;
      const identity =
        kind === 19
          ? iamUser(ACCOUNT, 'legacy-deployer', 'AKIAIOSFODNN7EXAMPLE')
          : kind === 18
            ? assumedRole({
                account: '210987654321',
                role: 'Auditor',
                session: 'chained',
                accessKeyId: `ASIACHAINED${String(i).padStart(9, '0')}`,
                sourceIdentity: `person${person}@contoso.example`,
              })
            : assumedRole({
                account: ACCOUNT,
                role: 'Developer',
                session: `person${person}@contoso.example`,
                accessKeyId: `ASIAFERRY${String(person).padStart(11, '0')}`,
                sourceIdentity: `person${person}@contoso.example`,
              });
      records.push(
        apiCall({
          identity,
          eventSource: i % 3 === 0 ? 'ec2.amazonaws.com' : 's3.amazonaws.com',
          eventName: i % 3 === 0 ? 'DescribeInstances' : 'GetObject',
          time,
          account: ACCOUNT,
          requestParameters: {
            bucketName: 'reports',
            key: `2026/q4/report-${i}.csv`,
            Host: 'reports.s3.amazonaws.com',
          },
          ...(i % 50 === 0 ? { errorCode: 'AccessDenied', errorMessage: 'not authorized' } : {}),
        }),
      );
    }
    files.push(logFile(records));
  }
  return files;
}

export async function seedLedger(store: Store, start: Date): Promise<void> {
  for (let p = 0; p < PEOPLE; p++) {
    const owner = { kind: 'user' as const, id: `u-${p}`, userName: `person${p}@contoso.example` };
    const name = await awsIdentityOf(store.db, systemClock, owner);
    await store.db.transaction().execute((trx) =>
      recordIssued(
        trx,
        { now: () => start },
        {
          kind: 'sts-credentials',
          userId: owner.id,
          subject: owner.userName,
          target: `aws:${ACCOUNT}/Developer`,
          audience: null,
          externalId: `ASIAFERRY${String(p).padStart(11, '0')}`,
          details: { sessionName: name, sourceIdentity: name },
          expiresAt: new Date(start.getTime() + 12 * 3_600_000),
        },
      ),
    );
  }
}

/**
 * CloudTrail ingestion: log files read as a stream (gunzip + the incremental reader), each record
 * parsed, attributed (ledger, source identity, session name) and stored, deduplicated by eventID, per
 * second on one core, against `JSON.parse` of the same gunzipped files in the same run. It runs
 * `ingestFile`, the path a sync takes for each file (storing a batch overlaps reading the next).
 *
 * "One core" is counted, not assumed: Ferry's time for the files is the larger of the wall-clock time
 * and the CPU time it took, its own process's (every thread: zlib's, the garbage collector's) plus,
 * on PostgreSQL, the bench database's server backends' (another process, working on the other core
 * while Ferry's waits). Wall-clock time alone let Ferry use up to two cores against the reference's
 * one. The reference (one thread, no waits) is timed by the wall clock, as before.
 */
export const cloudtrailIngest: Scenario = {
  name: 'cloudtrail',
  title: 'CloudTrail records parsed, correlated and stored per second vs raw JSON.parse',
  async run(env: BenchEnv): Promise<Row[]> {
    const start = new Date(Date.now() - 3_600_000);
    const files = makeFiles(start);
    const total = FILES * RECORDS_PER_FILE;
    const rows: Row[] = [];
    for (const engine of env.engines) {
      const { store } = await env.freshStore(engine, 'cloudtrail');
      try {
        await seedLedger(store, start);
        const ct = new CloudTrail(
          {
            store,
            clock: systemClock,
            s3: cloudTrailS3({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }),
            activityObservers: [async () => {}],
          },
          {
            batchSize: 1000,
            retentionMs: 365 * 86_400_000,
            keepFields: DEFAULT_KEEP_FIELDS,
            clockSkewMs: 300_000,
            leaseMs: 60_000,
          },
        );
        const reference = (): number => {
          const t0 = performance.now();
          let n = 0;
          for (const f of files)
            n += (JSON.parse(gunzipSync(f).toString('utf8')) as { Records: unknown[] }).Records.length;
          if (n !== total) throw new Error('reference read the wrong number of records');
          return total / ((performance.now() - t0) / 1000);
        };
        // The bench database's server backends (the pool's connections, this query's too), asked before and after a run.
        const backends = async (): Promise<number[]> => {
          if (engine !== 'postgres') return [];
          const { rows } = await sql<{
            pid: number;
          }>`select pid from pg_stat_activity where datname = current_database()`.execute(store.db);
          return rows.map((r) => r.pid);
        };
        const serverCpu = (pids: number[]): Map<number, number> =>
          new Map(pids.map((pid) => [pid, processCpuSeconds(pid) ?? 0]));
        const processCpu = (): number => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1e6;
        };
        const ferry = async (): Promise<number> => {
          await store.db.deleteFrom('cloudtrail_records').execute();
          const result = { records: 0, stored: 0, duplicates: 0, rejected: 0, aheadOfClock: 0 };
          const server0 = serverCpu(await backends());
          const cpu0 = processCpu();
          const t0 = performance.now();
          for (const [i, f] of files.entries())
            await ct.ingestFile(
              Readable.from([f]),
              { sourceId: 'bench', objectKey: `file-${i}`, fileAccount: ACCOUNT },
              result,
            );
          const wall = (performance.now() - t0) / 1000;
          let cpu = processCpu() - cpu0;
          // A backend that appeared during the run counts all its CPU time (it was opened for it).
          for (const pid of new Set([...server0.keys(), ...(await backends())]))
            cpu += (processCpuSeconds(pid) ?? server0.get(pid) ?? 0) - (server0.get(pid) ?? 0);
          if (result.stored !== total) throw new Error(`stored ${result.stored} of ${total}`);
          return total / Math.max(wall, cpu);
        };
        reference();
        await ferry();
        const ours: number[] = [];
        const theirs: number[] = [];
        for (let r = 0; r < env.runs; r++) {
          theirs.push(reference());
          ours.push(await ferry());
        }
        rows.push({
          scenario: `cloudtrail ingest (${engine})`,
          unit: 'records/s, 1 core',
          better: 'higher',
          ferry: stat(ours),
          reference: stat(theirs),
          referenceName: 'gunzip + JSON.parse of the same files',
          goal: ratioAtLeast(0.3),
          note:
            engine === 'postgres'
              ? `${FILES} files × ${RECORDS_PER_FILE} records; streaming read, attribution and insert into postgres; per core: the larger of wall time and the CPU time of Ferry's process plus its PostgreSQL backends`
              : `${FILES} files × ${RECORDS_PER_FILE} records; streaming read, attribution and insert into sqlite; per core: the larger of wall time and Ferry's process's CPU time (all its threads)`,
        });
      } finally {
        await store.close();
      }
    }
    return rows;
  },
};
