import type { KoaContextWithOIDC } from 'oidc-provider';
import { pageCsp } from '../../identity/pages/csp.js';
import { Html, html, page } from '../../identity/pages/html.js';

/**
 * oidc-provider's own pages (device code entry, logout, errors) in Ferry's look and CSP. A form whose
 * redirects end at a registered URI on another origin names that URI in `formDestinations`.
 */
function render(
  ctx: KoaContextWithOIDC,
  title: string,
  body: Html,
  status?: number,
  formDestinations: string[] = [],
): void {
  if (status) ctx.status = status;
  ctx.type = 'html';
  ctx.set('content-security-policy', pageCsp(formDestinations));
  ctx.set('cache-control', 'no-store');
  ctx.body = page(title, body);
}

const clientName = (ctx: KoaContextWithOIDC) =>
  ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? 'an application';

export const deviceSources = {
  async userCodeInputSource(ctx: KoaContextWithOIDC, form: string, _out: unknown, err?: Error) {
    const problem = !err
      ? null
      : (err as { userCode?: unknown }).userCode || err.name === 'NoCodeError'
        ? 'That code is not valid or has expired. Check it and try again.'
        : err.name === 'AbortedError'
          ? 'The sign-in was cancelled.'
          : 'The sign-in could not be completed. Start again on your device.';
    render(
      ctx,
      'Sign in a device',
      html`<h1>Sign in a device</h1>
${problem ? html`<p class="error" role="alert">${problem}</p>` : ''}
<p>Enter the code shown by <code>ferry login</code> (or the other device).</p>
<label for="user_code">Code</label>
${new Html(form)}
<button type="submit" form="op.deviceInputForm">Continue</button>`,
      problem ? 400 : undefined,
    );
  },
  async userCodeConfirmSource(
    ctx: KoaContextWithOIDC,
    form: string,
    _client: unknown,
    deviceInfo: { ip?: string; ua?: string } | undefined,
    userCode: string,
  ) {
    render(
      ctx,
      'Confirm the device',
      html`<h1>Sign in ${clientName(ctx)}?</h1>
<p>Check that the device shows this code:</p>
<p><code class="secret" id="user-code">${userCode}</code></p>
${deviceInfo?.ip ? html`<p class="muted">Requested from ${deviceInfo.ip}${deviceInfo.ua ? html` (${deviceInfo.ua})` : ''}.</p>` : ''}
<p>If you did not start this, or the code differs, choose Cancel.</p>
${new Html(form)}
<button type="submit" form="op.deviceConfirmForm" id="confirm">Yes, sign it in</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Cancel</button>`,
    );
  },
  async successSource(ctx: KoaContextWithOIDC) {
    render(
      ctx,
      'Device signed in',
      html`<h1>Device signed in</h1><p id="device-success">${clientName(ctx)} is signed in. You can close this window and return to your device.</p>`,
    );
  },
};

export const logoutSources = {
  async logoutSource(ctx: KoaContextWithOIDC, form: string) {
    // Confirming redirects to the post_logout_redirect_uri, which end_session checked against the
    // client's registration before it stored it in the session state.
    const state = ctx.oidc.session?.state as { postLogoutRedirectUri?: unknown } | undefined;
    const back = typeof state?.postLogoutRedirectUri === 'string' ? [state.postLogoutRedirectUri] : [];
    render(
      ctx,
      'Sign out',
      html`<h1>Sign out of Ferry?</h1>
${new Html(form)}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
      undefined,
      back,
    );
  },
  async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
    render(ctx, 'Signed out', html`<h1>Signed out</h1><p id="signed-out">You have signed out of Ferry.</p>`);
  },
};

/** Errors the browser sees (a bad redirect_uri can't be sent back to the client): what and why. */
export async function renderOidcError(
  ctx: KoaContextWithOIDC,
  out: { error: string; error_description?: string },
  _error: Error,
): Promise<void> {
  render(
    ctx,
    'Sign-in request refused',
    html`<h1>This sign-in request can't be completed</h1>
<p class="error" role="alert"><strong>${out.error}</strong>${out.error_description ? html`: ${out.error_description}` : ''}</p>
<p>Ask the application's owner to check its Ferry client registration.</p>`,
  );
}
