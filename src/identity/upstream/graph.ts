import { UpstreamSigninError } from './errors.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Group overage: when a person is in more groups than fit in a token, Entra leaves `groups` out and
 * names a source in `_claim_names`/`_claim_sources`. Microsoft asks clients to ignore that (legacy
 * Azure AD Graph) URL and call Microsoft Graph instead: `POST /me/getMemberObjects` returns every group
 * the person is in, transitively, as object ids.
 */
export async function memberGroupIds(graphUrl: string, accessToken: string | null): Promise<string[]> {
  if (!accessToken) {
    throw new UpstreamSigninError(
      'groups-unavailable',
      'group overage but no access token for Microsoft Graph',
    );
  }
  const url = `${graphUrl.replace(/\/$/, '')}/v1.0/me/getMemberObjects`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify({ securityEnabledOnly: true }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new UpstreamSigninError(
      'groups-unavailable',
      `Microsoft Graph unreachable: ${(err as Error).message}`,
    );
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
    throw new UpstreamSigninError(
      'groups-unavailable',
      `Microsoft Graph getMemberObjects answered ${res.status}${body?.error?.code ? ` ${body.error.code}` : ''}`,
    );
  }
  const body = (await res.json().catch(() => null)) as { value?: unknown } | null;
  if (!body || !Array.isArray(body.value)) {
    throw new UpstreamSigninError('groups-unavailable', 'Microsoft Graph getMemberObjects: no value array');
  }
  return body.value
    .filter((v): v is string => typeof v === 'string' && GUID.test(v))
    .map((v) => v.toLowerCase());
}
