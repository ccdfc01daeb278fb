import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

/**
 * A client that trickles one byte per second: it would need `bytes` seconds to finish. Resolves
 * with how many bytes it got out before the server ended the connection (and what it answered).
 */
function trickle(port: number, head: string, bytes: number): Promise<{ sent: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let sent = 0;
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearInterval(timer);
      resolve({ sent, answer });
    };
    socket.on('data', (b) => {
      answer += b.toString('latin1');
    });
    socket.on('close', done);
    socket.on('error', () => {}); // a reset is one way of being cut off
    socket.once('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent >= bytes) {
          clearInterval(timer);
          socket.destroy();
          reject(new Error('the server let a client trickle its whole request'));
          return;
        }
        socket.write('a');
        sent += 1;
      }, 1000);
    });
  });
}

describe('listener timeouts', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry('sqlite', {
      config: {
        http: { headersTimeout: '2s', bodyTimeout: '3s', idleTimeout: '2s' },
        proxy: { listen: '127.0.0.1:0', headersTimeout: '2s', bodyTimeout: '3s', idleTimeout: '2s' },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const ports = () => ({
    main: Number(new URL(ferry.url).port),
    proxy: Number(new URL(ferry.proxyUrl!).port),
  });

  it.each(['main', 'proxy'] as const)(
    'cuts off a client sending its body one byte per second (%s listener)',
    async (which) => {
      const head =
        'POST /signin HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 60\r\n\r\n';
      const { sent, answer } = await trickle(ports()[which], head, 60);
      // bodyTimeout is 3 s: cut off long before the 60 s the body would take (the check runs every second).
      expect(sent).toBeLessThan(10);
      // The main listener is still waiting for the body and says so; the proxy may have refused an
      // unknown host already, and is cut off all the same.
      if (which === 'main') expect(answer).toMatch(/^HTTP\/1\.1 408/);
    },
  );

  it.each(['main', 'proxy'] as const)(
    'cuts off a client sending its headers one byte per second (%s listener)',
    async (which) => {
      const { sent } = await trickle(ports()[which], 'GET /healthz HTTP/1.1\r\nx-slow: ', 60);
      expect(sent).toBeLessThan(10);
    },
  );

  it('closes a kept-alive connection left idle', async () => {
    const { answer } = await new Promise<{ answer: string }>((resolve) => {
      const socket = connect(ports().main, '127.0.0.1');
      let answer = '';
      socket.on('data', (b) => {
        answer += b.toString('latin1');
      });
      socket.on('close', () => resolve({ answer }));
      socket.once('connect', () => socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'));
      // Nothing more is sent: the server must close it (idleTimeout 2 s), not keep it for ever.
      setTimeout(() => socket.destroy(new Error('still open after 20 s')), 20_000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });

  it('refuses a headers timeout longer than the body timeout', async () => {
    const { configSchema } = await import('./config.js');
    const parsed = configSchema.safeParse({ http: { headersTimeout: '60s', bodyTimeout: '30s' } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['http', 'headersTimeout']);
  });
});
