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
 * both roles the person used (every ledger row marked revoked), with the outbox worker woken by the commit
 * (its 1 s tick as fallback), against moto; idle, then again under issue 16's mixed load (SCIM creates,
 * client-credential grants, admin reads). Reference: one raw PutRolePolicy round trip to the same moto,
 * in the same run (under the same load for the mixed figure).
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
          const total = 2 * PER_RUN * (env.runs + 1); // idle, then under mixed load
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
          /** PER_RUN offboardings one after another per run (run 0 a warm-up): the per-run p50s and p99s. */
          const measure = async () => {
            const p50s: number[] = [];
            const p99s: number[] = [];
            for (let run = 0; run <= env.runs; run++) {
              const times: number[] = [];
              for (let i = 0; i < PER_RUN; i++) {
                const t0 = performance.now();
                await offboard(next++);
                times.push(performance.now() - t0);
              }
              if (run === 0) continue; // warm-up
              const sorted = times.sort((a, b) => a - b);
              p50s.push(sorted[Math.floor(sorted.length / 2)]!);
              p99s.push(sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!);
            }
            return { p50s, p99s };
          };
          let next = 0;
          const idle = await measure();
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
          const reference = () =>
            latencies(
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
          const raw = await reference();

          // Issue 16 point 5's mixed load, in the same process as the server (one core's worth of
          // load generator): SCIM creates (each with its bulk-lane outbox event), client-credential
          // grants and admin reads run without pause while the same offboardings are measured again.
          config.publicUrl = ferry.url;
          const scim = await s.scimConnections.create(ctx, { name: 'bench-load' });
          const { client, secret } = await s.oidcClients.create(ctx, {
            name: 'bench-load',
            kind: 'workload',
          });
          const basic = Buffer.from(
            `${encodeURIComponent(client.clientId)}:${encodeURIComponent(secret!)}`,
          ).toString('base64');
          let loading = true;
          const done = { creates: 0, grants: 0, reads: 0 };
          let created = 0;
          const loop = async (op: () => Promise<void>) => {
            while (loading) await op();
          };
          const scimCreate = async () => {
            const userName = `load-${engine}-${++created}@contoso.example`;
            const res = await fetch(`${ferry.url}/scim/v2/Users`, {
              method: 'POST',
              headers: { authorization: `Bearer ${scim.token}`, 'content-type': 'application/scim+json' },
              body: JSON.stringify({
                schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
                userName,
                name: { givenName: 'Load', familyName: `User ${created}` },
                emails: [{ value: userName, type: 'work', primary: true }],
                active: true,
              }),
            });
            if (res.status !== 201)
              throw new Error(`SCIM create answered ${res.status}: ${await res.text()}`);
            await res.arrayBuffer();
            done.creates++;
          };
          const grant = async () => {
            const res = await fetch(`${ferry.url}/oidc/token`, {
              method: 'POST',
              headers: {
                authorization: `Basic ${basic}`,
                'content-type': 'application/x-www-form-urlencoded',
              },
              body: 'grant_type=client_credentials',
            });
            if (res.status !== 200)
              throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
            await res.arrayBuffer();
            done.grants++;
          };
          const read = async () => {
            const res = await fetch(`${ferry.url}/api/v1/users?limit=50`, {
              headers: { authorization: `Bearer ${token}` },
            });
            if (res.status !== 200) throw new Error(`user list answered ${res.status}: ${await res.text()}`);
            await res.arrayBuffer();
            done.reads++;
          };
          const load = [scimCreate, scimCreate, grant, grant, read].map(loop);
          let mixed: Awaited<ReturnType<typeof measure>>;
          let rawLoaded: Awaited<ReturnType<typeof reference>>;
          const loadStart = performance.now();
          try {
            await new Promise((r) => setTimeout(r, 500));
            mixed = await measure();
            rawLoaded = await reference();
          } finally {
            loading = false;
            await Promise.all(load);
          }
          const loadSeconds = (performance.now() - loadStart) / 1000;
          const rate = (n: number) => (n / loadSeconds).toFixed(0);
          const toMs = (st: typeof raw.put.p99) => stat(st.samples.map((us) => us / 1000));
          const note = `worker woken by the commit (urgent lane; 1 s poll as fallback); ${ROLES.length} roles per person, policies growing to ${total} statements`;
          const loadNote = `under mixed load in the same process: ${rate(done.creates)} SCIM creates/s (2 in flight), ${rate(done.grants)} client-credential grants/s (2 in flight), ${rate(done.reads)} admin user lists/s (1 in flight); reference measured under the same load`;
          rows.push(
            {
              scenario: `offboarding → sessions revoked p50 (${engine})`,
              unit: 'ms, p50',
              better: 'lower',
              ferry: stat(idle.p50s),
              reference: toMs(raw.put.p50),
              referenceName: 'one PutRolePolicy round trip to moto, p50',
              goal: null,
              note,
            },
            {
              scenario: `offboarding → sessions revoked p99 (${engine})`,
              unit: 'ms, p99',
              better: 'lower',
              ferry: stat(idle.p99s),
              reference: toMs(raw.put.p99),
              referenceName: 'one PutRolePolicy round trip to moto, p99',
              goal: atMost(200, 'ms'),
              note,
            },
            {
              scenario: `offboarding → sessions revoked p99, mixed load (${engine})`,
              unit: 'ms, p99',
              better: 'lower',
              ferry: stat(mixed.p99s),
              reference: toMs(rawLoaded.put.p99),
              referenceName: 'one PutRolePolicy round trip to moto under the same load, p99',
              goal: atMost(2000, 'ms'),
              note: loadNote,
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
