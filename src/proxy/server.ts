import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyRequest } from 'fastify';
import type { AccessDecider } from '../access/decide.js';
import type { Decision } from '../access/decision.js';
import type { Signals } from '../access/principal.js';
import type { Actor } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import type { Clock } from '../clock.js';
import { PROXY_CALLBACK_PATH } from '../federation/oidc/proxy-client.js';
import type { Caller, CallerAuthenticator } from '../identity/caller.js';
import type { Store } from '../store/open.js';
import type { ProxyApp, ProxyApps } from './apps.js';
import type { AuditSampler } from './audit-sampler.js';
import { downstreamHeaders, upstreamHeaders } from './headers.js';
import type { IdentityHeaderSigner } from './identity-header.js';
import { canonicalPath } from './paths.js';
import { refuseUpgrade, sendProblem } from './responses.js';
import { type ProxySignin, ProxySigninFailed } from './signin.js';

/** The proxy's session cookie on an app's origin: an access token of the `ferry-proxy` client. */
export const PROXY_SESSION_COOKIE = 'ferry_proxy_session';
/** The sealed state of a sign-in in progress. */
export const PROXY_SIGNIN_COOKIE = 'ferry_proxy_signin';
export const PROXY_SIGNOUT_PATH = '/.ferry/signout';

export interface ProxyLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface ProxyDeps {
  apps: ProxyApps;
  access: AccessDecider;
  /** recognises `Authorization: Bearer` (a `ferry login` token or a workload's) */
  authenticateBearer: CallerAuthenticator;
  /** the person behind the proxy's session cookie */
  sessionCaller: (token: string) => Promise<Caller | null>;
  signin: ProxySignin;
  signer: IdentityHeaderSigner;
  sampler: AuditSampler;
  store: Store;
  clock: Clock;
  /** cookie names that are Ferry's own (session, OIDC): stripped before the app */
  ferryCookies: string[];
  /** whose X-Forwarded-For to believe (as `http.trustProxy`): true, or addresses/CIDRs */
  trustProxy: boolean | string | string[];
  log: ProxyLog;
  /** how long a client may take over a request's headers, its whole request, and idle between requests */
  timeouts?: ListenerTimeouts;
}

export interface ListenerTimeouts {
  headersTimeoutMs: number;
  /** the whole request, headers and body: a client trickling its body is cut off after this */
  bodyTimeoutMs: number;
  /** a kept-alive connection with no request in progress is closed after this */
  idleTimeoutMs: number;
}

/**
 * node:http options enforcing `t`. Node checks the header and request deadlines on a timer
 * (every 30 s by default), so the check runs at least every second to cut a slow client off on time.
 */
export function listenerOptions(t: ListenerTimeouts) {
  return {
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.bodyTimeoutMs,
    keepAliveTimeout: t.idleTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(t.headersTimeoutMs / 2))),
  };
}

type AppRoute = Pick<ProxyApp, 'name' | 'upstream' | 'url'>;

const ROUTE_CACHE_MS = 1000;

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i === -1) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

const wantsHtml = (req: IncomingMessage) =>
  (req.method === 'GET' || req.method === 'HEAD') && /\btext\/html\b/.test(req.headers.accept ?? '');

const bearerOf = (req: IncomingMessage) => /^Bearer\s+\S+$/i.test(req.headers.authorization ?? '');

type Trust = (addr: string, i: number) => boolean;

/** The trust function `http.trustProxy` describes, the way Fastify reads it. */
function trustOf(setting: boolean | string | string[]): Trust {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  const list = (Array.isArray(setting) ? setting : setting.split(',')).map((a) => a.trim()).filter(Boolean);
  return proxyAddr.compile(list);
}

/**
 * The identity-aware proxy: one listener serving every registered app at its own origin (chosen by
 * the Host header). Each request is authenticated (the proxy's session cookie, or a bearer token),
 * decided by decide() with `app:<name>` as target, audited (denials always, allowed ones sampled) and
 * streamed to the upstream with a signed identity header. Websocket upgrades take the same path.
 */
export class IdentityAwareProxy {
  readonly #deps: ProxyDeps;
  readonly #ferryCookies: Set<string>;
  readonly #httpAgent = new Agent({ keepAlive: true, maxSockets: 256 });
  readonly #httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256 });
  readonly server: Server;
  /** host → app, for a second: spares every request one query; a changed app is seen a second later */
  readonly #routes = new Map<string, { app: AppRoute; until: number }>();
  readonly #trust: Trust;

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
    this.#ferryCookies = new Set([...deps.ferryCookies, PROXY_SESSION_COOKIE, PROXY_SIGNIN_COOKIE]);
    this.#trust = trustOf(deps.trustProxy);
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(req, res, err));
    };
    this.server = deps.timeouts
      ? createServer(listenerOptions(deps.timeouts), handler)
      : createServer(handler);
    if (deps.timeouts) this.server.keepAliveTimeout = deps.timeouts.idleTimeoutMs;
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#upgrade(req, socket, head).catch((err: unknown) => {
        deps.log.warn({ err }, 'proxy: websocket handshake failed');
        refuseUpgrade(socket, 502, 'Bad Gateway', 'the proxy could not complete the handshake');
      });
    });
  }

  /** Listens on host:port; resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address();
        resolve({ host, port: typeof a === 'object' && a ? a.port : port });
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const reaper = setInterval(() => this.server.closeIdleConnections(), 100);
    try {
      await closed;
    } finally {
      clearInterval(reaper);
      this.#httpAgent.destroy();
      this.#httpsAgent.destroy();
    }
  }

  async #route(host: string): Promise<AppRoute | null> {
    const now = this.#deps.clock.now().getTime();
    const cached = this.#routes.get(host);
    if (cached && cached.until > now) return cached.app;
    const app = await this.#deps.apps.byHost(host);
    if (this.#routes.size > 1000) this.#routes.clear();
    if (app) this.#routes.set(host, { app, until: now + ROUTE_CACHE_MS });
    else this.#routes.delete(host);
    return app;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const html = wantsHtml(req);
    const host = req.headers.host ?? '';
    const app = await this.#route(host);
    if (!app) {
      sendProblem(res, html, {
        status: 404,
        code: 'not-found',
        title: 'Not Found',
        detail: `no application is served at ${host || 'this address'}`,
        requestId,
      });
      return;
    }
    // One spelling of the path before anything reads it: the callback, the decision, the upstream.
    const canonical = canonicalPath(req.url ?? '/');
    if (!canonical.ok) {
      sendProblem(res, html, {
        status: 400,
        code: 'bad-path',
        title: 'Bad Request',
        detail: canonical.reason,
        requestId,
      });
      return;
    }
    req.url = canonical.url;
    const path = req.url;
    const pathname = path.split('?')[0]!;
    if (pathname === PROXY_CALLBACK_PATH) return this.#callback(req, res, app, requestId);
    if (pathname === PROXY_SIGNOUT_PATH) {
      res.writeHead(303, {
        location: '/',
        'set-cookie': this.#cookie(app, PROXY_SESSION_COOKIE, '', 0, '/'),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }

    const caller = await this.#authenticate(req);
    if (!caller) {
      if (html && !bearerOf(req)) {
        const { location, cookie } = this.#deps.signin.start(app.url, path);
        res.writeHead(302, {
          location,
          'set-cookie': this.#cookie(app, PROXY_SIGNIN_COOKIE, cookie, 600, '/.ferry/'),
          'cache-control': 'no-store',
        });
        res.end();
        return;
      }
      sendProblem(
        res,
        html,
        {
          status: 401,
          code: 'unauthorized',
          title: 'Unauthorized',
          detail: bearerOf(req)
            ? 'the access token is invalid, expired or revoked: sign in again with `ferry login`'
            : `sign in to Ferry first (open ${app.url} in a browser, or send Authorization: Bearer with a token from \`ferry login\`)`,
          requestId,
        },
        { 'www-authenticate': bearerOf(req) ? 'Bearer error="invalid_token"' : 'Bearer' },
      );
      return;
    }

    const decision = await this.#decide(req, app, caller, requestId);
    if (decision.effect !== 'allow') {
      sendProblem(res, html, {
        status: 403,
        code: 'forbidden',
        title: 'Forbidden',
        detail: `you may not use ${app.name}: ${decision.reasons.map((r) => r.message).join('; ')}`,
        requestId,
      });
      return;
    }
    await this.#forward(req, res, app, caller, requestId);
  }

  /** Ferry sent the browser back with a code: redeem it and set the proxy's session cookie. */
  async #callback(
    req: IncomingMessage,
    res: ServerResponse,
    app: AppRoute,
    requestId: string,
  ): Promise<void> {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const sealed = parseCookies(req.headers.cookie).get(PROXY_SIGNIN_COOKIE);
    try {
      const done = await this.#deps.signin.finish(app.url, query, sealed);
      res.writeHead(303, {
        location: done.returnTo,
        'set-cookie': [
          this.#cookie(app, PROXY_SESSION_COOKIE, done.accessToken, done.expiresIn, '/'),
          this.#cookie(app, PROXY_SIGNIN_COOKIE, '', 0, '/.ferry/'),
        ],
        'cache-control': 'no-store',
      });
      res.end();
    } catch (err) {
      if (!(err instanceof ProxySigninFailed)) throw err;
      sendProblem(res, true, {
        status: 400,
        code: 'signin-failed',
        title: 'Sign-in failed',
        detail: err.message,
        requestId,
      });
    }
  }

  #cookie(app: AppRoute, name: string, value: string, maxAge: number, path: string): string {
    const secure = app.url.startsWith('https:') ? '; Secure' : '';
    return `${name}=${value}; Path=${path}; Max-Age=${Math.max(0, Math.floor(maxAge))}; HttpOnly; SameSite=Lax${secure}`;
  }

  /** A bearer token first (the CLI, workloads), then the proxy's session cookie (browsers). */
  async #authenticate(req: IncomingMessage): Promise<Caller | null> {
    if (bearerOf(req)) {
      const shim = {
        headers: req.headers,
        cookies: {},
        ip: this.#clientAddress(req) ?? undefined,
      } as unknown as FastifyRequest;
      const caller = await this.#deps.authenticateBearer(shim);
      if (caller) return caller;
    }
    const token = parseCookies(req.headers.cookie).get(PROXY_SESSION_COOKIE);
    return token ? this.#deps.sessionCaller(token) : null;
  }

  async #decide(req: IncomingMessage, app: AppRoute, caller: Caller, requestId: string): Promise<Decision> {
    const { principal } = caller;
    const signals: Signals = {
      ip: this.#clientAddress(req),
      client:
        principal.kind === 'workload' ? 'workload' : caller.clientId === 'ferry-cli' ? 'cli' : 'browser',
      userAgent: req.headers['user-agent'] ?? null,
    };
    const decision = await this.#deps.access.decide(principal, { kind: 'app', name: app.name }, signals);
    const allowed = decision.effect === 'allow';
    const sample = allowed
      ? this.#deps.sampler.shouldAudit(caller.sessionId ?? `${caller.clientId}:${principal.id}`, app.name)
      : { audit: true, why: null };
    if (sample.audit) {
      const actor: Actor =
        principal.kind === 'workload'
          ? { type: 'workload', id: principal.id, name: principal.userName }
          : { type: 'user', id: principal.id, name: principal.userName };
      const { store, clock } = this.#deps;
      await store.db.transaction().execute((trx) =>
        appendAudit(trx, store.engine, clock, {
          type: allowed ? 'proxy.request.allowed' : 'proxy.request.denied',
          outcome: allowed ? 'success' : 'failure',
          actor,
          subject: `app:${app.name}`,
          ip: signals.ip,
          requestId,
          data: {
            app: app.name,
            method: req.method,
            path: (req.url ?? '/').split('?')[0],
            client: signals.client,
            effect: decision.effect,
            reasons: decision.reasons.map((r) => r.message),
            ...(sample.why ? { sampled: sample.why } : {}),
          },
        }),
      );
    }
    return decision;
  }

  async #upstreamRequest(
    req: IncomingMessage,
    app: AppRoute,
    caller: Caller,
    requestId: string,
    upgrade: boolean,
  ) {
    const upstream = new URL(app.upstream);
    const { principal } = caller;
    const email =
      'emails' in principal
        ? (principal.emails.find((e) => e.primary) ?? principal.emails[0])?.value
        : undefined;
    const jwt = await this.#deps.signer.sign(principal, app.url);
    const headers = upstreamHeaders(req.headers, {
      identity: {
        jwt,
        user: principal.userName,
        email: email ?? null,
        groups: principal.groups.map((g) => g.name),
      },
      // Ferry's own tokens never reach the app; the cookie session leaves an app's own Authorization alone.
      stripAuthorization: bearerOf(req) && caller.clientId !== 'ferry-proxy',
      ferryCookies: this.#ferryCookies,
      upstreamHost: upstream.host,
      forwardedFor: this.#clientAddress(req),
      forwardedProto: app.url.startsWith('https:') ? 'https' : 'http',
      forwardedHost: req.headers.host ?? new URL(app.url).host,
      requestId,
      upgrade,
    });
    const https = upstream.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    return send({
      protocol: upstream.protocol,
      hostname: upstream.hostname.replace(/^\[|\]$/g, ''),
      port: upstream.port || (https ? 443 : 80),
      method: req.method,
      path: `${upstream.pathname.replace(/\/$/, '')}${req.url ?? '/'}`,
      headers,
      agent: upgrade ? false : https ? this.#httpsAgent : this.#httpAgent,
    });
  }

  /** Streams the request to the upstream and its answer back: no body is held in memory. */
  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    app: AppRoute,
    caller: Caller,
    requestId: string,
  ): Promise<void> {
    const upReq = await this.#upstreamRequest(req, app, caller, requestId, false);
    upReq.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, downstreamHeaders(upRes.headers));
      pipeline(upRes, res, (err) => {
        if (err) res.destroy();
      });
    });
    upReq.on('error', (err) => {
      this.#deps.log.warn({ err: err.message, app: app.name }, 'proxy: upstream request failed');
      sendProblem(res, wantsHtml(req), {
        status: 502,
        code: 'bad-gateway',
        title: 'Bad Gateway',
        detail: `${app.name} did not answer`,
        requestId,
      });
    });
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    pipeline(req, upReq, (err) => {
      if (err) upReq.destroy();
    });
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const requestId = randomUUID();
    const app = await this.#route(req.headers.host ?? '');
    if (!app) return refuseUpgrade(socket, 404, 'Not Found', 'no application is served at this host');
    const canonical = canonicalPath(req.url ?? '/');
    if (!canonical.ok) return refuseUpgrade(socket, 400, 'Bad Request', canonical.reason);
    req.url = canonical.url;
    const caller = await this.#authenticate(req);
    if (!caller)
      return refuseUpgrade(
        socket,
        401,
        'Unauthorized',
        'sign in to Ferry first',
        'www-authenticate: Bearer\r\n',
      );
    const decision = await this.#decide(req, app, caller, requestId);
    if (decision.effect !== 'allow')
      return refuseUpgrade(
        socket,
        403,
        'Forbidden',
        `you may not use ${app.name}: ${decision.reasons.map((r) => r.message).join('; ')}`,
      );
    const upReq = await this.#upstreamRequest(req, app, caller, requestId, true);
    upReq.on('upgrade', (upRes, upSocket, upHead) => {
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2)
        lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.on('error', () => socket.destroy());
      socket.on('close', () => upSocket.destroy());
      upSocket.on('close', () => socket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    upReq.on('response', (upRes) => {
      // The upstream declined the upgrade: pass its answer on (body already de-chunked) and close.
      const headers = downstreamHeaders(upRes.headers);
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`, 'connection: close'];
      for (const [k, v] of Object.entries(headers))
        for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      upRes.pipe(socket);
    });
    upReq.on('error', () => refuseUpgrade(socket, 502, 'Bad Gateway', `${app.name} did not answer`));
    upReq.end();
  }

  /** The client's address: the TCP peer, or what trusted proxies in front say in X-Forwarded-For. */
  #clientAddress(req: IncomingMessage): string | null {
    return req.socket.remoteAddress ? proxyAddr(req, this.#trust) : null;
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    this.#deps.log.warn({ err }, 'proxy: request failed');
    sendProblem(res, wantsHtml(req), {
      status: 503,
      code: 'unavailable',
      title: 'Service Unavailable',
      detail: 'the proxy could not check this request; try again shortly',
      requestId: randomUUID(),
    });
  }
}
