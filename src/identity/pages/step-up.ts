import type {} from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TotpEnrollment } from '../mfa.js';
import type { SigninService } from '../signin.js';
import { csrfToken, csrfValid } from './csrf.js';
import { errorPage, type Html, html, page } from './html.js';
import { qrDataUri } from './qr.js';
import { safeReturnTo } from './routes.js';

export interface StepUpPagesOptions {
  signin: SigninService;
  cookieName: string;
  secureCookies: boolean;
}

type Form = Record<string, string | undefined>;

/** Where an issuer sends a browser whose session lacks what a policy requires; it comes back to return_to. */
export function stepUpUrl(require: string[], returnTo: string): string {
  return `/signin/step-up?require=${encodeURIComponent(require.join(' '))}&return_to=${encodeURIComponent(returnTo)}`;
}

/**
 * The step-up pages: a signed-in person asked for more by conditional access proves it here and
 * continues where they were. A second factor (enrolling one if they have none), a fresh sign-in, or
 * an explanation when only a managed device will do.
 */
export const stepUpPages: FastifyPluginAsync<StepUpPagesOptions> = async (app, opts) => {
  const { signin, cookieName, secureCookies } = opts;
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: secureCookies };
  const send = (reply: FastifyReply, status: number, title: string, body: Html) =>
    reply.code(status).type('text/html; charset=utf-8').send(page(title, body));
  const meta = (req: FastifyRequest) => ({
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
    requestId: req.id,
  });

  const codePage = async (
    req: FastifyRequest,
    reply: FastifyReply,
    returnTo: string,
    enrollment: TotpEnrollment | null,
    error?: string,
  ) =>
    send(
      reply,
      error ? 401 : 200,
      'Verify it is you',
      html`<h1>${enrollment ? 'Set up your authenticator to continue' : 'Verify it is you'}</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<p id="step-up-reason">What you are opening requires multi-factor authentication.</p>
${
  enrollment
    ? html`<p>Scan this code with an authenticator app, or type the key into it, then enter the code it shows.</p>
<img class="qr" id="totp-qr" alt="QR code to add Ferry to an authenticator app" width="200" height="200" src="${await qrDataUri(enrollment.uri)}">
<label>Key</label>
<code class="secret" id="totp-secret">${enrollment.secret}</code>`
    : html`<p>Open your authenticator app and enter the 6-digit code for Ferry.</p>`
}
<form method="post" action="/signin/step-up">
<input type="hidden" name="csrf" value="${csrfToken(req, reply, secureCookies)}">
<input type="hidden" name="return_to" value="${returnTo}">
<label for="code">Verification code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit">Verify and continue</button>
</form>`,
    );

  app.get<{ Querystring: { require?: string; return_to?: string } }>(
    '/signin/step-up',
    async (req, reply) => {
      const returnTo = safeReturnTo(req.query.return_to);
      const require = String(req.query.require ?? 'mfa')
        .split(/[ ,]+/)
        .filter(Boolean);
      const toSignin = (prompt: boolean) =>
        reply.redirect(
          `/signin?${prompt ? 'prompt=login&' : ''}return_to=${encodeURIComponent(returnTo)}`,
          303,
        );
      const token = req.cookies[cookieName] ?? '';
      // A fresh sign-in satisfies the sign-in frequency (and asks for the second factor the person has).
      if (require.includes('reauthentication')) return toSignin(true);
      if (require.includes('compliant-device'))
        return send(
          reply,
          403,
          'A managed device is required',
          html`<h1>Open this from a managed device</h1><p class="error" role="alert">Your organisation requires a compliant, managed device for what you are opening. Use your work device (its device agent presents Ferry a compliance assertion), or ask your administrator.</p><p><a href="/account">Back to your account</a></p>`,
        );
      if (require.includes('phishing-resistant-mfa'))
        return reply.redirect(`/signin/security-key?return_to=${encodeURIComponent(returnTo)}`, 303);
      const enrollment = await signin.stepUpEnrollment(token, meta(req));
      if (enrollment === 'no-session') return toSignin(false);
      return codePage(req, reply, returnTo, enrollment);
    },
  );

  app.post<{ Body: Form }>('/signin/step-up', async (req, reply) => {
    const body = (req.body ?? {}) as Form;
    const returnTo = safeReturnTo(body.return_to);
    if (!csrfValid(req, body.csrf))
      return reply
        .code(403)
        .type('text/html; charset=utf-8')
        .send(
          errorPage(403, 'Form expired', 'This form has expired. Go back, reload the page and try again.'),
        );
    const token = req.cookies[cookieName] ?? '';
    const result = await signin.stepUp(token, String(body.code ?? ''), meta(req));
    if (result.status === 'signed-in') {
      reply.setCookie(cookieName, result.token, cookieOptions);
      return reply.redirect(returnTo, 303);
    }
    if (result.status === 'failed' && result.reason === 'expired')
      return reply.redirect(`/signin?return_to=${encodeURIComponent(returnTo)}`, 303);
    const enrollment = await signin.stepUpEnrollment(token, meta(req));
    return codePage(
      req,
      reply,
      returnTo,
      enrollment === 'no-session' ? null : enrollment,
      'That code did not match. Try again.',
    );
  });
};
