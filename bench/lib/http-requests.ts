import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/**
 * A load generator for the bench: `count` requests to one origin with `concurrency` of them in flight,
 * over as many keep-alive HTTP/1.1 connections (undici's Pool, one request per connection at a time:
 * no pipelining), every answer read whole and checked. Cheaper per request than `fetch` or `node:http`
 * (ADR 0065), so on the bench's 2 vCPUs the client's core is not what sets a server's figure.
 */
export interface RequestRun {
  /** e.g. `http://127.0.0.1:3000` */
  origin: string;
  count: number;
  concurrency: number;
  /** the i-th request (0 ≤ i < count) */
  request: (i: number) => {
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    path: string;
    body?: string;
  };
  headers: Record<string, string>;
  /**
   * Whether the i-th answer is what was asked for; a string says why not and stops the run. Called
   * with every answer's status and whole body.
   */
  check: (i: number, status: number, body: string) => true | string;
}

export interface RequestRunResult {
  /** answers that passed `check` */
  ok: number;
  ms: number;
}

export async function runRequests(run: RequestRun): Promise<RequestRunResult> {
  const pool = new Pool(run.origin, { connections: run.concurrency, pipelining: 1 });
  let next = 0;
  let ok = 0;
  const one = async (i: number) => {
    const { method, path, body } = run.request(i);
    const headers =
      body === undefined
        ? run.headers
        : { ...run.headers, 'content-length': String(Buffer.byteLength(body)) };
    // dispatch with a handler, not pool.request: no stream per answer, the body's chunks kept as they come
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      pool.dispatch(
        { method, path, headers, body },
        {
          // the handler API Pool.dispatch takes as is in undici 7 (the onResponse* one needs a wrapper)
          onConnect: () => {},
          onHeaders: (statusCode) => {
            status = statusCode;
            return true;
          },
          onData: (chunk) => {
            chunks.push(chunk);
            return true;
          },
          onComplete: () => resolve({ status, text: Buffer.concat(chunks).toString() }),
          onError: (err) => reject(new Error(`${method} ${path}: ${err.message}`)),
        },
      );
    });
    const verdict = run.check(i, status, text);
    if (verdict !== true) throw new Error(`${method} ${path} answered ${status}: ${verdict}: ${text}`);
    ok++;
  };
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: Math.min(run.concurrency, run.count) }, async () => {
        while (next < run.count) await one(next++);
      }),
    );
  } finally {
    await pool.destroy();
  }
  return { ok, ms: performance.now() - start };
}
