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
  /**
   * A network partition: nothing is forwarded either way and new connections are accepted but get
   * no answer, so clients see silence rather than an error. restore() heals it and delivers what
   * was held back (as TCP would).
   */
  partition(): void;
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
  let partitioned = false;
  const held: Socket[] = [];

  const reset = (s: Socket) => {
    if (!s.destroyed) s.resetAndDestroy();
  };

  const server = createServer((client) => {
    if (refusing) {
      client.on('error', () => {});
      reset(client);
      return;
    }
    if (partitioned) {
      client.pause(); // read nothing until restore()
      client.on('error', () => {});
      held.push(client);
      return;
    }
    forward(client);
  });

  /** Bytes held back during a partition, per destination socket, delivered on restore(). */
  const pending = new Map<Socket, Buffer[]>();
  const relay = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (partitioned) pending.set(to, [...(pending.get(to) ?? []), chunk]);
      else to.write(chunk);
    });

  const forward = (client: Socket) => {
    const upstream = connect({ host: target.host, port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      pending.delete(client);
      pending.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    relay(client, upstream);
    relay(upstream, client);
  };

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
      for (const client of held.splice(0)) reset(client);
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        for (const s of pair) reset(s);
      }
    },
    partition() {
      partitioned = true;
    },
    restore() {
      refusing = false;
      partitioned = false;
      for (const [to, chunks] of pending) if (!to.destroyed) for (const c of chunks) to.write(c);
      pending.clear();
      for (const client of held.splice(0)) {
        if (client.destroyed) continue;
        forward(client);
        client.resume();
      }
    },
    close() {
      refusing = true;
      for (const client of held.splice(0)) client.destroy();
      for (const pair of [...pairs]) for (const s of pair) s.destroy();
      pairs.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
