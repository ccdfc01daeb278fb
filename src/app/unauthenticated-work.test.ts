import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

const PASSWORD = 'correct horse battery staple';
const ADMIN = { actor: { type: 'operator' as const, name: 'bounded-work-test' } };

/** A CSRF pair for posting sign-in forms: the cookie and the same value for the field. */
const csrfPair = () => {
  const token = randomBytes(32).toString('base64url');
  return { cookie: `ferry_csrf=${token}`, token };
};

describe.each(ENGINES)('unauthenticated work is bounded on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      // One attempt at a time and eight waiting: a small flood already fills the queue. Sources are
      // told apart by X-Forwarded-For, as behind a load balancer.
      config: { http: { trustProxy: true }, signin: { requireMfa: false, hashConcurrency: 1, hashQueue: 8 } },
    });
    await ferry.services.users.create(ADMIN, { userName: 'legit@contoso.example', password: PASSWORD });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const signin = (userName: string, password: string, ip: string, extra = '') => {
    const { cookie, token } = csrfPair();
    return fetch(new URL('/signin', ferry.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, 'x-forwarded-for': ip },
      body:
        new URLSearchParams({ csrf: token, username: userName, password, return_to: '/account' }).toString() +
        extra,
    });
  };

  it.each([
    ['POST', '/api/v1/users'],
    ['POST', '/api/v1/aws/credentials'],
    ['PUT', '/api/v1/proxy/apps/wiki'],
  ])(
    'answers %s %s without credentials 401 before reading its body (malformed or huge)',
    async (method, path) => {
      for (const body of ['{"not json', `{"x":"${'a'.repeat(900 * 1024)}"}`]) {
        const res = await ferry.api(path, {
          auth: false,
          method,
          body,
          headers: { 'content-type': 'application/json' },
        });
        expect(res.status).toBe(401);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
      }
    },
  );

  it('refuses a sign-in form of more than 16 KiB with 413, evaluating nothing', async () => {
    const res = await signin(
      'legit@contoso.example',
      'wrong-password',
      '203.0.113.50',
      `&pad=${'a'.repeat(20 * 1024)}`,
    );
    expect(res.status).toBe(413);
    const rows = await ferry.services.store.db
      .selectFrom('signin_throttle')
      .select('key')
      .where('key', '=', 'address:203.0.113.50')
      .execute();
    expect(rows).toEqual([]);
  });

  it('answers a flood of 200 anonymous sign-ins with fast 503s beyond the queue, stays healthy, and lets the legitimate user in', async () => {
    const flood = Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        signin(`nobody-${i}@contoso.example`, 'guess-password', `198.18.${i >> 8}.${i & 255}`).then(
          async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.text() }),
        ),
      ),
    );
    // During the flood the process answers health checks…
    const health = await fetch(new URL('/healthz', ferry.url));
    expect(health.status).toBe(200);
    // …and the person who knows their password gets in (retrying when told to).
    let legit: Response | undefined;
    for (let i = 0; i < 60; i++) {
      legit = await signin('legit@contoso.example', PASSWORD, '192.0.2.10');
      if (legit.status !== 503) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(legit?.status).toBe(303);
    expect(legit?.headers.get('location')).toBe('/account');

    const answers = await flood;
    const busy = answers.filter((a) => a.status === 503);
    // The queue holds 9 (1 running + 8 waiting): most of the flood is turned away unevaluated…
    expect(busy.length).toBeGreaterThan(100);
    expect(busy.every((a) => a.retryAfter === '2')).toBe(true);
    // …and every other answer is the ordinary refusal, never an error.
    expect(answers.filter((a) => a.status !== 503).every((a) => a.status === 401)).toBe(true);
    const metrics = await (await fetch(new URL('/metrics', ferry.url))).text();
    expect(metrics).toMatch(/^ferry_signins_total\{outcome="busy"\} [1-9]\d*$/m);
  });
});
