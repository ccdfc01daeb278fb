import { canonicalJson } from '../audit/canonical-json.js';
import { InvalidInput } from '../errors.js';

/**
 * What IAM Identity Center refuses in a permission set, checked before any call so the operator hears
 * the rule instead of a half-applied file (sso-admin API reference: CreatePermissionSet,
 * PutInlinePolicyToPermissionSet, AttachManagedPolicyToPermissionSet, PutPermissionsBoundaryToPermissionSet;
 * Identity Center quotas).
 */
export const PERMISSION_SET_NAME = /^[\w+=,.@-]{1,32}$/;
export const MIN_PERMISSION_SET_SECONDS = 3600;
export const MAX_PERMISSION_SET_SECONDS = 43_200;
/** Identity Center quota: AWS managed plus customer managed policies attached to one permission set. */
export const MAX_MANAGED_POLICIES = 20;
/** Identity Center quota: the inline policy of one permission set, in characters. */
export const MAX_INLINE_POLICY_CHARS = 32_768;
// The API's pattern also allows tab, LF and CR; the one-line form people write never needs them.
const DESCRIPTION = /^[\u0020-\u007E\u00A1-\u00FF]{1,700}$/;
const RELAY_STATE = /^[a-zA-Z0-9&$@#\\/%?=~\-_'"|!:,.;*+[\] (){}]{1,240}$/;
const MANAGED_POLICY_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::aws:policy\/([\w+=,.@-]+\/)*[\w+=,.@-]{1,128}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
const POLICY_PATH = /^\/([\x21-\x7e]{0,510}\/)?$/;

export interface CustomerManagedPolicyRef {
  name: string;
  path: string;
}

export type PermissionsBoundary =
  | { managedPolicyArn: string }
  | { customerManagedPolicy: CustomerManagedPolicyRef };

/** A permission set, normalised: lists sorted, the inline policy in canonical JSON, duration ISO-8601. */
export interface PermissionSetSpec {
  name: string;
  description: string | null;
  /** ISO-8601, e.g. PT4H */
  sessionDuration: string;
  relayState: string | null;
  managedPolicies: string[];
  customerManagedPolicies: CustomerManagedPolicyRef[];
  inlinePolicy: string | null;
  permissionsBoundary: PermissionsBoundary | null;
}

/** What an operator may write: durations as PT4H, 4h or seconds; the inline policy as JSON text or an object. */
export interface PermissionSetInput {
  name: string;
  description?: string | null;
  sessionDuration?: string | number;
  relayState?: string | null;
  managedPolicies?: string[];
  customerManagedPolicies?: Array<{ name: string; path?: string }>;
  inlinePolicy?: string | Record<string, unknown> | null;
  permissionsBoundary?:
    | { managedPolicyArn: string }
    | { customerManagedPolicy: { name: string; path?: string } }
    | null;
}

/** The permission set is refused; `rule` is the rule it breaks, as AWS states it. */
export class PermissionSetRefused extends InvalidInput {
  readonly code = 'permission-set-invalid';
  constructor(
    readonly permissionSet: string,
    field: string,
    readonly rule: string,
  ) {
    super(`permission set ${JSON.stringify(permissionSet)}: ${field}: ${rule}`, field);
    this.name = 'PermissionSetRefused';
  }
}

/** PT1H, PT1H30M, PT3600S → seconds; null when not ISO-8601 time-only. */
export function isoDurationSeconds(text: string): number | null {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(text);
  if (!m || (m[1] === undefined && m[2] === undefined && m[3] === undefined)) return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** Seconds → the shortest ISO-8601 form (PT4H, PT1H30M). */
export function isoDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}` || 'PT0S';
}

function sessionSeconds(name: string, value: string | number | undefined): number {
  if (value === undefined) return MIN_PERMISSION_SET_SECONDS;
  let seconds: number | null = null;
  if (typeof value === 'number') seconds = Number.isInteger(value) ? value : null;
  else if (/^PT/.test(value)) seconds = isoDurationSeconds(value);
  else {
    const m = /^(\d+)(h|m|s)$/.exec(value);
    if (m) seconds = Number(m[1]) * ({ h: 3600, m: 60, s: 1 } as const)[m[2] as 'h' | 'm' | 's'];
  }
  if (seconds === null)
    throw new PermissionSetRefused(
      name,
      'sessionDuration',
      `must be an ISO-8601 duration such as PT4H (got ${JSON.stringify(value)})`,
    );
  if (seconds < MIN_PERMISSION_SET_SECONDS || seconds > MAX_PERMISSION_SET_SECONDS)
    throw new PermissionSetRefused(name, 'sessionDuration', 'must be between PT1H and PT12H');
  return seconds;
}

function policyRef(
  name: string,
  field: string,
  ref: { name: string; path?: string },
): CustomerManagedPolicyRef {
  if (typeof ref?.name !== 'string' || !POLICY_NAME.test(ref.name))
    throw new PermissionSetRefused(name, `${field}.name`, 'a policy name must match [\\w+=,.@-]{1,128}');
  const path = ref.path ?? '/';
  if (!POLICY_PATH.test(path))
    throw new PermissionSetRefused(
      name,
      `${field}.path`,
      'a policy path must start and end with / (at most 512 characters)',
    );
  return { name: ref.name, path };
}

/**
 * An identity-based policy document as IAM accepts it: a JSON object with Version and Statement
 * (one or a list), each statement with Effect Allow/Deny, Action or NotAction, Resource or NotResource,
 * and no Principal (that belongs in resource policies).
 */
export function checkPolicyDocument(
  name: string,
  field: string,
  policy: string | Record<string, unknown>,
): string {
  let doc: unknown;
  if (typeof policy === 'string') {
    try {
      doc = JSON.parse(policy);
    } catch {
      throw new PermissionSetRefused(name, field, 'is not valid JSON');
    }
  } else doc = policy;
  const text = canonicalJson(doc);
  if (text.length > MAX_INLINE_POLICY_CHARS)
    throw new PermissionSetRefused(
      name,
      field,
      `is ${text.length} characters; Identity Center allows at most ${MAX_INLINE_POLICY_CHARS}`,
    );
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new PermissionSetRefused(name, field, 'must be a JSON object');
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d))
    if (!['Version', 'Id', 'Statement'].includes(key))
      throw new PermissionSetRefused(
        name,
        field,
        `unknown top-level key ${key} (allowed: Version, Id, Statement)`,
      );
  if (d.Version !== '2012-10-17' && d.Version !== '2008-10-17')
    throw new PermissionSetRefused(name, `${field}.Version`, 'must be "2012-10-17"');
  const statements = Array.isArray(d.Statement)
    ? d.Statement
    : d.Statement === undefined
      ? []
      : [d.Statement];
  if (statements.length === 0)
    throw new PermissionSetRefused(name, `${field}.Statement`, 'must hold at least one statement');
  statements.forEach((s: unknown, i) => {
    const at = `${field}.Statement[${i}]`;
    if (s === null || typeof s !== 'object' || Array.isArray(s))
      throw new PermissionSetRefused(name, at, 'must be an object');
    const st = s as Record<string, unknown>;
    if (st.Effect !== 'Allow' && st.Effect !== 'Deny')
      throw new PermissionSetRefused(name, `${at}.Effect`, 'must be Allow or Deny');
    if ((st.Action === undefined) === (st.NotAction === undefined))
      throw new PermissionSetRefused(name, at, 'needs exactly one of Action or NotAction');
    if ((st.Resource === undefined) === (st.NotResource === undefined))
      throw new PermissionSetRefused(name, at, 'needs exactly one of Resource or NotResource');
    if (st.Principal !== undefined || st.NotPrincipal !== undefined)
      throw new PermissionSetRefused(name, at, 'Principal is not allowed in an identity-based policy');
    for (const key of ['Action', 'NotAction', 'Resource', 'NotResource'] as const) {
      const v = st[key];
      if (v === undefined) continue;
      const list = Array.isArray(v) ? v : [v];
      if (list.length === 0 || list.some((x) => typeof x !== 'string' || x.length === 0))
        throw new PermissionSetRefused(name, `${at}.${key}`, 'must be a non-empty string or list of strings');
    }
  });
  return text;
}

/** Checks a permission set against every rule Identity Center enforces and returns it normalised. */
export function checkPermissionSet(input: PermissionSetInput): PermissionSetSpec {
  const name = input.name;
  if (typeof name !== 'string' || !PERMISSION_SET_NAME.test(name))
    throw new PermissionSetRefused(String(name), 'name', 'must match [\\w+=,.@-]{1,32}');
  const description = input.description ?? null;
  if (description !== null && !DESCRIPTION.test(description))
    throw new PermissionSetRefused(
      name,
      'description',
      'must be 1-700 characters of printable ASCII or Latin-1',
    );
  const relayState = input.relayState ?? null;
  if (relayState !== null && !RELAY_STATE.test(relayState))
    throw new PermissionSetRefused(name, 'relayState', 'must be 1-240 URL characters');
  const managedPolicies = [...new Set(input.managedPolicies ?? [])].sort();
  for (const arn of managedPolicies)
    if (!MANAGED_POLICY_ARN.test(arn))
      throw new PermissionSetRefused(
        name,
        'managedPolicies',
        `${arn} is not an AWS managed policy ARN (arn:aws:iam::aws:policy/…)`,
      );
  const customerManagedPolicies = (input.customerManagedPolicies ?? [])
    .map((r, i) => policyRef(name, `customerManagedPolicies[${i}]`, r))
    .sort((a, b) => `${a.path}${a.name}`.localeCompare(`${b.path}${b.name}`));
  const attached = managedPolicies.length + customerManagedPolicies.length;
  if (attached > MAX_MANAGED_POLICIES)
    throw new PermissionSetRefused(
      name,
      'managedPolicies',
      `${attached} managed policies; Identity Center allows at most ${MAX_MANAGED_POLICIES} per permission set (AWS and customer managed together)`,
    );
  const inline = input.inlinePolicy;
  const inlinePolicy =
    inline === undefined || inline === null || inline === ''
      ? null
      : checkPolicyDocument(name, 'inlinePolicy', inline);
  let permissionsBoundary: PermissionsBoundary | null = null;
  const b = input.permissionsBoundary;
  if (b) {
    if ('managedPolicyArn' in b && !('customerManagedPolicy' in b)) {
      if (!MANAGED_POLICY_ARN.test(b.managedPolicyArn))
        throw new PermissionSetRefused(
          name,
          'permissionsBoundary.managedPolicyArn',
          'must be an AWS managed policy ARN',
        );
      permissionsBoundary = { managedPolicyArn: b.managedPolicyArn };
    } else if ('customerManagedPolicy' in b && !('managedPolicyArn' in b)) {
      permissionsBoundary = {
        customerManagedPolicy: policyRef(
          name,
          'permissionsBoundary.customerManagedPolicy',
          b.customerManagedPolicy,
        ),
      };
    } else
      throw new PermissionSetRefused(
        name,
        'permissionsBoundary',
        'give exactly one of managedPolicyArn or customerManagedPolicy',
      );
  }
  return {
    name,
    description,
    sessionDuration: isoDuration(sessionSeconds(name, input.sessionDuration)),
    relayState,
    managedPolicies,
    customerManagedPolicies,
    inlinePolicy,
    permissionsBoundary,
  };
}

/** How an account or OU is named: a 12-digit id, ou-…/r-… ids, or an OU path such as /Root/Workloads. */
export type ScopeRef = { type: 'account'; ref: string } | { type: 'ou'; ref: string };

export function parseScope(text: string): ScopeRef {
  if (/^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$/.test(text) || text.startsWith('/'))
    return { type: 'ou', ref: text };
  return { type: 'account', ref: text };
}
