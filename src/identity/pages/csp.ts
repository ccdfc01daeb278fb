/**
 * Content-Security-Policy for Ferry's server-rendered pages, and the one place that widens a page's
 * `form-action` to exactly the origin its form's redirect chain ends at.
 *
 * Why: CSP Level 3 §6.4.1 applies `form-action` to the form's target *and every redirect after it*
 * (Chromium enforces this). A sign-in form posts to Ferry, and the 303 chain that follows ends at an
 * OpenID client's redirect_uri, a post_logout_redirect_uri, a proxied app or a SAML ACS on another
 * origin. With `form-action 'self'` alone Chromium cancels that last hop and the person is left on
 * Ferry's page although the sign-in succeeded. The fix names the registered destination's origin on
 * that one response — never a scheme or a wildcard — so an injected form still cannot post elsewhere.
 */

/** Every page: nothing runs, nothing is framed, forms post to Ferry (plus a named destination). */
export const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * The serialized origin of an absolute http(s) URL (`https://app.example`, `http://localhost:8080`),
 * usable as a CSP host-source, or null. IPv6 literals are refused: CSP's host-source grammar has no
 * form for them, so they cannot be named (a browser would ignore the expression).
 */
export function cspOrigin(url: string): string | null {
  const parsed = URL.parse(url);
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) return null;
  if (parsed.hostname.startsWith('[')) return null;
  // The serialization is scheme://host[:port]: nothing that could end a directive or add a source.
  if (!/^https?:\/\/[a-z0-9.-]+(?::\d{1,5})?$/.test(parsed.origin)) return null;
  return parsed.origin;
}

/**
 * The policy with its `form-action` extended by the origins of `destinations` (absolute URLs or
 * origins). Anything that is not an http(s) origin is dropped, never passed through.
 */
export function withFormDestinations(policy: string, destinations: readonly string[]): string {
  const origins = [...new Set(destinations.map(cspOrigin).filter((o): o is string => o !== null))];
  if (origins.length === 0) return policy;
  return policy
    .split(';')
    .map((directive) => {
      const trimmed = directive.trim();
      if (!/^form-action(\s|$)/.test(trimmed)) return trimmed;
      // 'none' cannot be combined with sources: the destinations replace it.
      const sources = trimmed
        .split(/\s+/)
        .slice(1)
        .filter((s) => s !== "'none'");
      const add = origins.filter((o) => !sources.includes(o));
      return ['form-action', ...sources, ...add].join(' ');
    })
    .join('; ');
}

/** The page policy naming these destinations in `form-action`. */
export function pageCsp(destinations: readonly string[] = []): string {
  return withFormDestinations(PAGE_CSP, destinations);
}

/**
 * Where a Ferry-relative return path finally sends the browser, per path prefix: a module that owns
 * such a path (the OpenID interaction, a SAML resume) registers a resolver that answers the
 * registered destination URL(s), or nothing. The sign-in pages ask before they render a form.
 */
export type FormDestinationResolver = (returnTo: string) => Promise<readonly string[]>;

export class FormDestinations {
  readonly #resolvers: Array<{ prefix: string; resolve: FormDestinationResolver }> = [];

  /** `prefix` is a path such as `/oidc/interaction/`; the resolver sees the whole return path. */
  register(prefix: string, resolve: FormDestinationResolver): void {
    if (!prefix.startsWith('/')) throw new Error(`a form destination prefix is a path: ${prefix}`);
    this.#resolvers.push({ prefix, resolve });
  }

  /**
   * The origins a form on a page that continues to `returnTo` may end at. A Ferry page that
   * forwards again (`/signin/security-key?return_to=…`) is followed up to four levels deep.
   * A failing resolver names nothing: the page keeps `form-action 'self'`.
   */
  async originsFor(returnTo: string | undefined): Promise<string[]> {
    let path = returnTo;
    for (let depth = 0; depth < 4 && path?.startsWith('/') && !path.startsWith('//'); depth++) {
      const match = this.#resolvers.find((r) => path!.startsWith(r.prefix));
      if (match) {
        const urls = await match.resolve(path).catch(() => []);
        return [...new Set(urls.map(cspOrigin).filter((o): o is string => o !== null))];
      }
      const inner = URL.parse(path, 'http://ferry.invalid');
      path = inner?.pathname.startsWith('/signin')
        ? (inner.searchParams.get('return_to') ?? undefined)
        : undefined;
    }
    return [];
  }
}
