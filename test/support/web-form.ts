/**
 * A minimal browser for Ferry's server-rendered forms: a cookie jar that is not tied to one host
 * (so a cookie from one instance can be presented to another, as a load balancer would) and
 * helpers to GET pages and POST forms without following redirects.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  /** Stores the Set-Cookie headers of a response (an expired or empty value removes the cookie). */
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const i = pair.indexOf('=');
      if (i <= 0) continue;
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = /;\s*expires=Thu, 01 Jan 1970/i.test(line) || /;\s*max-age=0\b/i.test(line);
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface Page {
  status: number;
  /** the Location header of a redirect, else null */
  location: string | null;
  body: string;
  res: Response;
}

async function send(url: string, jar: CookieJar, init: RequestInit): Promise<Page> {
  const headers = new Headers(init.headers);
  headers.set('accept', 'text/html');
  if (jar.cookies.size > 0) headers.set('cookie', jar.header());
  const res = await fetch(url, {
    ...init,
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(20_000),
  });
  jar.store(res);
  return { status: res.status, location: res.headers.get('location'), body: await res.text(), res };
}

export function getPage(base: string, path: string, jar: CookieJar): Promise<Page> {
  return send(new URL(path, base).toString(), jar, { method: 'GET' });
}

export function postForm(
  base: string,
  path: string,
  jar: CookieJar,
  fields: Record<string, string>,
): Promise<Page> {
  return send(new URL(path, base).toString(), jar, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The value of a hidden (or any) input named `name` in a page, HTML-unescaped. */
export function inputValue(html: string, name: string): string {
  const m = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no input named ${name} in page:\n${html.slice(0, 2000)}`);
  return m[1]!
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** The TOTP key shown on the enrollment page (#totp-secret). */
export function totpSecretOf(html: string): string {
  const m = /id="totp-secret">([A-Z2-7]+)</.exec(html);
  if (!m) throw new Error(`no #totp-secret in page:\n${html.slice(0, 2000)}`);
  return m[1]!;
}

/**
 * GET `path` (a page with a form), then POST `fields` to `action` with the page's csrf and
 * return_to fields, against possibly different instances.
 */
export async function submitForm(
  jar: CookieJar,
  from: { base: string; path: string },
  to: { base: string; action: string },
  fields: Record<string, string>,
): Promise<Page> {
  const form = await getPage(from.base, from.path, jar);
  if (form.status !== 200) {
    throw new Error(`GET ${from.path} answered ${form.status} (${form.location ?? ''}), expected a form`);
  }
  return postForm(to.base, to.action, jar, {
    csrf: inputValue(form.body, 'csrf'),
    return_to: inputValue(form.body, 'return_to'),
    ...fields,
  });
}

/** The password step of sign-in, as a browser does it: GET /signin, POST /signin. */
export function signInWithPassword(
  jar: CookieJar,
  base: string,
  userName: string,
  password: string,
  postTo = base,
): Promise<Page> {
  return submitForm(
    jar,
    { base, path: '/signin' },
    { base: postTo, action: '/signin' },
    {
      username: userName,
      password,
    },
  );
}

/** The RFC 6238 time step (30 s) a moment falls in. */
export const totpStep = (at: Date = new Date()): number => Math.floor(at.getTime() / 30_000);

/**
 * Waits (at most one step, 31 s) until the time step is later than `usedStep`, as a person waits
 * for their app to show a new code: Ferry accepts each code once.
 */
export async function waitForNextTotpStep(usedStep: number): Promise<void> {
  const deadline = Date.now() + 31_000;
  while (totpStep() <= usedStep) {
    if (Date.now() > deadline) throw new Error('the TOTP step did not advance within 31 s');
    await new Promise((r) =>
      setTimeout(r, Math.min(250, Math.max(10, (usedStep + 1) * 30_000 - Date.now()))),
    );
  }
}

/**
 * The CSRF token bound to the session in the jar (`GET /api/v1/session`): what a browser sends as
 * `x-csrf-token` on every unsafe /api/ call it authenticates with the session cookie.
 */
export async function csrfTokenOf(base: string, jar: CookieJar | string): Promise<string> {
  const cookie = typeof jar === 'string' ? jar : jar.header();
  const res = await fetch(new URL('/api/v1/session', base), { headers: { cookie } });
  if (res.status !== 200) throw new Error(`GET /api/v1/session answered ${res.status}`);
  return ((await res.json()) as { csrfToken: string }).csrfToken;
}
