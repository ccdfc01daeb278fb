import type {} from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { SigninService } from '../signin.js';
import { csrfToken, csrfValid } from './csrf.js';
import { html, page } from './html.js';
import { SECURITY_KEY_BODY_LIMIT, safeReturnTo } from './routes.js';
import { WEBAUTHN_SCRIPT } from './webauthn-script.js';

export interface SecurityKeyPagesOptions {
  signin: SigninService;
  cookieName: string;
  secureCookies: boolean;
}

/** The security-key page runs one script of Ferry's own and talks only to Ferry: still no inline code. */
export const SECURITY_KEY_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * WebAuthn on Ferry's pages: the second step of a sign-in, or a step-up to a phishing-resistant
 * factor (registering a security key or passkey when the person has none). The browser part is
 * /static/webauthn.js; the ceremony's options and results travel as JSON.
 */
export const securityKeyPages: FastifyPluginAsync<SecurityKeyPagesOptions> = async (app, opts) => {
  const { signin, cookieName, secureCookies } = opts;
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: secureCookies };
  const meta = (req: FastifyRequest) => ({
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
    requestId: req.id,
  });
  const token = (req: FastifyRequest) => req.cookies[cookieName] ?? '';

  app.get('/static/webauthn.js', async (_req, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(WEBAUTHN_SCRIPT),
  );

  app.get<{ Querystring: { return_to?: string } }>(
    '/signin/security-key',
    async (req, reply: FastifyReply) => {
      const returnTo = safeReturnTo(req.query.return_to);
      const ceremony = await signin.securityKeyCeremony(token(req));
      if (!ceremony) return reply.redirect(`/signin?return_to=${encodeURIComponent(returnTo)}`, 303);
      // Registering a key needs a second factor first: the code step-up comes back here afterwards.
      if (ceremony.mode === 'needs-mfa-first') {
        const back = `/signin/security-key?return_to=${encodeURIComponent(returnTo)}`;
        return reply.redirect(`/signin/step-up?require=mfa&return_to=${encodeURIComponent(back)}`, 303);
      }
      const register = ceremony.mode === 'register';
      return reply
        .code(200)
        .header('content-security-policy', SECURITY_KEY_CSP)
        .type('text/html; charset=utf-8')
        .send(
          page(
            'Security key',
            html`<h1>${register ? 'Register a security key or passkey' : 'Use your security key'}</h1>
<p id="security-key-reason">${register ? 'What you are opening requires phishing-resistant sign-in. Register a security key or a passkey on this device; you will use it from now on.' : 'Touch your security key, or use the passkey on this device, to continue.'}</p>
<div id="webauthn" data-mode="${ceremony.mode}" data-csrf="${csrfToken(req, reply, secureCookies)}" data-return-to="${returnTo}">
${register ? html`<label for="key-name">Name for this key</label><input type="text" id="key-name" maxlength="64" value="Security key">` : ''}
<button type="button" id="webauthn-start">${register ? 'Register and continue' : 'Continue with security key'}</button>
<p class="error" role="alert" id="webauthn-error" hidden></p>
</div>
<script src="/static/webauthn.js" defer></script>
<noscript><p class="error">Security keys need JavaScript in this page. Use a verification code instead.</p></noscript>`,
          ),
        );
    },
  );

  app.post<{ Body: { csrf?: string } }>('/signin/security-key/options', async (req, reply) => {
    if (!csrfValid(req, req.body?.csrf))
      return reply.code(403).send({ error: 'This page has expired. Reload it and try again.' });
    const ceremony = await signin.securityKeyCeremony(token(req));
    if (!ceremony || ceremony.mode === 'needs-mfa-first')
      return reply.code(401).send({ error: 'Your sign-in has expired. Start again.' });
    return reply.header('cache-control', 'no-store').send(ceremony);
  });

  app.post<{ Body: { csrf?: string; response?: unknown; name?: string; returnTo?: string } }>(
    '/signin/security-key/verify',
    { bodyLimit: SECURITY_KEY_BODY_LIMIT },
    async (req, reply) => {
      const body = req.body ?? {};
      if (!csrfValid(req, body.csrf))
        return reply.code(403).send({ error: 'This page has expired. Reload it and try again.' });
      const result = await signin.securityKeyFinish(
        token(req),
        { response: body.response, name: body.name },
        meta(req),
      );
      if (result.status !== 'signed-in')
        return reply
          .code(401)
          .send({ error: 'That security key was not accepted. Try again, or use another key.' });
      reply.setCookie(cookieName, result.token, cookieOptions);
      return reply.send({ redirect: safeReturnTo(body.returnTo) });
    },
  );
};
