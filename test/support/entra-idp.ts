import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';

/**
 * A local stand-in for Microsoft Entra ID's v2.0 endpoints and the slice of Microsoft Graph Ferry
 * reads, on loopback: discovery (single-tenant, and `organizations` whose issuer is the
 * `{tenantid}` template), authorize (signs in whoever the test chose, or answers an AADSTS error),
 * token (client secret, one-time code, redirect URI and PKCE checked), JWKS, and Graph's
 * `POST /v1.0/me/getMemberObjects` and `GET /v1.0/me/memberOf`. ID tokens are shaped like Entra's
 * (ver 2.0, oid, tid, preferred_username, groups or the overage `_claim_names`/`_claim_sources`, amr).
 *
 * With `issuerOrigin: 'entra'` (the default) issuers and endpoint URLs say https://login.microsoftonline.com
 * exactly as Entra's do; Ferry's `loginEndpoint` sends those requests here. With `'loopback'` they name
 * this server itself.
 */

export const ENTRA = 'https://login.microsoftonline.com';

export interface EntraAccount {
  oid: string;
  /** defaults to the IdP's home tenant */
  tid?: string;
  preferredUsername: string;
  name?: string;
  email?: string;
  /** group object ids */
  groups?: string[];
  /** leave `groups` out of the token and point at Graph, as Entra does past 200 groups */
  overage?: boolean;
  amr?: string[];
}

export type Tamper =
  | 'bad-signature' // signed by a key that is not in the JWKS, under a kid that is
  | 'wrong-audience'
  | 'expired'
  | 'nonce'
  | 'issuer-of-other-tenant'; // iss names a different tenant than tid

export interface NextSignin {
  account: EntraAccount;
  tamper?: Tamper;
  /** answer the authorization request with this error instead of a code */
  error?: { error: string; error_description: string };
  /** Microsoft Graph answers 503 for this sign-in's access token */
  graphDown?: boolean;
}

interface IssuedCode {
  signin: NextSignin;
  clientId: string;
  redirectUri: string;
  nonce: string | undefined;
  codeChallenge: string;
  segment: string;
}

export interface EntraIdp {
  /** http://127.0.0.1:<port> */
  url: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** the issuer Ferry configures for the home tenant */
  issuer: string;
  /** Microsoft Graph's base URL on this server */
  graphUrl: string;
  /** who the next authorization requests sign in, and how */
  signInAs(next: NextSignin): void;
  /** requests that reached each endpoint, for assertions */
  calls: { authorize: number; token: number; graph: string[] };
  close(): Promise<void>;
}

const b64url = (b: Buffer) => b.toString('base64url');

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): undefined {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
  return undefined;
}

/** Entra's error body: `error`, `error_description` starting with the AADSTS code, `error_codes`. */
function aadsts(res: ServerResponse, status: number, error: string, code: number, text: string): undefined {
  return json(res, status, {
    error,
    error_description: `AADSTS${code}: ${text} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: randomUUID(),
    correlation_id: randomUUID(),
  });
}

export async function startEntraIdp(
  options: { tenantId?: string; clientId?: string; issuerOrigin?: 'entra' | 'loopback' } = {},
): Promise<EntraIdp> {
  const tenantId = options.tenantId ?? randomUUID();
  const clientId = options.clientId ?? randomUUID();
  const clientSecret = `${randomBytes(3).toString('hex')}~${randomBytes(24).toString('base64url')}`;
  const kid = randomBytes(12).toString('base64url');
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const impostor = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = {
    ...signing.publicKey.export({ format: 'jwk' }),
    kid,
    use: 'sig',
    kty: 'RSA',
    alg: 'RS256',
  };
  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, NextSignin>();
  let next: NextSignin | null = null;
  const calls = { authorize: 0, token: 0, graph: [] as string[] };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => json(res, 500, { error: 'server_error', detail: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const origin = options.issuerOrigin === 'loopback' ? url : ENTRA;
  const issuerOf = (tid: string) => `${origin}/${tid}/v2.0`;

  async function idToken(code: IssuedCode): Promise<string> {
    const { account, tamper } = code.signin;
    const tid = account.tid ?? tenantId;
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      ver: '2.0',
      iss: issuerOf(tamper === 'issuer-of-other-tenant' ? randomUUID() : tid),
      sub: b64url(createHash('sha256').update(`${account.oid}:${code.clientId}`).digest()).slice(0, 43),
      aud: tamper === 'wrong-audience' ? randomUUID() : code.clientId,
      iat: tamper === 'expired' ? now - 7200 : now,
      nbf: tamper === 'expired' ? now - 7200 : now,
      exp: tamper === 'expired' ? now - 3600 : now + 3600,
      oid: account.oid,
      tid,
      preferred_username: account.preferredUsername,
      name: account.name ?? account.preferredUsername,
      aio: b64url(randomBytes(24)),
      uti: b64url(randomBytes(16)),
      rh: '0.AAAA.',
    };
    if (code.nonce !== undefined) claims.nonce = tamper === 'nonce' ? 'a-nonce-ferry-never-sent' : code.nonce;
    if (account.email) claims.email = account.email;
    if (account.amr) claims.amr = account.amr;
    if (account.overage) {
      claims._claim_names = { groups: 'src1' };
      claims._claim_sources = {
        src1: { endpoint: `https://graph.windows.net/${tid}/users/${account.oid}/getMemberObjects` },
      };
    } else if (account.groups) {
      claims.groups = account.groups;
    }
    const key = tamper === 'bad-signature' ? impostor.privateKey : signing.privateKey;
    return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', url);
    const parts = u.pathname.split('/').filter(Boolean);
    if (parts[0] === 'graph') return graph(req, res, parts.slice(1).join('/'));
    const segment = parts[0] ?? '';
    const rest = parts.slice(1).join('/');
    const multi = segment === 'organizations' || segment === 'common';
    if (!multi && segment !== tenantId) {
      return aadsts(res, 400, 'invalid_tenant', 90002, `Tenant '${segment}' not found.`);
    }
    if (req.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      const base = `${origin}/${segment}`;
      return json(res, 200, {
        issuer: multi ? `${origin}/{tenantid}/v2.0` : issuerOf(tenantId),
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        token_endpoint_auth_methods_supported: [
          'client_secret_post',
          'private_key_jwt',
          'client_secret_basic',
        ],
        code_challenge_methods_supported: ['plain', 'S256'],
        claims_supported: [
          'sub',
          'iss',
          'aud',
          'exp',
          'iat',
          'nonce',
          'preferred_username',
          'name',
          'tid',
          'ver',
          'oid',
        ],
        tenant_region_scope: 'EU',
        cloud_instance_name: 'microsoftonline.com',
      });
    }
    if (req.method === 'GET' && rest === 'discovery/v2.0/keys') {
      return json(res, 200, { keys: [publicJwk] });
    }
    if (req.method === 'GET' && rest === 'oauth2/v2.0/authorize') return authorize(u, res, segment);
    if (req.method === 'POST' && rest === 'oauth2/v2.0/token') return token(req, res);
    return json(res, 404, { error: 'not_found' });
  }

  function authorize(u: URL, res: ServerResponse, segment: string): undefined {
    calls.authorize++;
    const q = u.searchParams;
    const redirectUri = q.get('redirect_uri') ?? '';
    if (q.get('client_id') !== clientId) {
      return aadsts(
        res,
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${q.get('client_id')}' was not found.`,
      );
    }
    if (
      q.get('response_type') !== 'code' ||
      q.get('code_challenge_method') !== 'S256' ||
      !q.get('code_challenge')
    ) {
      return aadsts(
        res,
        400,
        'invalid_request',
        900144,
        'The request must use response_type=code with an S256 code challenge.',
      );
    }
    const back = new URL(redirectUri);
    const state = q.get('state');
    if (!next) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set(
        'error_description',
        'AADSTS50058: A silent sign-in request was sent but no user is signed in.',
      );
    } else if (next.error) {
      back.searchParams.set('error', next.error.error);
      back.searchParams.set('error_description', next.error.error_description);
    } else {
      const code = `0.A${b64url(randomBytes(48))}`;
      codes.set(code, {
        signin: next,
        clientId,
        redirectUri,
        nonce: q.get('nonce') ?? undefined,
        codeChallenge: q.get('code_challenge') ?? '',
        segment,
      });
      back.searchParams.set('code', code);
      back.searchParams.set('session_state', randomUUID());
    }
    if (state !== null) back.searchParams.set('state', state);
    res.writeHead(302, { location: back.href, 'cache-control': 'no-store' });
    res.end();
    return undefined;
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls.token++;
    const form = new URLSearchParams(await readBody(req));
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [i, s] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      id = decodeURIComponent(i ?? '');
      secret = decodeURIComponent(s ?? '');
    }
    if (id !== clientId || secret !== clientSecret) {
      return aadsts(res, 401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    }
    if (form.get('grant_type') !== 'authorization_code') {
      return aadsts(
        res,
        400,
        'unsupported_grant_type',
        70003,
        'The app requested an unsupported grant type.',
      );
    }
    const code = codes.get(form.get('code') ?? '');
    codes.delete(form.get('code') ?? '');
    if (!code) {
      return aadsts(
        res,
        400,
        'invalid_grant',
        70008,
        'The provided authorization code or refresh token has expired or was already redeemed.',
      );
    }
    if (form.get('redirect_uri') !== code.redirectUri) {
      return aadsts(
        res,
        400,
        'invalid_grant',
        50148,
        'The redirect_uri does not match the one used in the authorization request.',
      );
    }
    const verifier = form.get('code_verifier') ?? '';
    if (b64url(createHash('sha256').update(verifier).digest()) !== code.codeChallenge) {
      return aadsts(
        res,
        400,
        'invalid_grant',
        501481,
        'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
      );
    }
    const accessToken = `eyJ0eXAiOiJKV1Qi.${b64url(randomBytes(32))}`;
    accessTokens.set(accessToken, code.signin);
    return json(res, 200, {
      token_type: 'Bearer',
      scope: 'openid profile email User.Read',
      expires_in: 3600,
      ext_expires_in: 3600,
      access_token: accessToken,
      id_token: await idToken(code),
    });
  }

  async function graph(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    calls.graph.push(`${req.method} /${path}`);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const signin = bearer ? accessTokens.get(bearer) : undefined;
    if (!signin) {
      return json(res, 401, {
        error: { code: 'InvalidAuthenticationToken', message: 'Access token validation failure.' },
      });
    }
    if (signin.graphDown) {
      return json(res, 503, { error: { code: 'serviceNotAvailable', message: 'Service unavailable.' } });
    }
    const groups = signin.account.groups ?? [];
    if (req.method === 'POST' && path === 'v1.0/me/getMemberObjects') {
      const body = JSON.parse((await readBody(req)) || '{}') as { securityEnabledOnly?: unknown };
      if (typeof body.securityEnabledOnly !== 'boolean') {
        return json(res, 400, {
          error: { code: 'Request_BadRequest', message: 'securityEnabledOnly is required.' },
        });
      }
      return json(res, 200, {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)',
        value: groups,
      });
    }
    if (req.method === 'GET' && path === 'v1.0/me/memberOf') {
      return json(res, 200, {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#directoryObjects',
        value: groups.map((id) => ({ '@odata.type': '#microsoft.graph.group', id })),
      });
    }
    return json(res, 404, { error: { code: 'Request_ResourceNotFound', message: `No route /${path}` } });
  }

  return {
    url,
    tenantId,
    clientId,
    clientSecret,
    issuer: issuerOf(tenantId),
    graphUrl: `${url}/graph`,
    signInAs(n) {
      next = n;
    },
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
