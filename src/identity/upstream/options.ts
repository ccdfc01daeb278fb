/** How Ferry signs people in with Microsoft Entra ID (built from `upstream.entra` in the config). */
export interface EntraOptions {
  /** https://login.microsoftonline.com/<tenant id>/v2.0, or …/organizations/v2.0 for several tenants */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** where Entra sends the browser back: <publicUrl>/signin/entra/callback unless configured */
  redirectUri: () => string;
  /** lower-case tenant ids whose people may sign in */
  allowedTenants: string[];
  /** `provisioned`: only users SCIM (or an admin) created; `jit`: create the user on first sign-in */
  userMapping: 'provisioned' | 'jit';
  /** make the user's membership of Ferry groups that carry an Entra object id match the token */
  syncGroups: boolean;
  /** Microsoft Graph, read when the token has too many groups to carry them (overage) */
  graphUrl: string;
  /** send requests meant for https://login.microsoftonline.com here instead (a local test IdP) */
  loginEndpoint?: string;
  scopes: string;
  clockToleranceSeconds: number;
  /** how long a sign-in sent to Entra may take to come back */
  requestLifetimeMs: number;
  /** the button's words on Ferry's sign-in page */
  label: string;
}

export const ENTRA_ORIGIN = 'https://login.microsoftonline.com';

/** Microsoft's placeholders for "any tenant": the tenant is then checked against allowedTenants. */
export const MULTI_TENANT_SEGMENTS = ['organizations', 'common', '{tenantid}'];

/** The tenant id named in a single-tenant issuer URL, or null for a multi-tenant one. */
export function tenantOfIssuer(issuer: string): string | null {
  const segment = new URL(issuer).pathname.split('/').filter(Boolean)[0] ?? '';
  if (MULTI_TENANT_SEGMENTS.includes(segment.toLowerCase())) return null;
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(segment)
    ? segment.toLowerCase()
    : null;
}
