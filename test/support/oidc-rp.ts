import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

/**
 * A small OpenID relying party on its own origin (`http://localhost:PORT`, while Ferry is at
 * 127.0.0.1), built on openid-client: what a browser test signs in to and logs out of.
 *
 * - GET /login starts code + PKCE (state and verifier kept here, keyed by a cookie)
 * - GET /callback redeems the code and shows the ID token's claims in `<pre id="claims">`
 * - GET /logout starts RP-initiated logout with `post_logout_redirect_uri` = /bye
 * - GET /bye says `<p id="bye">`
 */
export interface RelyingParty {
  /** the RP's origin, e.g. http://localhost:40123 */
  origin: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
  /** the client registration to use: call once the client exists at Ferry */
  configure(issuer: string, clientId: string, secret: string): Promise<void>;
  close(): Promise<void>;
}

export async function startRelyingParty(host = 'localhost'): Promise<RelyingParty> {
  let config: oidc.Configuration | null = null;
  const pending = new Map<string, { state: string; verifier: string }>();
  const sessions = new Map<string, { idToken: string }>();
  const cookieOf = (req: IncomingMessage, name: string) =>
    (req.headers.cookie ?? '')
      .split(/;\s*/)
      .map((c) => c.split('='))
      .find(([k]) => k === name)?.[1];
  const html = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>RP</title><link rel="icon" href="data:,">${body}`);
  };
  let origin = '';

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', origin);
    if (!config) return html(res, 503, '<p>not configured</p>');
    if (url.pathname === '/login') {
      const key = randomBytes(12).toString('hex');
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      pending.set(key, { state, verifier });
      const to = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${origin}/callback`,
        scope: 'openid profile email groups',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      res.writeHead(302, { location: to.href, 'set-cookie': `rp_pending=${key}; Path=/; HttpOnly` });
      return res.end();
    }
    if (url.pathname === '/callback') {
      const p = pending.get(String(cookieOf(req, 'rp_pending')));
      if (!p) return html(res, 400, '<p id="error">no pending sign-in</p>');
      const tokens = await oidc.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: p.verifier,
        expectedState: p.state,
      });
      const sid = randomBytes(12).toString('hex');
      sessions.set(sid, { idToken: tokens.id_token ?? '' });
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'set-cookie': `rp_session=${sid}; Path=/; HttpOnly`,
      });
      const claims = JSON.stringify(tokens.claims() ?? {}).replaceAll('<', '\\u003c');
      return res.end(
        `<!doctype html><title>RP</title><link rel="icon" href="data:,"><h1>Signed in</h1><pre id="claims">${claims}</pre>`,
      );
    }
    if (url.pathname === '/logout') {
      const session = sessions.get(String(cookieOf(req, 'rp_session')));
      const to = oidc.buildEndSessionUrl(config, {
        post_logout_redirect_uri: `${origin}/bye`,
        ...(session ? { id_token_hint: session.idToken } : {}),
      });
      res.writeHead(302, { location: to.href });
      return res.end();
    }
    if (url.pathname === '/bye') return html(res, 200, '<p id="bye">Signed out of the app</p>');
    return html(res, 404, '<p>not found</p>');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) html(res, 500, `<p id="error">${String(err).replaceAll('<', '&lt;')}</p>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://${host}:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    postLogoutRedirectUri: `${origin}/bye`,
    async configure(issuer, clientId, secret) {
      config = await oidc.discovery(new URL(issuer), clientId, secret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
