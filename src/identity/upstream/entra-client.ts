import * as oidc from 'openid-client';
import { UpstreamSigninError } from './errors.js';
import { ENTRA_ORIGIN, type EntraOptions } from './options.js';

export interface AuthorizationChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

export interface VerifiedSignin {
  claims: Record<string, unknown>;
  /** for Microsoft Graph (group overage); never stored or logged */
  accessToken: string | null;
}

/**
 * The OpenID Connect relying party for Entra ID, on openid-client: discovery (cached, retried after a
 * failure), the authorization URL, and the code exchange whose ID token openid-client verifies
 * (signature by the tenant's JWKS, issuer including Entra's `{tenantid}` form, audience, nonce,
 * exp/iat with a clock tolerance).
 */
export class EntraClient {
  private configuration: Promise<oidc.Configuration> | null = null;

  constructor(private readonly options: EntraOptions) {}

  private readonly fetcher: oidc.CustomFetch = (url, init) => fetch(this.rewrite(url), init as RequestInit);

  /** Where a request to login.microsoftonline.com really goes (the local IdP in tests). */
  private rewrite(url: string): string {
    const { loginEndpoint } = this.options;
    if (!loginEndpoint || !url.startsWith(`${ENTRA_ORIGIN}/`)) return url;
    return loginEndpoint.replace(/\/$/, '') + url.slice(ENTRA_ORIGIN.length);
  }

  private configure(): Promise<oidc.Configuration> {
    if (!this.configuration) {
      const { issuer, clientId, clientSecret, clockToleranceSeconds } = this.options;
      const insecure =
        new URL(issuer).protocol === 'http:' || this.options.loginEndpoint?.startsWith('http:');
      const pending = oidc
        .discovery(
          new URL(issuer),
          clientId,
          { client_secret: clientSecret, [oidc.clockTolerance]: clockToleranceSeconds },
          oidc.ClientSecretPost(clientSecret),
          {
            [oidc.customFetch]: this.fetcher,
            // openid-client trusts the TLS channel for an ID token from the token endpoint and skips
            // its signature unless asked: Ferry asks, so the tenant's JWKS always vouches for it.
            execute: [oidc.enableNonRepudiationChecks, ...(insecure ? [oidc.allowInsecureRequests] : [])],
            timeout: 10,
          },
        )
        .then((config) => {
          config[oidc.customFetch] = this.fetcher;
          return config;
        });
      // A failed discovery is not cached: the next sign-in tries again.
      pending.catch(() => {
        if (this.configuration === pending) this.configuration = null;
      });
      this.configuration = pending;
    }
    return this.configuration.catch((err: unknown) => {
      throw new UpstreamSigninError('idp-unavailable', `discovery failed: ${describe(err)}`);
    });
  }

  async authorizationUrl(checks: AuthorizationChecks): Promise<string> {
    const config = await this.configure();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.options.redirectUri(),
      scope: this.options.scopes,
      response_type: 'code',
      response_mode: 'query',
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    });
    return this.rewrite(url.href);
  }

  /** Exchanges the code and verifies the ID token; every failure becomes an UpstreamSigninError. */
  async exchange(callbackUrl: URL, checks: AuthorizationChecks): Promise<VerifiedSignin> {
    const config = await this.configure();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        pkceCodeVerifier: checks.codeVerifier,
        idTokenExpected: true,
      });
    } catch (err) {
      throw classify(err);
    }
    const claims = tokens.claims();
    if (!claims) throw new UpstreamSigninError('token-invalid', 'token response without an ID token');
    return { claims: { ...claims }, accessToken: tokens.access_token ?? null };
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}`.slice(0, 300);
  }
  return String(err).slice(0, 300);
}

/** Entra's own error text ("AADSTS70008: The provided authorization code … expired") */
export function entraErrorText(error: string, description: string | undefined): string {
  const first = (description ?? '').split(/\r?\n/)[0]!.trim().slice(0, 300);
  return first ? `${error}: ${first}` : error;
}

function classify(err: unknown): UpstreamSigninError {
  if (err instanceof oidc.ResponseBodyError) {
    const text = entraErrorText(err.error, err.error_description);
    return new UpstreamSigninError('idp-error', `token endpoint: ${text}`, `(${text})`);
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    const text = entraErrorText(err.error, err.error_description);
    return new UpstreamSigninError('idp-error', `authorization response: ${text}`, `(${text})`);
  }
  if (err instanceof oidc.ClientError) {
    const cause = err.cause as { claim?: unknown; code?: unknown } | undefined;
    const claim = typeof cause?.claim === 'string' ? ` (${cause.claim})` : '';
    const code = err.code ?? '';
    if (
      code === 'OAUTH_TIMEOUT' ||
      code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
      code === 'OAUTH_RESPONSE_IS_NOT_JSON'
    ) {
      return new UpstreamSigninError('idp-unavailable', describe(err));
    }
    const inner = err.cause instanceof Error ? `; ${err.cause.message}` : '';
    return new UpstreamSigninError('token-invalid', `${describe(err)}${claim}${inner}`.slice(0, 400));
  }
  if (err instanceof UpstreamSigninError) return err;
  // fetch failures (connection refused, DNS) are TypeErrors
  return new UpstreamSigninError('idp-unavailable', describe(err));
}
