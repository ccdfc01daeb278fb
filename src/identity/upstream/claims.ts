import { UpstreamSigninError } from './errors.js';

/** Who Entra ID says signed in, from a verified v2.0 ID token. */
export interface EntraIdentity {
  tenantId: string;
  objectId: string;
  /** preferred_username: the UPN for work accounts (display and JIT user name, never a key) */
  userName: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  /** group object ids from the `groups` claim; null when the token carries none */
  groups: string[] | null;
  /** true when Entra left the groups out (too many) and points at Microsoft Graph instead */
  groupsOverage: boolean;
  /** RFC 8176 / Entra authentication methods: pwd, mfa, rsa, fido, otp, … */
  amr: string[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** amr values are short lower-case words; anything else is dropped rather than stored */
const AMR_VALUE = /^[a-z][a-z0-9]{1,15}$/;

const str = (v: unknown, max = 256): string | null =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, max) : null;

export function entraIdentityOf(claims: Record<string, unknown>): EntraIdentity {
  const tenantId = str(claims.tid);
  const objectId = str(claims.oid);
  if (!tenantId || !GUID.test(tenantId)) {
    throw new UpstreamSigninError('token-invalid', 'ID token without a tenant id (tid)');
  }
  if (!objectId || !GUID.test(objectId)) {
    throw new UpstreamSigninError('token-invalid', 'ID token without an object id (oid)');
  }
  const names = claims._claim_names as Record<string, unknown> | undefined;
  const groupsOverage =
    typeof names === 'object' && names !== null && typeof names.groups === 'string' && !('groups' in claims);
  let groups: string[] | null = null;
  if (Array.isArray(claims.groups)) {
    groups = claims.groups.filter((g): g is string => typeof g === 'string' && GUID.test(g));
  }
  const amr = Array.isArray(claims.amr)
    ? [...new Set(claims.amr.filter((m): m is string => typeof m === 'string' && AMR_VALUE.test(m)))]
    : [];
  // Entra's `ngcmfa` (Windows Hello for Business and similar) is, in Microsoft's words, equivalent to mfa.
  if (amr.includes('ngcmfa') && !amr.includes('mfa')) amr.push('mfa');
  return {
    tenantId: tenantId.toLowerCase(),
    objectId: objectId.toLowerCase(),
    userName: str(claims.preferred_username) ?? str(claims.upn),
    displayName: str(claims.name),
    givenName: str(claims.given_name),
    familyName: str(claims.family_name),
    email: str(claims.email),
    groups,
    groupsOverage,
    amr: amr.slice(0, 10),
  };
}
