import type {} from '@fastify/cookie'; // request.cookies / reply.setCookie types
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { html, PAGE_CSP, page } from '../pages/html.js';
import { safeReturnTo } from '../pages/routes.js';
import type { CallbackQuery, EntraSignin } from './entra-signin.js';
import type { UpstreamSigninError } from './errors.js';

export interface UpstreamRoutesOptions {
  entra: EntraSignin;
  /** Ferry's session cookie (the same one the password sign-in sets) */
  cookieName: string;
  secureCookies: boolean;
}

/** Binds a sign-in's state to the browser that started it; lives only on the callback path. */
export const ENTRA_STATE_COOKIE = 'ferry_entra_state';
export const ENTRA_SIGNIN_PATH = '/signin/entra';
export const ENTRA_CALLBACK_PATH = '/signin/entra/callback';

/** `GET /signin/entra` sends the browser to Entra ID; `GET /signin/entra/callback` is where it comes back. */
export const upstreamSigninRoutes: FastifyPluginAsync<UpstreamRoutesOptions> = async (app, opts) => {
  const { entra, cookieName, secureCookies } = opts;
  // The cookie's path is the redirect URI's, which a reverse proxy may prefix.
  const stateCookie = () => ({
    path: new URL(entra.options.redirectUri()).pathname,
    httpOnly: true,
    sameSite: 'lax' as const, // sent on Entra's top-level redirect back, not on cross-site subrequests
    secure: secureCookies,
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      reply.header('content-security-policy', PAGE_CSP);
      reply.header('x-frame-options', 'DENY');
    }
    reply.header('cache-control', 'no-store');
    return payload;
  });

  const meta = (req: FastifyRequest) => ({
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
    requestId: req.id,
  });

  const refused = (
    reply: FastifyReply,
    req: FastifyRequest,
    error: UpstreamSigninError,
    returnTo: string,
  ) => {
    const { status, title, detail } = error.page;
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        page(
          title,
          html`<h1>${title}</h1>
<p class="error" role="alert" id="upstream-error">${detail}</p>
<p><a href="/signin?return_to=${encodeURIComponent(returnTo)}">Back to sign-in</a></p>
<p class="muted">Reference: ${req.id} · HTTP ${status}</p>`,
        ),
      );
  };

  app.get<{ Querystring: { return_to?: string } }>(ENTRA_SIGNIN_PATH, async (req, reply) => {
    const returnTo = safeReturnTo(req.query.return_to);
    const started = await entra.begin(returnTo, meta(req));
    if (!('url' in started)) return refused(reply, req, started, returnTo);
    reply.setCookie(ENTRA_STATE_COOKIE, started.state, {
      ...stateCookie(),
      maxAge: Math.ceil(entra.options.requestLifetimeMs / 1000),
    });
    return reply.redirect(started.url, 303);
  });

  app.get<{ Querystring: CallbackQuery }>(ENTRA_CALLBACK_PATH, async (req, reply) => {
    const query: CallbackQuery = {};
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (typeof v === 'string') query[k] = v.slice(0, 8192);
    }
    // The URL openid-client checks is the registered redirect URI plus what came back on it.
    const callbackUrl = new URL(entra.options.redirectUri());
    for (const [k, v] of Object.entries(query)) callbackUrl.searchParams.set(k, v ?? '');
    const result = await entra.finish(query, callbackUrl, req.cookies[ENTRA_STATE_COOKIE], meta(req));
    reply.clearCookie(ENTRA_STATE_COOKIE, { path: stateCookie().path });
    if (result.status === 'failed') return refused(reply, req, result.error, result.returnTo);
    reply.setCookie(cookieName, result.token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
    });
    return reply.redirect(result.returnTo, 303);
  });
};
