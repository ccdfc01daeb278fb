import type {} from '@fastify/cookie'; // request.cookies / reply.setCookie types
import fastifyFormbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { GroupDirectory } from '../groups.js';
import { DEFAULT_LANDING } from '../landing.js';
import type { TotpEnrollment } from '../mfa.js';
import type { RecoveryCodes } from '../recovery-codes.js';
import type { Session, SessionStore } from '../sessions.js';
import type { SigninResult, SigninService } from '../signin.js';
import type { UserDirectory } from '../users.js';
import { type FormDestinations, withFormDestinations } from './csp.js';
import { csrfToken, csrfValid } from './csrf.js';
import { errorPage, type Html, html, PAGE_CSP, page, STYLESHEET } from './html.js';
import { qrDataUri } from './qr.js';
import { securityKeyPages } from './security-key.js';
import { stepUpPages } from './step-up.js';

export interface SigninPagesOptions {
  signin: SigninService;
  sessions: SessionStore;
  users: UserDirectory;
  groups: GroupDirectory;
  cookieName: string;
  /** Secure cookies when Ferry is served over https */
  secureCookies: boolean;
  /** upstream identity providers offered beside the password form (a link each: no JavaScript) */
  upstream?: Array<{ id: string; path: string; label: string }>;
  /** recovery codes a person generates on the account page */
  recoveryCodes?: RecoveryCodes;
  /**
   * Where a return path finally leads (an OpenID client, a SAML SP): that origin is added to the
   * page's `form-action`, since browsers apply it to the redirects after the form is sent.
   */
  formDestinations?: FormDestinations;
}

/** The same words whatever failed: wrong user, password or code, disabled account, or lockout. */
export const GENERIC_SIGNIN_ERROR = 'Sign-in failed. Check your details and try again, or try again later.';

/**
 * Only same-site relative paths: an open redirect would turn the sign-in page into a phishing aid.
 * Anything else (or nothing) lands on the portal, DEFAULT_LANDING.
 */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2048 || value === '') return DEFAULT_LANDING;
  // Any control character is refused, not only CR/LF: browsers drop tabs and newlines from URLs,
  // so "/<TAB>/evil.example" would be followed as "//evil.example" (an off-site redirect).
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\') || /\p{Cc}/u.test(value)) {
    return DEFAULT_LANDING;
  }
  // A Location header must be ASCII: a raw non-Latin-1 character made the redirect a 500.
  try {
    return value.replace(/[^\x20-\x7e]/gu, (c) => encodeURIComponent(c));
  } catch {
    return DEFAULT_LANDING; // a lone surrogate
  }
}

type Form = Record<string, string | undefined>;

/** The largest body a sign-in form may send: a user name, a password, a code, a return path. */
export const SIGNIN_FORM_BODY_LIMIT = 16 * 1024;
/** A security key's registration (attestation with its certificate chain) needs more. */
export const SECURITY_KEY_BODY_LIMIT = 64 * 1024;

export const signinPages: FastifyPluginAsync<SigninPagesOptions> = async (app, opts) => {
  const { signin, sessions, users, cookieName, secureCookies } = opts;
  // Anyone may post to these pages before signing in: a form needs kilobytes, so that is all a body
  // may be (the server-wide limit is for the admin API). Routes that need more say so.
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= SIGNIN_FORM_BODY_LIMIT;
  });
  // Form bodies are for these pages only: the admin API takes JSON and answers anything else with 415.
  await app.register(fastifyFormbody, { bodyLimit: SIGNIN_FORM_BODY_LIMIT });
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: secureCookies };

  app.addHook('onSend', async (req, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      // A page that runs Ferry's own script (the security-key page) sets its own, still strict, policy.
      const policy = String(reply.getHeader('content-security-policy') ?? PAGE_CSP);
      const returnTo =
        (req.query as Form | undefined)?.return_to ?? (req.body as Form | undefined)?.return_to;
      const destinations =
        returnTo === undefined || !opts.formDestinations
          ? []
          : await opts.formDestinations.originsFor(safeReturnTo(returnTo));
      reply.header('content-security-policy', withFormDestinations(policy, destinations));
      reply.header('x-frame-options', 'DENY');
      reply.header('cache-control', 'no-store');
    }
    return payload;
  });

  const send = (reply: FastifyReply, status: number, title: string, body: Html) =>
    reply.code(status).type('text/html; charset=utf-8').send(page(title, body));

  const current = async (req: FastifyRequest): Promise<Session | null> => {
    const token = req.cookies[cookieName];
    return token ? sessions.resolve(token) : null;
  };

  const meta = (req: FastifyRequest) => ({
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
    requestId: req.id,
  });

  const passwordForm = (
    req: FastifyRequest,
    reply: FastifyReply,
    returnTo: string,
    error?: string,
    userName = '',
  ) =>
    send(
      reply,
      error ? 401 : 200,
      'Sign in',
      html`<h1>Sign in</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/signin">
<input type="hidden" name="csrf" value="${csrfToken(req, reply, secureCookies)}">
<input type="hidden" name="return_to" value="${returnTo}">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${userName}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${(opts.upstream ?? []).map(
  (u) =>
    html`<p class="upstream"><a class="button" id="${u.id}" href="${u.path}?return_to=${encodeURIComponent(returnTo)}">${u.label}</a></p>`,
)}`,
    );

  const codeForm = (
    req: FastifyRequest,
    reply: FastifyReply,
    returnTo: string,
    error?: string,
    withKey = false,
  ) =>
    send(
      reply,
      error ? 401 : 200,
      'Verification code',
      html`<h1>Enter your verification code</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<p>Open your authenticator app and enter the 6-digit code for Ferry.</p>
<form method="post" action="/signin/code">
<input type="hidden" name="csrf" value="${csrfToken(req, reply, secureCookies)}">
<input type="hidden" name="return_to" value="${returnTo}">
<label for="code">Verification code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit">Verify</button>
</form>
<p class="muted"><a id="use-recovery-code" href="/signin/recovery?return_to=${encodeURIComponent(returnTo)}">Lost your authenticator? Use a recovery code</a></p>
${withKey ? html`<p><a id="use-security-key" href="/signin/security-key?return_to=${encodeURIComponent(returnTo)}">Use a security key or passkey instead</a></p>` : ''}`,
    );

  const enrollForm = async (
    req: FastifyRequest,
    reply: FastifyReply,
    returnTo: string,
    enrollment: TotpEnrollment,
    error?: string,
  ) =>
    send(
      reply,
      error ? 401 : 200,
      'Set up your authenticator',
      html`<h1>Set up your authenticator</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<p>Your organisation requires a second factor. Scan this code with an authenticator app (Microsoft Authenticator, Google Authenticator, 1Password, …), or type the key into it, then enter the code it shows.</p>
<img class="qr" id="totp-qr" alt="QR code to add Ferry to an authenticator app" width="200" height="200" src="${await qrDataUri(enrollment.uri)}">
<label>Key</label>
<code class="secret" id="totp-secret">${enrollment.secret}</code>
<p class="muted">Or open this link on the device with your app: <a href="${enrollment.uri}">${enrollment.uri}</a></p>
<form method="post" action="/signin/enroll">
<input type="hidden" name="csrf" value="${csrfToken(req, reply, secureCookies)}">
<input type="hidden" name="return_to" value="${returnTo}">
<label for="code">Verification code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit">Verify and continue</button>
</form>`,
    );

  const afterStep = (_req: FastifyRequest, reply: FastifyReply, result: SigninResult, returnTo: string) => {
    switch (result.status) {
      case 'signed-in':
        reply.setCookie(cookieName, result.token, cookieOptions);
        return reply.redirect(returnTo, 303);
      case 'second-factor-required':
        reply.setCookie(cookieName, result.token, cookieOptions);
        // A security key when that is all the person has; otherwise the code page (which offers the key too).
        return reply.redirect(
          `/signin/${result.methods.includes('totp') ? 'code' : 'security-key'}?return_to=${encodeURIComponent(returnTo)}`,
          303,
        );
      case 'enrollment-required':
        reply.setCookie(cookieName, result.token, cookieOptions);
        return reply.redirect(`/signin/enroll?return_to=${encodeURIComponent(returnTo)}`, 303);
      case 'failed':
        return null;
    }
  };

  const badForm = (reply: FastifyReply) =>
    reply
      .code(403)
      .type('text/html; charset=utf-8')
      .send(errorPage(403, 'Form expired', 'This form has expired. Go back, reload the page and try again.'));

  app.get('/static/ferry.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET),
  );

  app.get<{ Querystring: { return_to?: string; prompt?: string } }>('/signin', async (req, reply) => {
    const returnTo = safeReturnTo(req.query.return_to);
    // prompt=login (an SP's ForceAuthn) asks for a fresh sign-in even when a session exists.
    if (req.query.prompt !== 'login' && (await current(req))) return reply.redirect(returnTo, 302);
    return passwordForm(req, reply, returnTo);
  });

  app.post<{ Body: Form }>('/signin', async (req, reply) => {
    const body = (req.body ?? {}) as Form;
    const returnTo = safeReturnTo(body.return_to);
    if (!csrfValid(req, body.csrf)) return badForm(reply);
    const result = await signin.password(String(body.username ?? ''), String(body.password ?? ''), meta(req));
    return (
      afterStep(req, reply, result, returnTo) ??
      passwordForm(req, reply, returnTo, GENERIC_SIGNIN_ERROR, body.username)
    );
  });

  app.get<{ Querystring: { return_to?: string } }>('/signin/code', async (req, reply) => {
    const returnTo = safeReturnTo(req.query.return_to);
    const token = req.cookies[cookieName];
    const factors = token ? await signin.pendingFactors(token) : null;
    if (!factors) return reply.redirect(`/signin?return_to=${encodeURIComponent(returnTo)}`, 303);
    return codeForm(req, reply, returnTo, undefined, factors.includes('webauthn'));
  });

  // A recovery code instead of the authenticator's code: the same step, its own page.
  app.get<{ Querystring: { return_to?: string } }>('/signin/recovery', async (req, reply) => {
    const returnTo = safeReturnTo(req.query.return_to);
    const token = req.cookies[cookieName];
    if (!token || !(await signin.pendingFactors(token)))
      return reply.redirect(`/signin?return_to=${encodeURIComponent(returnTo)}`, 303);
    return send(
      reply,
      200,
      'Recovery code',
      html`<h1>Use a recovery code</h1>
<p>Enter one of the recovery codes you saved. Each works once.</p>
<form method="post" action="/signin/code">
<input type="hidden" name="csrf" value="${csrfToken(req, reply, secureCookies)}">
<input type="hidden" name="return_to" value="${returnTo}">
<label for="recovery-code">Recovery code</label>
<input type="text" id="recovery-code" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="11" required>
<button type="submit">Continue</button>
</form>`,
    );
  });

  app.post<{ Body: Form }>('/signin/code', async (req, reply) => {
    const body = (req.body ?? {}) as Form;
    const returnTo = safeReturnTo(body.return_to);
    if (!csrfValid(req, body.csrf)) return badForm(reply);
    const result = await signin.secondFactor(
      req.cookies[cookieName] ?? '',
      String(body.code ?? ''),
      meta(req),
    );
    if (result.status === 'failed' && result.reason === 'expired') {
      return passwordForm(req, reply, returnTo, GENERIC_SIGNIN_ERROR);
    }
    return afterStep(req, reply, result, returnTo) ?? codeForm(req, reply, returnTo, GENERIC_SIGNIN_ERROR);
  });

  app.get<{ Querystring: { return_to?: string } }>('/signin/enroll', async (req, reply) => {
    const returnTo = safeReturnTo(req.query.return_to);
    const enrollment = await signin.pendingEnrollment(req.cookies[cookieName] ?? '');
    if (!enrollment) return reply.redirect(`/signin?return_to=${encodeURIComponent(returnTo)}`, 303);
    return enrollForm(req, reply, returnTo, enrollment);
  });

  app.post<{ Body: Form }>('/signin/enroll', async (req, reply) => {
    const body = (req.body ?? {}) as Form;
    const returnTo = safeReturnTo(body.return_to);
    if (!csrfValid(req, body.csrf)) return badForm(reply);
    const token = req.cookies[cookieName] ?? '';
    const enrollment = await signin.pendingEnrollment(token);
    if (!enrollment) return passwordForm(req, reply, returnTo, GENERIC_SIGNIN_ERROR);
    const result = await signin.confirmEnrollment(token, String(body.code ?? ''), meta(req));
    return (
      afterStep(req, reply, result, returnTo) ??
      enrollForm(req, reply, returnTo, enrollment, 'That code did not match. Check the key and try again.')
    );
  });

  await app.register(stepUpPages, { signin, cookieName, secureCookies });
  await app.register(securityKeyPages, { signin, cookieName, secureCookies });

  app.get('/account', async (req, reply) => {
    const session = await current(req);
    if (!session) return reply.redirect('/signin?return_to=%2Faccount', 303);
    const user = await users.get(session.userId);
    const groups = await opts.groups.namesOf(user.id);
    const list = await sessions.listForUser(user.id);
    const csrf = csrfToken(req, reply, secureCookies);
    return send(
      reply,
      200,
      'Your account',
      html`<h1>${user.displayName ?? user.userName}</h1>
<p><code id="user-name">${user.userName}</code></p>
<p>Groups: <span id="groups">${groups.length ? groups.join(', ') : 'none'}</span></p>
<p class="muted">Signed in with ${session.amr.join(' + ')} at ${session.authTime ?? ''}</p>
<p><a class="button" id="open-console" href="/">Open your access</a> AWS roles, apps, SSH, requests and approvals in the web console</p>
<h2>Sessions</h2>
<table id="sessions"><thead><tr><th>Started</th><th>From</th><th>Last seen</th><th></th></tr></thead><tbody>
${list.map(
  (s) =>
    html`<tr><td>${s.createdAt}</td><td>${s.ip ?? ''}<br><span class="muted">${(s.userAgent ?? '').slice(0, 60)}</span></td><td>${s.lastSeenAt}</td><td>${
      s.id === session.id
        ? 'this session'
        : html`<form class="inline" method="post" action="/account/sessions/${s.id}/revoke"><input type="hidden" name="csrf" value="${csrf}"><button class="link" type="submit">Sign out</button></form>`
    }</td></tr>`,
)}
</tbody></table>
${
  opts.recoveryCodes
    ? html`<h2>Recovery codes</h2>
<p class="muted">Single-use codes for when your authenticator is lost. <span id="recovery-remaining">${await opts.recoveryCodes.remaining(user.id)}</span> left.</p>
<form method="post" action="/account/recovery-codes"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" id="new-recovery-codes">Create new recovery codes</button></form>`
    : ''
}
<form method="post" action="/signout"><input type="hidden" name="csrf" value="${csrf}"><button type="submit">Sign out</button></form>`,
    );
  });

  app.post<{ Body: Form }>('/account/recovery-codes', async (req, reply) => {
    const session = await current(req);
    if (!session) return reply.redirect('/signin', 303);
    if (!csrfValid(req, (req.body as Form | undefined)?.csrf)) return badForm(reply);
    if (!opts.recoveryCodes) return reply.redirect('/account', 303);
    const user = await users.get(session.userId);
    const codes = await opts.recoveryCodes.generate(
      { actor: { type: 'user', id: user.id, name: user.userName }, ip: req.ip, requestId: req.id },
      user,
    );
    return send(
      reply,
      200,
      'Your recovery codes',
      html`<h1>Your recovery codes</h1>
<p>Keep these somewhere safe: each works once, in place of a verification code. They are shown only now; your earlier codes no longer work.</p>
<ul id="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
<p><a href="/account">Back to your account</a></p>`,
    );
  });

  app.post<{ Params: { id: string }; Body: Form }>('/account/sessions/:id/revoke', async (req, reply) => {
    const session = await current(req);
    if (!session) return reply.redirect('/signin', 303);
    if (!csrfValid(req, (req.body as Form | undefined)?.csrf)) return badForm(reply);
    const actor = {
      type: 'user' as const,
      id: session.userId,
      name: (await users.get(session.userId)).userName,
    };
    await sessions.revoke(
      { actor, ip: req.ip, requestId: req.id },
      req.params.id,
      'signed out by the user',
      session.userId,
    );
    return reply.redirect('/account', 303);
  });

  app.post<{ Body: Form }>('/signout', async (req, reply) => {
    if (!csrfValid(req, (req.body as Form | undefined)?.csrf)) return badForm(reply);
    const session = await current(req);
    if (session) {
      const actor = {
        type: 'user' as const,
        id: session.userId,
        name: (await users.get(session.userId)).userName,
      };
      await sessions.revoke({ actor, ip: req.ip, requestId: req.id }, session.id, 'signed out');
    }
    reply.clearCookie(cookieName, { path: '/' });
    return reply.redirect('/signin', 303);
  });
};
