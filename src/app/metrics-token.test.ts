import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

const TOKEN = 'metrics-token-0123456789abcdef';

describe('/metrics with metrics.token', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry('sqlite', { config: { metrics: { token: TOKEN } } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  const metrics = (authorization?: string) =>
    fetch(new URL('/metrics', ferry.url), { headers: authorization ? { authorization } : {} });

  it('answers the scraper that sends the token', async () => {
    const res = await metrics(`Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^ferry_signins_total\{/m);
  });

  it.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer metrics-token-0123456789abcdeX'],
    ['an admin API token', 'admin'],
  ])('refuses %s with 401 and no metrics', async (_, authorization) => {
    const res = await metrics(authorization === 'admin' ? `Bearer ${ferry.adminToken}` : authorization);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.text()).not.toContain('ferry_');
  });

  it('still answers /healthz and /readyz without a token', async () => {
    expect((await fetch(new URL('/healthz', ferry.url))).status).toBe(200);
    expect((await fetch(new URL('/readyz', ferry.url))).status).toBe(200);
  });
});
