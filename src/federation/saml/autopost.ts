import { type Html, html, page } from '../../identity/pages/html.js';

/** The one script Ferry serves: it submits the SAML form so people don't have to click. */
export const AUTOPOST_SCRIPT = "document.getElementById('saml-post').submit();\n";

/**
 * The HTTP-POST binding page: a form carrying the SAML message to `destination`, submitted by
 * /static/saml-autopost.js, or by the button when scripts are off.
 */
export function autoPostPage(destination: string, fields: Record<string, string>, label: string): string {
  const inputs: Html[] = Object.entries(fields).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  );
  return page(
    'Signing you in',
    html`<h1>Signing you in…</h1>
<form method="post" action="${destination}" id="saml-post">
${inputs}
<p>${label}</p>
<button type="submit">Continue</button>
</form>
<script src="/static/saml-autopost.js"></script>`,
  );
}

/**
 * Pages that post a SAML message may run our one script and submit to the relying party: the
 * form-action names exactly the destination's origin. Browsers also check form-action against the
 * redirects that follow the post; a service provider's ACS redirects within its own origin, but AWS's
 * sign-in endpoint sends the browser on to the console (another host), so only that page, with
 * `followRedirects`, also allows https: destinations.
 */
export function autoPostCsp(destination: string, options: { followRedirects?: boolean } = {}): string {
  const origin = new URL(destination).origin;
  const formAction = options.followRedirects ? `${origin} https:` : origin;
  return `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}
