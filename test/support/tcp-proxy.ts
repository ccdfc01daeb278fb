import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** the loopback port clients connect to */
  port: number;
  /** how many client connections are open right now */
  connections(): number;
  /**
   * The database "goes away": every open connection is reset (both sides) and new connections are
   * reset as soon as they arrive, until restore().
   */
  cut(): void;
  /** accept and forward connections again */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy (e.g. in front of PostgreSQL) whose connections can be cut and refused, to
 * simulate the database going away without touching the real server.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let refusing = false;

  const reset = (s: Socket) => {
    if (!s.destroyed) s.resetAndDestroy();
  };

  const server = createServer((client) => {
    if (refusing) {
      client.on('error', () => {});
      reset(client);
      return;
    }
    const upstream = connect({ host: target.host, port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    connections: () => pairs.size,
    cut() {
      refusing = true;
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        for (const s of pair) reset(s);
      }
    },
    restore() {
      refusing = false;
    },
    close() {
      refusing = true;
      for (const pair of [...pairs]) for (const s of pair) s.destroy();
      pairs.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
