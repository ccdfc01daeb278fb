/**
 * A tiny browser without a browser: fetch with a cookie jar, redirects left to the test
 * (redirect: 'manual'), and HTML form posts. Enough to walk the server-rendered pages the way a
 * person's browser would, and to look at exactly what the server sent back.
 */

export interface SetCookie {
  name: string;
  value: string;
  /** attribute names lower-cased; flags (HttpOnly, Secure) map to true */
  attributes: Map<string, string | true>;
  raw: string;
}

export function parseSetCookie(raw: string): SetCookie {
  const [pair = '', ...attrs] = raw.split(';');
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string | true>();
  for (const a of attrs) {
    const i = a.indexOf('=');
    if (i === -1) attributes.set(a.trim().toLowerCase(), true);
    else attributes.set(a.slice(0, i).trim().toLowerCase(), a.slice(i + 1).trim());
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes, raw };
}

export interface PageResponse {
  status: number;
  headers: Headers;
  /** the Location header, if any */
  location: string | null;
  text: string;
  /** the cookies this response set (or cleared) */
  setCookies: SetCookie[];
}

export class Browser {
  /** cookie name → value, as the browser would send them back */
  readonly jar = new Map<string, string>();

  constructor(readonly baseUrl: string) {}

  async request(path: string, init: RequestInit = {}): Promise<PageResponse> {
    const headers = new Headers(init.headers);
    if (!headers.has('accept')) headers.set('accept', 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8');
    if (this.jar.size > 0 && !headers.has('cookie')) {
      headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(new URL(path, this.baseUrl), { ...init, headers, redirect: 'manual' });
    const setCookies = res.headers.getSetCookie().map(parseSetCookie);
    for (const c of setCookies) {
      const maxAge = c.attributes.get('max-age');
      const expires = c.attributes.get('expires');
      const expired =
        c.value === '' ||
        (typeof maxAge === 'string' && Number(maxAge) <= 0) ||
        (typeof expires === 'string' && Date.parse(expires) <= Date.now());
      if (expired) this.jar.delete(c.name);
      else this.jar.set(c.name, c.value);
    }
    return {
      status: res.status,
      headers: res.headers,
      location: res.headers.get('location'),
      text: await res.text(),
      setCookies,
    };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<PageResponse> {
    return this.request(path, { headers });
  }

  /** Submits an HTML form (application/x-www-form-urlencoded). */
  post(
    path: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<PageResponse> {
    return this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  }

  cookie(name: string): string | undefined {
    return this.jar.get(name);
  }
}

const unescapeHtml = (s: string): string =>
  s
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');

/** The value of the (first) input named `name` in a page, or undefined. */
export function inputValue(html: string, name: string): string | undefined {
  for (const m of html.matchAll(/<input\b[^>]*>/g)) {
    const tag = m[0];
    if (!new RegExp(`\\bname="${name}"`).test(tag)) continue;
    const v = /\bvalue="([^"]*)"/.exec(tag);
    return v ? unescapeHtml(v[1]!) : '';
  }
  return undefined;
}

/** Every <input> tag of a page as a map of its attributes. */
export function inputs(html: string): Array<Record<string, string>> {
  return [...html.matchAll(/<input\b([^>]*)>/g)].map((m) => {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([\w-]+)(?:="([^"]*)")?/g)) attrs[a[1]!] = unescapeHtml(a[2] ?? '');
    return attrs;
  });
}
