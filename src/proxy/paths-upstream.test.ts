import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

/** Sends one raw request line (fetch would resolve dot segments itself); resolves with the status. */
function rawGet(port: number, host: string, target: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (b) => {
      answer += b.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (m && answer.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    socket.write(
      `GET ${target} HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${token}\r\nconnection: close\r\n\r\n`,
    );
  });
}

describe('proxy paths reach the upstream canonical, inside the app’s base', () => {
  let ferry: TestFerry;
  let upstream: Server;
  const received: string[] = [];
  let host = '';
  let token = '';

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      received.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    ferry = await startTestFerry('sqlite', { config: { proxy: { listen: '127.0.0.1:0' } } });
    const s = ferry.services;
    const ctx = { actor: { type: 'operator' as const, name: 'paths-test' } };
    host = new URL(ferry.proxyUrl!).host;
    await s.proxyApps.set(ctx, 'wiki', {
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/base`,
      url: `http://${host}`,
      groups: [],
      openToAll: true,
    });
    const created = await s.oidcClients.create(ctx, { name: 'paths-test', kind: 'workload' });
    const res = await fetch(`${ferry.url}/oidc/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${created.client.clientId}:${created.secret}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    token = ((await res.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await ferry?.close();
    await new Promise((r) => upstream?.close(r));
  });

  const port = () => Number(new URL(ferry.proxyUrl!).port);

  it('resolves dot segments before forwarding', async () => {
    received.length = 0;
    expect(await rawGet(port(), host, '/docs/./a/../b?x=1', token)).toBe(200);
    expect(await rawGet(port(), host, '/docs/%2e%2e/c', token)).toBe(200);
    expect(received).toEqual(['/base/docs/b?x=1', '/base/c']);
  });

  it.each([
    '/../secret',
    '/docs/../../secret',
    '/%2e%2e/secret',
    '/docs%2f..%2f..%2fsecret',
    '/docs\\..\\..\\secret',
    '/%5c..%5csecret',
  ])('refuses %s with 400; the upstream receives nothing', async (target) => {
    received.length = 0;
    expect(await rawGet(port(), host, target, token)).toBe(400);
    expect(received).toEqual([]);
  });
});
