import { randomBytes } from 'node:crypto';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { configSchema } from '../src/app/config.js';
import { startFerry } from '../src/app/start.js';
import type { AuditContext } from '../src/audit/actor.js';
import { recordIssued } from '../src/audit/issued.js';
import { startMotoServer } from '../src/aws/moto-server.js';
import { systemClock } from '../src/clock.js';
import type { BenchEnv } from './lib/env.js';
import { latencies } from './lib/measure.js';
import { atMost, type Row, type Scenario } from './lib/scenario.js';
import { stat } from './lib/stats.js';

const ACCOUNT = '123456789012';
const ROLES = ['Developer', 'Administrator'];
const PER_RUN = 8;
const ctx: AuditContext = { actor: { type: 'operator', name: 'bench' } };

const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' },
  ],
});

/**
 * Offboarding's reach into AWS: from the admin API's "deactivate" request to the per-person deny put on
 * both roles the person used (every ledger row marked revoked), with the outbox worker on its production
 * 1 s tick, against moto. Reference: one raw PutRolePolicy round trip to the same moto, in the same run.
 * The people got their credentials through the ledger directly (issuing is measured by the saml scenario).
 */
export const sessionRevocation: Scenario = {
  name: 'revocation',
  title: 'deactivation request → every AWS revocation issued, vs a raw PutRolePolicy round trip',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    const aws = await startMotoServer();
    const iam = new IAMClient({
      endpoint: aws.endpoint,
      region: aws.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    try {
      for (const name of [...ROLES, 'BenchReference']) {
        await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
      }
      for (const engine of env.engines) {
        const url = await env.freshDatabase(engine, `revocation-${engine}`);
        const config = configSchema.parse({
          listen: '127.0.0.1:0',
          database: { url },
          keys: { masterKey: randomBytes(32).toString('base64') },
          log: { level: 'silent' },
          aws: { endpoint: aws.endpoint },
        });
        const ferry = await startFerry({ config, logger: false });
        try {
          const s = ferry.services;
          const { token } = await s.apiTokens.create(ctx, { name: 'bench' });
          await s.accounts.upsert(ctx, { id: ACCOUNT, alias: 'Account1' });
          for (const role of ROLES) await s.accounts.upsertRole(ctx, ACCOUNT, { name: role });
          const total = PER_RUN * (env.runs + 1);
          const people: Array<{ id: string; userName: string }> = [];
          for (let i = 0; i < total; i++) {
            const user = await s.users.create(ctx, { userName: `leaver-${engine}-${i}@contoso.example` });
            await s.store.db.transaction().execute(async (trx) => {
              for (const role of ROLES) {
                await recordIssued(trx, systemClock, {
                  kind: i % 2 === 0 ? 'saml-assertion' : 'sts-credentials',
                  userId: user.id,
                  subject: user.userName,
                  target: `aws:${ACCOUNT}/${role}`,
                  audience: null,
                  externalId: randomBytes(8).toString('hex'),
                  details: { sourceIdentity: user.userName, sessionDuration: 3600 },
                  // An assertion already redeemed (expired) or credentials good for an hour.
                  expiresAt: new Date(Date.now() + (i % 2 === 0 ? -1000 : 3600_000)),
                });
              }
            });
            people.push({ id: user.id, userName: user.userName });
          }

          const revokedAll = async (userId: string) => {
            const open = await s.store.db
              .selectFrom('issued_credentials')
              .select('id')
              .where('user_id', '=', userId)
              .where('revoked_at', 'is', null)
              .execute();
            return open.length === 0;
          };
          const offboard = async (i: number) => {
            const who = people[i]!;
            const res = await fetch(`${ferry.url}/api/v1/users/${who.id}`, {
              method: 'PATCH',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: JSON.stringify({ active: false }),
            });
            if (res.status !== 200) throw new Error(`deactivate answered ${res.status}: ${await res.text()}`);
            const deadline = Date.now() + 30_000;
            while (!(await revokedAll(who.id))) {
              if (Date.now() > deadline) throw new Error(`${who.userName}: not revoked within 30 s`);
              await new Promise((r) => setTimeout(r, 5));
            }
          };
          const samples: number[] = [];
          const p99s: number[] = [];
          let next = 0;
          for (let run = 0; run <= env.runs; run++) {
            const times: number[] = [];
            for (let i = 0; i < PER_RUN; i++) {
              const t0 = performance.now();
              await offboard(next++);
              times.push(performance.now() - t0);
            }
            if (run === 0) continue; // warm-up
            const sorted = times.sort((a, b) => a - b);
            samples.push(sorted[Math.floor(sorted.length / 2)]!);
            p99s.push(sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!);
          }
          const policy = JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Deny',
                Action: '*',
                Resource: '*',
                Condition: {
                  StringEquals: { 'aws:SourceIdentity': 'leaver@contoso.example' },
                  DateLessThan: { 'aws:TokenIssueTime': new Date().toISOString() },
                },
              },
            ],
          });
          const raw = await latencies(
            {
              put: () =>
                iam.send(
                  new PutRolePolicyCommand({
                    RoleName: 'BenchReference',
                    PolicyName: 'FerryRevokedSessions',
                    PolicyDocument: policy,
                  }),
                ),
            },
            { runs: env.runs, perRun: 50, warmup: 10 },
          );
          const toMs = (st: typeof raw.put.p99) => stat(st.samples.map((us) => us / 1000));
          const note = `worker woken by the commit (urgent lane; 1 s poll as fallback); ${ROLES.length} roles per person, policies growing to ${total} statements`;
          rows.push(
            {
              scenario: `offboarding → sessions revoked p50 (${engine})`,
              unit: 'ms, p50',
              better: 'lower',
              ferry: stat(samples),
              reference: toMs(raw.put.p50),
              referenceName: 'one PutRolePolicy round trip to moto, p50',
              goal: null,
              note,
            },
            {
              scenario: `offboarding → sessions revoked p99 (${engine})`,
              unit: 'ms, p99',
              better: 'lower',
              ferry: stat(p99s),
              reference: toMs(raw.put.p99),
              referenceName: 'one PutRolePolicy round trip to moto, p99',
              goal: atMost(2000, 'ms'),
              note,
            },
          );
        } finally {
          await ferry.stop();
        }
      }
    } finally {
      iam.destroy();
      await aws.stop();
    }
    return rows;
  },
};
