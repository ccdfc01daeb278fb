import { randomBytes } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configSchema } from '../src/app/config.js';
import { startFerry } from '../src/app/start.js';
import type { BenchEnv } from './lib/env.js';
import { latencies } from './lib/measure.js';
import { atMost, type Row, type Scenario } from './lib/scenario.js';

const BODY = Buffer.alloc(1024, 'x');

function get(agent: Agent, port: number, host: string, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: '127.0.0.1', port, path: '/', agent, headers: { host, ...headers } },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
        res.resume();
        res.once('end', () => resolve());
      },
    );
    req.once('error', reject);
    req.end();
  });
}

/**
 * What the identity-aware proxy adds to a request: a 1 KiB GET to a real node:http upstream through
 * the proxy (bearer token looked up, principal built, decide() reading the app's assignments, identity
 * JWT signed, headers rewritten, body streamed) against the same GET straight to the upstream, both
 * over keep-alive connections, one at a time, in the same run.
 */
export const proxyLatency: Scenario = {
  name: 'proxy',
  title: 'identity-aware proxy: request latency p50/p99 through the proxy vs straight to the upstream',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    const upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BODY.length) });
      res.end(BODY);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    try {
      for (const engine of env.engines) {
        const config = configSchema.parse({
          listen: '127.0.0.1:0',
          database: { url: await env.freshDatabase(engine, `proxy-${engine}`) },
          keys: { masterKey: randomBytes(32).toString('base64') },
          log: { level: 'silent' },
          proxy: { listen: '127.0.0.1:0', auditSampleRate: 100 },
        });
        const ferry = await startFerry({ config, logger: false, workerIntervalMs: 60_000 });
        try {
          config.publicUrl = ferry.url;
          const s = ferry.services;
          const ctx = { actor: { type: 'operator' as const, name: 'bench' } };
          const proxyPort = Number(new URL(ferry.proxyUrl!).port);
          const host = `127.0.0.1:${proxyPort}`;
          // A workload token: the same lookup as a `ferry login` token, without a sign-in.
          const created = await s.oidcClients.create(ctx, { name: 'bench', kind: 'workload' });
          await s.proxyApps.set(ctx, 'dash', {
            upstream: `http://127.0.0.1:${upstreamPort}`,
            url: `http://${host}`,
            groups: [],
          });
          const tokenRes = await fetch(`${ferry.url}/oidc/token`, {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              authorization: `Basic ${Buffer.from(`${created.client.clientId}:${created.secret}`).toString('base64')}`,
            },
            body: 'grant_type=client_credentials',
          });
          const { access_token: token } = (await tokenRes.json()) as { access_token: string };
          if (!token) throw new Error('bench: no workload token');
          const agent = new Agent({ keepAlive: true, maxSockets: 1 });
          const auth = { authorization: `Bearer ${token}` };
          const r = await latencies(
            {
              proxied: () => get(agent, proxyPort, host, auth),
              direct: () => get(agent, upstreamPort, `127.0.0.1:${upstreamPort}`, {}),
            },
            { runs: env.runs, perRun: 2000, warmup: 300 },
          );
          agent.destroy();
          for (const p of ['p50', 'p99'] as const) {
            rows.push({
              scenario: `proxied GET ${p} (${engine})`,
              unit: `µs, ${p}`,
              better: 'lower',
              ferry: r.proxied[p],
              reference: r.direct[p],
              referenceName: 'the same GET straight to the upstream',
              goal: atMost(p === 'p50' ? 2000 : 10000, 'µs'),
              note:
                p === 'p99'
                  ? 'includes the database lookups of token, directory and assignments per request'
                  : undefined,
            });
          }
        } finally {
          await ferry.stop();
        }
      }
    } finally {
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
    return rows;
  },
};
