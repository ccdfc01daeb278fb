import type * as OidcProviderModule from 'oidc-provider';

/**
 * oidc-provider (about 180 modules with Koa, ≈300 ms) is loaded when the provider is first built — at
 * the first OpenID request — not at start (ADR 0046). Code that runs only inside the provider (its
 * callbacks, the adapter during a request) reads the loaded module with `loadedOidcProvider()`.
 */
let loaded: typeof OidcProviderModule | undefined;

export async function loadOidcProvider(): Promise<typeof OidcProviderModule> {
  loaded ??= await import('oidc-provider');
  return loaded;
}

/** The module once `loadOidcProvider()` has run; undefined before (no provider, no request of it). */
export function loadedOidcProvider(): typeof OidcProviderModule | undefined {
  return loaded;
}
