import { describe, expect, it } from 'vitest';
import { cspOrigin, FormDestinations, PAGE_CSP, pageCsp, withFormDestinations } from './csp.js';

const formAction = (policy: string) => /form-action ([^;]*)/.exec(policy)?.[1];

describe('form-action names exactly the destination', () => {
  it.each([
    ['https://app.example/callback?x=1', 'https://app.example'],
    ['http://localhost:8080/cb', 'http://localhost:8080'],
    ['https://APP.example:443/', 'https://app.example'],
    ['http://127.0.0.2:9000', 'http://127.0.0.2:9000'],
    ['javascript:alert(1)', null],
    ['data:text/html,x', null],
    ['*', null],
    ['https:', null],
    ['http://[::1]:8080/cb', null],
    ['/relative', null],
    ["https://a.example/'unsafe-inline'", 'https://a.example'],
  ])('%s → %s', (url, origin) => {
    expect(cspOrigin(url)).toBe(origin);
  });

  it('adds origins to form-action only, once each, and never a wildcard or a scheme', () => {
    const policy = pageCsp(['https://app.example/cb', 'https://app.example/other', 'https:', '*', 'x y;']);
    expect(formAction(policy)).toBe("'self' https://app.example");
    expect(policy.replace(' https://app.example', '')).toBe(PAGE_CSP);
    expect(pageCsp()).toBe(PAGE_CSP);
  });

  it("replaces 'none' instead of combining it with a source", () => {
    expect(withFormDestinations("default-src 'none'; form-action 'none'", ['https://sp.example/acs'])).toBe(
      "default-src 'none'; form-action https://sp.example",
    );
  });

  it('asks the resolver that owns the return path, following Ferry’s own sign-in pages inward', async () => {
    const destinations = new FormDestinations();
    const asked: string[] = [];
    destinations.register('/oidc/interaction/', async (path) => {
      asked.push(path);
      return path.endsWith('/good') ? ['http://localhost:4000/callback'] : [];
    });
    destinations.register('/broken/', async () => {
      throw new Error('store down');
    });
    await expect(destinations.originsFor('/oidc/interaction/good')).resolves.toEqual([
      'http://localhost:4000',
    ]);
    await expect(
      destinations.originsFor(
        `/signin/security-key?return_to=${encodeURIComponent('/oidc/interaction/good')}`,
      ),
    ).resolves.toEqual(['http://localhost:4000']);
    await expect(destinations.originsFor('/oidc/interaction/unknown')).resolves.toEqual([]);
    await expect(destinations.originsFor('/broken/x')).resolves.toEqual([]);
    await expect(destinations.originsFor('/account')).resolves.toEqual([]);
    await expect(destinations.originsFor('//evil.example/oidc/interaction/good')).resolves.toEqual([]);
    await expect(destinations.originsFor(undefined)).resolves.toEqual([]);
    expect(asked).toEqual(['/oidc/interaction/good', '/oidc/interaction/good', '/oidc/interaction/unknown']);
  });
});
