import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { LocalAws } from './local-aws.js';

/** One request seen by the proxy: its query-protocol Action and parameters. */
export interface SeenAwsRequest {
  action: string;
  params: URLSearchParams;
}

export interface AwsQueryProxyHooks {
  /** Answer instead of the local AWS, e.g. to inject an error; undefined lets the request through. */
  intercept?(req: SeenAwsRequest): { status: number; body: string } | undefined;
  /** Rewrite a response body from the local AWS, e.g. to leave out an element some AWS implementation omits. */
  rewrite?(req: SeenAwsRequest, body: string): string;
}

export interface AwsQueryProxy extends Pick<LocalAws, 'endpoint' | 'region'> {
  /** Every request that reached the proxy, in order. */
  readonly seen: SeenAwsRequest[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of the local AWS for the query protocol (IAM, STS): it records each Action and can
 * answer or rewrite chosen ones, to reproduce behaviour of real AWS that moto does not have. Requests are passed
 * on unchanged, so SigV4 signatures stay whatever the client made them.
 */
export async function startAwsQueryProxy(
  target: Pick<LocalAws, 'endpoint' | 'region'>,
  hooks: AwsQueryProxyHooks = {},
): Promise<AwsQueryProxy> {
  const upstream = new URL(target.endpoint);
  const seen: SeenAwsRequest[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`aws query proxy: ${(err as Error).message}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const params = new URLSearchParams(body.toString('utf8'));
    const seenRequest: SeenAwsRequest = { action: params.get('Action') ?? '', params };
    seen.push(seenRequest);

    const answer = hooks.intercept?.(seenRequest);
    if (answer !== undefined) {
      res.writeHead(answer.status, { 'content-type': 'text/xml' });
      res.end(answer.body);
      return;
    }

    const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
      const forward = request(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        resolve,
      );
      forward.once('error', reject);
      forward.end(body);
    });
    const responseChunks: Buffer[] = [];
    for await (const chunk of upstreamRes) responseChunks.push(chunk as Buffer);
    let responseBody = Buffer.concat(responseChunks).toString('utf8');
    if (hooks.rewrite) responseBody = hooks.rewrite(seenRequest, responseBody);

    const headers = { ...upstreamRes.headers };
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    res.writeHead(upstreamRes.statusCode ?? 502, {
      ...headers,
      'content-length': String(Buffer.byteLength(responseBody)),
    });
    res.end(responseBody);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the proxy has no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: target.region,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An IAM error response in the query protocol's XML, as real AWS sends it. */
export function iamErrorXml(code: string, message: string): string {
  const escaped = message.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">' +
    `<Error><Type>Sender</Type><Code>${code}</Code><Message>${escaped}</Message></Error>` +
    '<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>'
  );
}
