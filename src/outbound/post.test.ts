import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { guardedPost, OutboundHttpStatus } from './post.js';

const loopback = { allowPrivate: true, allowNetworks: [] };

describe('guardedPost', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  const listen = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
    server = createServer(handler);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  };

  it('answers with the 2xx status and refuses a redirect', async () => {
    const ok = await listen((_req, res) => res.writeHead(204).end());
    expect(await guardedPost(ok, '{}', { targets: loopback, userAgent: 'test' })).toBe(204);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    const redirect = await listen((_req, res) =>
      res.writeHead(307, { location: 'http://example.com/' }).end(),
    );
    await expect(
      guardedPost(redirect, '{}', { targets: loopback, userAgent: 'test' }),
    ).rejects.toBeInstanceOf(OutboundHttpStatus);
  });

  it('gives up on a target that keeps the answer dripping in: the whole exchange has a deadline', async () => {
    const timers: NodeJS.Timeout[] = [];
    const url = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // a byte every 100 ms: the socket is never idle for the timeout, the answer never ends
      timers.push(setInterval(() => res.write('.'), 100));
    });
    const started = process.hrtime.bigint();
    try {
      await expect(
        guardedPost(url, '{}', { targets: loopback, userAgent: 'test', timeoutMs: 600 }),
      ).rejects.toThrow(/no answer within 0.6 s/);
    } finally {
      for (const t of timers) clearInterval(t);
    }
    const tookMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(tookMs).toBeLessThan(10_000);
  });
});
