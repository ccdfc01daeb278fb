import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/access/pim/notifications.js';
import { logFile, logFileKey, putLogFile } from '../support/cloudtrail.js';
import { cloudTrailRecord, identities } from '../support/cloudtrail-records.js';
import { ENGINES } from '../support/db.js';
import { startTestFerry, type TestFerry } from '../support/ferry.js';
import { type LocalAws, startLocalAws } from '../support/local-aws.js';
import { runFerry } from '../support/process.js';

const ACCOUNT = '123456789012';
const BUCKET = 'contoso-trail-alerts';
const HMAC_KEY = 'e2e-alerts-hmac-key-0123456789abcdef';

/**
 * The root account is used; CloudTrail delivers the record to S3; `ferry cloudtrail sync` stores it;
 * the detections raise an alert and the outbox delivers it, signed, to the SOC's webhook.
 */
describe.each(ENGINES)(
  'a root call in CloudTrail reaches the webhook as a signed alert (%s, moto)',
  (engine) => {
    let aws: LocalAws;
    let ferry: TestFerry;
    let home: string;
    let admin: Record<string, string>;
    let server: Server;
    let hookUrl: string;
    const got: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

    const ferryCli = (args: string[], input?: string) =>
      runFerry(['--server', ferry.url, ...args], { cwd: home, env: admin, input, timeoutMs: 60_000 });

    beforeAll(async () => {
      home = mkdtempSync(join(tmpdir(), 'ferry-e2e-alerts-'));
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => {
          body += c;
        });
        req.on('end', () => {
          got.push({ headers: req.headers, body });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/ferry-alerts`;
      aws = await startLocalAws();
      ferry = await startTestFerry(engine, {
        config: {
          aws: { endpoint: aws.endpoint, region: aws.region },
          cloudtrail: { syncInterval: 0 },
          // the SOC's webhook is a listener on loopback here
          alerts: { allowPrivateTargets: true },
        },
      });
      admin = { HOME: home, FERRY_CONFIG_DIR: join(home, 'ferry'), FERRY_TOKEN: ferry.adminToken };
    }, 180_000);

    afterAll(async () => {
      await ferry?.close();
      await aws?.stop();
      await new Promise((r) => server?.close(r));
      if (home) rmSync(home, { recursive: true, force: true });
    });

    it('ferry cloudtrail sync → root-activity alert → signed webhook; ferry alerts list shows it delivered', async () => {
      const added = await ferryCli(
        ['alerts', 'sink', 'add', 'soc', '--type', 'webhook', '--url', hookUrl],
        `${HMAC_KEY}\n`,
      );
      expect(added.code, added.stderr).toBe(0);
      const test = await ferryCli(['alerts', 'test', 'soc']);
      expect(test.code, test.stderr).toBe(0);
      expect(got).toHaveLength(1);
      expect(JSON.parse(got[0]!.body).alert.title).toContain('Test alert from Ferry to soc');

      const s3 = new S3Client({
        endpoint: aws.endpoint,
        region: aws.region,
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const now = new Date();
      const rootCall = cloudTrailRecord({
        eventName: 'CreateUser',
        eventSource: 'iam.amazonaws.com',
        userIdentity: identities.root(ACCOUNT),
        requestParameters: { userName: 'backdoor' },
        responseElements: { user: { userName: 'backdoor', arn: `arn:aws:iam::${ACCOUNT}:user/backdoor` } },
        eventTime: new Date(now.getTime() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      });
      await putLogFile(s3, BUCKET, logFileKey({ account: ACCOUNT, time: now }), logFile([rootCall]));
      s3.destroy();

      expect((await ferryCli(['cloudtrail', 'add-source', '--bucket', BUCKET])).code).toBe(0);
      const sync = await ferryCli(['cloudtrail', 'sync', '--json']);
      expect(sync.code, sync.stderr).toBe(0);
      expect(JSON.parse(sync.stdout)).toMatchObject({ stored: 1 });
      await ferry.workers.drainOnce();

      const alerts = got.slice(1).map((g) => ({ ...g, json: JSON.parse(g.body) }));
      expect(alerts.map((a) => a.json.alert.rule).sort()).toEqual([
        'iam-credentials-created',
        'root-activity',
      ]);
      const root = alerts.find((a) => a.json.alert.rule === 'root-activity')!;
      expect(root.json.alert).toMatchObject({
        severity: 'critical',
        account: ACCOUNT,
        title: `root user called CreateUser in account ${ACCOUNT}`,
        evidence: rootCall.eventID,
      });
      const nowSeconds = Math.floor(Date.now() / 1000);
      expect(
        verifySignature(HMAC_KEY, root.headers['ferry-signature'] as string, root.body, nowSeconds),
      ).toBe(true);
      expect(
        verifySignature(HMAC_KEY, root.headers['ferry-signature'] as string, `${root.body} `, nowSeconds),
      ).toBe(false);

      const list = await ferryCli(['alerts', 'list', '--json']);
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as Array<{
        rule: string;
        deliveries: Array<{ sink: string; state: string }>;
      }>;
      expect(listed.find((a) => a.rule === 'root-activity')!.deliveries).toEqual([
        expect.objectContaining({ sink: 'soc', state: 'delivered' }),
      ]);
      const table = await ferryCli(['alerts', 'list']);
      expect(table.stdout).toContain('root user called CreateUser');
      expect(table.stdout).toContain('soc:delivered');
      // A second sync of the same file raises nothing new (ingestion deduplicates by event id).
      const again = await ferryCli(['cloudtrail', 'sync', '--json']);
      expect(again.code).toBe(0);
      await ferry.workers.drainOnce();
      expect(got).toHaveLength(3);
    }, 180_000);
  },
);
