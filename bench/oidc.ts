import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Provider from 'oidc-provider';
import { configSchema } from '../src/app/config.js';
import { startFerry } from '../src/app/start.js';
import { ensureDemoAwsAccount } from '../src/aws/demo-account.js';
import { startMotoServer } from '../src/aws/moto-server.js';
import { setupSamlAccount } from '../src/aws/saml-setup.js';
import type { BenchEnv } from './lib/env.js';
import { throughputs } from './lib/measure.js';
import { type Row, ratioAtLeast, ratioAtMost, type Scenario } from './lib/scenario.js';
import { FERRY_BIN } from './lib/server.js';
import { published, stat } from './lib/stats.js';

/** Keycloak's sizing guide: "120 client credential grants per second per vCPU". */
const KEYCLOAK_CLIENT_CREDENTIALS_PER_VCPU = 120;
const CONCURRENCY = 4;

/** POST a client-credentials grant over a keep-alive agent; resolves when the 200 body is read. */
function grant(agent: Agent, url: URL, basic: string): Promise<void> {
  const body = 'grant_type=client_credentials';
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else
            reject(
              new Error(`token endpoint answered ${res.statusCode}: ${Buffer.concat(chunks).toString()}`),
            );
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const basicOf = (id: string, secret: string) =>
  Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

/** Bare oidc-provider, its in-memory adapter, one static client: the library without Ferry. */
async function bareProvider(): Promise<{ url: URL; basic: string; close: () => Promise<void> }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const issuer = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const secret = randomBytes(32).toString('base64url');
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'bench',
        client_secret: secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
    ttl: { ClientCredentials: 600 },
  });
  server.on('request', provider.callback());
  return {
    url: new URL(`${issuer}/token`),
    basic: basicOf('bench', secret),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * Client-credential grants per second, one process (server and load generator share one core),
 * four requests in flight over keep-alive: Ferry (oidc-provider on Ferry's database, client lookup,
 * hashed secret, the token stored, the issuance audited) against bare oidc-provider with its in-memory
 * adapter in the same run, and against Keycloak's published sizing.
 */
export const clientCredentials: Scenario = {
  name: 'oidc',
  title: 'client-credential grants per core vs bare oidc-provider (and Keycloak’s sizing)',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    const bare = await bareProvider();
    try {
      for (const engine of env.engines) {
        const url = await env.freshDatabase(engine, `oidc-${engine}`);
        const config = configSchema.parse({
          listen: '127.0.0.1:0',
          database: { url },
          keys: { masterKey: randomBytes(32).toString('base64') },
          log: { level: 'silent' },
        });
        const ferry = await startFerry({ config, logger: false, workerIntervalMs: 60_000 });
        config.publicUrl = ferry.url;
        const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
        try {
          const { client, secret } = await ferry.services.oidcClients.create(
            { actor: { type: 'operator', name: 'bench' } },
            { name: 'bench-workload', kind: 'workload' },
          );
          const ferryBasic = basicOf(client.clientId, secret!);
          const ferryUrl = new URL(`${ferry.url}/oidc/token`);
          const r = await throughputs(
            {
              ferry: () => grant(agent, ferryUrl, ferryBasic),
              bare: () => grant(agent, bare.url, bare.basic),
            },
            { runs: env.runs, runMs: 1500, warmupMs: 500, concurrency: CONCURRENCY },
          );
          rows.push(
            {
              scenario: `client-credential grants (${engine})`,
              unit: 'grants/s per core',
              better: 'higher',
              ferry: r.ferry,
              reference: r.bare,
              referenceName: 'bare oidc-provider 9, in-memory adapter, same process and load',
              goal: ratioAtLeast(0.5),
              note: 'Ferry also looks the client up in the database, stores the token and appends a hash-chained audit event per grant',
            },
            {
              scenario: `client-credential grants vs Keycloak sizing (${engine})`,
              unit: 'grants/s per core',
              better: 'higher',
              ferry: r.ferry,
              reference: published(KEYCLOAK_CLIENT_CREDENTIALS_PER_VCPU),
              referencePublished: true,
              referenceName: 'Keycloak sizing guide: 120 client-credential grants/s per vCPU (published)',
              goal: ratioAtLeast(10),
            },
          );
        } finally {
          agent.destroy();
          await ferry.stop();
        }
      }
    } finally {
      await bare.close();
    }
    return rows;
  },
};

/**
 * `ferry creds` wall time as the AWS CLI sees it (one credential_process run): with credentials in
 * the cache, and with a server round trip (decide, SAML assertion, STS at moto, ledger and audit),
 * against starting Node.js itself (`node -e ''`), the floor any Node CLI pays.
 */
export const credsWallTime: Scenario = {
  name: 'creds',
  title: '`ferry creds` wall time, warm cache and server round trip, vs starting node',
  async run(env: BenchEnv): Promise<Row[]> {
    const aws = await startMotoServer();
    const url = await env.freshDatabase('sqlite', 'creds');
    const config = configSchema.parse({
      listen: '127.0.0.1:0',
      database: { url },
      keys: { masterKey: randomBytes(32).toString('base64') },
      signin: { requireMfa: false },
      aws: { endpoint: aws.endpoint, region: aws.region },
      log: { level: 'silent' },
    });
    const ferry = await startFerry({ config, logger: false, workerIntervalMs: 60_000 });
    config.publicUrl = ferry.url;
    try {
      const ctx = { actor: { type: 'operator' as const, name: 'bench' } };
      const s = ferry.services;
      await ensureDemoAwsAccount({ endpoint: aws.endpoint, region: aws.region });
      await s.accounts.upsert(ctx, { id: '123456789012', alias: 'Account1' });
      await s.accounts.upsertRole(ctx, '123456789012', { name: 'Developer', maxSessionDuration: 43200 });
      const { client, secret } = await s.oidcClients.create(ctx, { name: 'bench-ci', kind: 'workload' });
      await s.assignments.add(
        ctx,
        { type: 'workload', id: client.clientId, name: 'bench-ci' },
        '123456789012',
        'Developer',
      );
      await setupSamlAccount({
        endpoint: aws.endpoint,
        region: aws.region,
        accountId: '123456789012',
        partition: 'aws',
        providerName: 'Ferry',
        metadataXml: await (await fetch(`${ferry.url}/saml/metadata`)).text(),
        roles: [{ name: 'Developer' }],
      });
      const home = env.dir('creds-home');
      mkdirSync(join(home, 'ferry'), { recursive: true });
      const childEnv = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_'))),
        HOME: home,
        FERRY_CONFIG_DIR: join(home, 'ferry'),
        FERRY_CLIENT_ID: client.clientId,
        FERRY_CLIENT_SECRET: secret!,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      };
      const args = (cache: boolean) => [
        FERRY_BIN,
        '--server',
        ferry.url,
        'creds',
        '--account',
        'Account1',
        '--role',
        'Developer',
        '--format',
        'credential_process',
        ...(cache ? [] : ['--no-cache']),
      ];
      // execFileSync blocks this process, but the server must answer: run the cold case asynchronously.
      const run = async (argv: string[]) => {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) =>
          execFile(process.execPath, argv, { env: childEnv }, (err) => (err ? reject(err) : resolve())),
        );
        return performance.now() - t0;
      };
      await run(args(true)); // fills the cache
      const samples = { warm: [] as number[], cold: [] as number[], node: [] as number[] };
      for (let i = 0; i < 2; i++) {
        await run(args(true));
        await run(args(false));
        await run(['-e', '']);
      }
      for (let i = 0; i < Math.max(env.runs, 7); i++) {
        samples.warm.push(await run(args(true)));
        samples.cold.push(await run(args(false)));
        samples.node.push(await run(['-e', '']));
      }
      return [
        {
          scenario: 'ferry creds, cached credentials',
          unit: 'ms per run',
          better: 'lower',
          ferry: stat(samples.warm),
          reference: stat(samples.node),
          referenceName: "`node -e ''`: starting Node.js, the floor of any Node CLI",
          goal: ratioAtMost(3),
        },
        {
          scenario: 'ferry creds, server round trip',
          unit: 'ms per run',
          better: 'lower',
          ferry: stat(samples.cold),
          reference: stat(samples.node),
          referenceName: "`node -e ''`",
          goal: ratioAtMost(8),
          note: 'includes the workload token grant, decide(), a signed assertion, AssumeRoleWithSAML at moto, ledger and audit',
        },
      ];
    } finally {
      await ferry.stop();
      await aws.stop();
    }
  },
};
