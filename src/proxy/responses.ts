import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { problemType } from '../problem.js';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** An error from the proxy itself: a small page for browsers, RFC 7807 problem details otherwise. */
export function sendProblem(
  res: ServerResponse,
  html: boolean,
  p: { status: number; code: string; title: string; detail: string; requestId: string },
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-request-id', p.requestId);
  res.setHeader('x-content-type-options', 'nosniff');
  if (html) {
    res.writeHead(p.status, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP });
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(p.title)}</title></head>` +
        `<body><h1>${escapeHtml(p.title)}</h1><p>${escapeHtml(p.detail)}</p>` +
        `<p><small>Request id ${escapeHtml(p.requestId)}</small></p></body></html>`,
    );
    return;
  }
  res.writeHead(p.status, { 'content-type': 'application/problem+json' });
  res.end(
    JSON.stringify({
      type: problemType(p.code),
      title: p.title,
      status: p.status,
      detail: p.detail,
      instance: p.requestId,
    }),
  );
}

/** The same for a websocket handshake: a plain HTTP answer on the raw socket, then close it. */
export function refuseUpgrade(
  socket: Socket,
  status: number,
  title: string,
  detail: string,
  extra = '',
): void {
  const body = JSON.stringify({
    type: problemType(title.toLowerCase().replace(/\W+/g, '-')),
    title,
    status,
    detail,
  });
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}
