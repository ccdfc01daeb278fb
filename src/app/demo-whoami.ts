import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The demo's internal application behind the identity-aware proxy: a page showing who the proxy said
 * is asking (the X-Ferry-* headers and the identity JWT's claims). It trusts the headers only because
 * it listens on loopback where nothing but the proxy reaches it; a real app verifies the JWT.
 */
export async function startWhoami(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const jwt = String(req.headers['x-ferry-identity'] ?? '');
    let claims = '(none)';
    try {
      claims = JSON.stringify(
        JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()),
        null,
        2,
      );
    } catch {}
    const rows = Object.entries(req.headers)
      .filter(([k]) => k.startsWith('x-ferry-') && k !== 'x-ferry-identity')
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
      .join('');
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    });
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>whoami</title></head><body>` +
        `<h1>whoami — an internal app behind Ferry's proxy</h1><table>${rows}</table>` +
        `<h2>X-Ferry-Identity claims</h2><pre>${escapeHtml(claims)}</pre>` +
        `<p><a href="/.ferry/signout">Sign out of this app</a></p></body></html>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
