import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** What the upstream saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A real internal application for the proxy to front: echoes what it received (GET /echo), counts
 * and hashes an upload as it streams in (POST /upload), streams a large download (GET /download),
 * and echoes websocket messages (/ws). `firstChunk` and `release` let a test prove streaming: the
 * upload's first bytes arrive before the client sent the rest; the download's first bytes reach the
 * client before the upstream sends the rest.
 */
export interface Upstream {
  url: string;
  seen: SeenRequest[];
  /** resolves when an upload's first chunk has arrived here */
  uploadStarted: Promise<void>;
  /** lets a download continue past its first chunk */
  releaseDownload(): void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  let uploadStartedResolve!: () => void;
  const uploadStarted = new Promise<void>((r) => {
    uploadStartedResolve = r;
  });
  let releaseDownload!: () => void;
  const downloadReleased = new Promise<void>((r) => {
    releaseDownload = r;
  });
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/upload' && req.method === 'POST') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        if (bytes === 0) uploadStartedResolve();
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
      });
      return;
    }
    if (url.pathname === '/download') {
      const size = Number(url.searchParams.get('bytes') ?? 1024);
      const chunk = Buffer.alloc(64 * 1024, 7);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      res.write(chunk.subarray(0, Math.min(chunk.length, size)));
      void downloadReleased.then(async () => {
        let sent = Math.min(chunk.length, size);
        while (sent < size) {
          const n = Math.min(chunk.length, size - sent);
          if (!res.write(chunk.subarray(0, n))) await new Promise((r) => res.once('drain', r));
          sent += n;
        }
        res.end();
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'app_pref=dark; Path=/' });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket, req) => {
    seen.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers });
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    uploadStarted,
    releaseDownload: () => releaseDownload(),
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
