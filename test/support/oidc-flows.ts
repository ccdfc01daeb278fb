import { expect } from 'vitest';
import { type Browser, inputValue, type PageResponse } from './browserless.js';

export interface Person {
  userName: string;
  password: string;
}

/** Signs a Browser in through Ferry's own pages (the password step; MFA off in the tenant). */
export async function signIn(browser: Browser, returnTo: string, person: Person): Promise<string> {
  const form = await browser.get(`/signin?return_to=${encodeURIComponent(returnTo)}`);
  expect(form.status).toBe(200);
  const res = await browser.post('/signin', {
    csrf: inputValue(form.text, 'csrf') ?? '',
    return_to: inputValue(form.text, 'return_to') ?? '',
    username: person.userName,
    password: person.password,
  });
  expect(res.status).toBe(303);
  return res.location!;
}

/**
 * Follows redirects on Ferry (signing in when it asks) until one leaves Ferry (`until: 'client'`,
 * answering that URL) or a page answers 200 (`until: 'page'`, answering nothing).
 */
export async function follow(
  browser: Browser,
  start: string,
  person: Person,
): Promise<{ left: URL } | { page: PageResponse }> {
  let next = start;
  for (let hop = 0; hop < 15; hop++) {
    const url = new URL(next, browser.baseUrl);
    if (url.origin !== new URL(browser.baseUrl).origin) return { left: url };
    if (url.pathname === '/signin') {
      next = await signIn(browser, url.searchParams.get('return_to') ?? '/', person);
      continue;
    }
    const res = await browser.get(url.pathname + url.search);
    if (res.status === 200) return { page: res };
    if (!res.location)
      throw new Error(`GET ${url.pathname} answered ${res.status}: ${res.text.slice(0, 300)}`);
    next = res.location;
  }
  throw new Error('too many redirects');
}

/** Follows redirects as `follow` does, expecting them to leave Ferry: the URL they left for. */
export async function followToClient(browser: Browser, start: string, person: Person): Promise<URL> {
  const r = await follow(browser, start, person);
  if ('left' in r) return r.left;
  throw new Error(`stayed on Ferry: a page answered 200: ${r.page.text.slice(0, 300)}`);
}

/** The person confirms a device's user code in the browser (code entry, confirmation, sign-in). */
export async function confirmDevice(browser: Browser, verificationUriComplete: string, person: Person) {
  const complete = new URL(verificationUriComplete);
  const page = await browser.get(complete.pathname + complete.search);
  expect(page.status).toBe(200);
  const userCode = complete.searchParams.get('user_code') ?? '';
  const confirm = await browser.post('/oidc/device', {
    xsrf: inputValue(page.text, 'xsrf') ?? '',
    user_code: userCode,
  });
  expect(confirm.status).toBe(200);
  const res = await browser.post('/oidc/device', {
    xsrf: inputValue(confirm.text, 'xsrf') ?? '',
    user_code: inputValue(confirm.text, 'user_code') ?? '',
    confirm: 'yes',
  });
  expect(res.location).toBeTruthy();
  const done = await follow(browser, res.location!, person);
  if (!('page' in done)) throw new Error(`the device confirmation left Ferry for ${done.left.href}`);
  return done.page;
}
