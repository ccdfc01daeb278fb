import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import { PROXY_CALLBACK_PATH, PROXY_CLIENT_ID } from '../federation/oidc/proxy-client.js';
import type { MasterKey } from '../keys/master-key.js';

/** How long a browser may take between leaving for Ferry's sign-in and coming back. */
const SIGNIN_TTL_MS = 10 * 60_000;

export class ProxySigninFailed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ProxySigninFailed';
  }
}

interface PendingSignin {
  state: string;
  verifier: string;
  returnTo: string;
  exp: number;
}

/** A path on the app's own origin, never another origin (`//evil`, `/\evil`, absolute URLs). */
export function safeReturnPath(path: string | undefined): string {
  if (!path?.startsWith('/') || path.startsWith('//') || path.startsWith('/\\')) return '/';
  if (path.startsWith('/.ferry/')) return '/';
  return path;
}

/**
 * The browser side of the proxy: OpenID Connect code flow with PKCE against Ferry's own provider, as
 * the confidential client `ferry-proxy`. What the round trip needs (state, verifier, where to return)
 * travels sealed in a cookie on the app's origin, so any proxy instance can finish it.
 */
export class ProxySignin {
  constructor(
    private readonly masterKey: MasterKey,
    private readonly clock: Clock,
    /** Ferry's issuer URL (its public URL) */
    private readonly issuer: () => string,
    private readonly clientSecret: string,
  ) {}

  /** Where to send the browser, and the sealed cookie value to set on the app's origin. */
  start(origin: string, returnTo: string): { location: string; cookie: string } {
    const pending: PendingSignin = {
      state: randomBytes(16).toString('base64url'),
      verifier: randomBytes(32).toString('base64url'),
      returnTo: safeReturnPath(returnTo),
      exp: this.clock.now().getTime() + SIGNIN_TTL_MS,
    };
    const challenge = createHash('sha256').update(pending.verifier).digest('base64url');
    const url = new URL(`${this.#issuer()}/oidc/auth`);
    url.search = new URLSearchParams({
      client_id: PROXY_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${origin}${PROXY_CALLBACK_PATH}`,
      state: pending.state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    return {
      location: url.toString(),
      cookie: this.masterKey.seal(JSON.stringify(pending), context(origin)),
    };
  }

  /**
   * Checks the callback against the sealed cookie and redeems the code at Ferry's token endpoint.
   * Returns the access token that becomes the proxy's session cookie, and where to go back to.
   */
  async finish(
    origin: string,
    query: URLSearchParams,
    sealed: string | undefined,
  ): Promise<{ accessToken: string; expiresIn: number; returnTo: string }> {
    if (!sealed)
      throw new ProxySigninFailed('the sign-in was not started here (no sign-in cookie): try again');
    let pending: PendingSignin;
    try {
      pending = JSON.parse(this.masterKey.unseal(sealed, context(origin))) as PendingSignin;
    } catch {
      throw new ProxySigninFailed('the sign-in cookie is not valid for this app: try again');
    }
    if (pending.exp < this.clock.now().getTime())
      throw new ProxySigninFailed('the sign-in took too long: try again');
    const error = query.get('error');
    if (error)
      throw new ProxySigninFailed(`Ferry refused the sign-in: ${query.get('error_description') ?? error}`);
    const state = Buffer.from(query.get('state') ?? '');
    const expected = Buffer.from(pending.state);
    if (state.length !== expected.length || !timingSafeEqual(state, expected))
      throw new ProxySigninFailed('the sign-in answer does not belong to this browser (state mismatch)');
    const code = query.get('code');
    if (!code) throw new ProxySigninFailed('the sign-in answer carries no code');
    const res = await fetch(`${this.#issuer()}/oidc/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${PROXY_CLIENT_ID}:${this.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: `${origin}${PROXY_CALLBACK_PATH}`,
        code_verifier: pending.verifier,
      }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
      error_description?: string;
    };
    if (!res.ok || !body.access_token)
      throw new ProxySigninFailed(
        `Ferry's token endpoint refused the code: ${body.error_description ?? body.error ?? `HTTP ${res.status}`}`,
      );
    return { accessToken: body.access_token, expiresIn: body.expires_in ?? 900, returnTo: pending.returnTo };
  }

  #issuer(): string {
    return this.issuer().replace(/\/+$/, '');
  }
}

const context = (origin: string) => `proxy-signin:${origin}`;
