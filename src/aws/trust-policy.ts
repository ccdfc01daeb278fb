import { type Partition, SIGNIN_ENDPOINTS } from '../access/aws-accounts.js';

/** The AWS partitions Ferry federates into. */
export type AwsPartition = Partition;

export const AWS_PARTITIONS: readonly AwsPartition[] = ['aws', 'aws-us-gov', 'aws-cn'];

/** Each partition's SAML sign-in endpoint: where the console assertion is POSTed, and its `SAML:aud`. */
export const SAML_SIGN_IN_URLS: Readonly<Record<AwsPartition, string>> = SIGNIN_ENDPOINTS;

/** What a role must allow its SAML provider: sign-in, plus the SourceIdentity and session tags Ferry sends. */
export const SAML_TRUST_ACTIONS = [
  'sts:AssumeRoleWithSAML',
  'sts:SetSourceIdentity',
  'sts:TagSession',
] as const;

export type PolicyStatement = Record<string, unknown>;

/** An IAM policy document with `Statement` always as an array (IAM also allows a single object). */
export interface PolicyDocument {
  Version?: unknown;
  Statement: PolicyStatement[];
  [key: string]: unknown;
}

/** A policy document IAM returned could not be read as JSON; nothing was changed. */
export class UnreadablePolicyDocument extends Error {
  constructor(what: string, cause?: unknown) {
    super(`${what} is not a readable IAM policy document`, { cause });
    this.name = 'UnreadablePolicyDocument';
  }
}

/**
 * Reads a policy document as IAM returns it: URL-encoded JSON from real AWS, plain JSON from some emulators
 * (moto). Plain JSON is recognised by its opening brace, so a literal `%` inside it is never mis-decoded.
 */
export function decodePolicyDocument(raw: string, what = 'the policy'): PolicyDocument {
  let parsed: unknown;
  try {
    const trimmed = raw.trim();
    parsed = JSON.parse(trimmed.startsWith('{') ? trimmed : decodeURIComponent(trimmed));
  } catch (err) {
    throw new UnreadablePolicyDocument(what, err);
  }
  if (!isRecord(parsed)) throw new UnreadablePolicyDocument(what);
  const statement = parsed['Statement'];
  const statements =
    statement === undefined
      ? []
      : Array.isArray(statement)
        ? statement
        : isRecord(statement)
          ? [statement]
          : null;
  if (statements === null || !statements.every(isRecord)) throw new UnreadablePolicyDocument(what);
  return { ...parsed, Statement: statements };
}

/** The statement Ferry adds for a SAML provider that a role does not trust yet. */
export function samlTrustStatement(providerArn: string, audience: string): PolicyStatement {
  return {
    Effect: 'Allow',
    Principal: { Federated: providerArn },
    Action: [...SAML_TRUST_ACTIONS],
    Condition: { StringEquals: { 'SAML:aud': audience } },
  };
}

/**
 * Makes `document` let `providerArn` sign in with SAML to `audience`, keeping every other statement as it is.
 *
 * - A statement that already allows all of SAML_TRUST_ACTIONS to the provider for that audience leaves the
 *   document unchanged, whatever extra conditions an admin put on it.
 * - Otherwise the first Allow statement whose only principal is the provider is widened just enough: missing
 *   actions are added and the audience joins its `StringEquals SAML:aud` values; its other conditions stay.
 * - Otherwise the statement from samlTrustStatement is appended.
 *
 * `document` undefined means a new role. The input is never modified.
 */
export function withSamlTrust(
  document: PolicyDocument | undefined,
  providerArn: string,
  audience: string,
): { document: PolicyDocument; changed: boolean } {
  if (document === undefined) {
    return {
      document: { Version: '2012-10-17', Statement: [samlTrustStatement(providerArn, audience)] },
      changed: true,
    };
  }
  const base: PolicyDocument = { ...document, Version: document.Version ?? '2012-10-17' };
  if (document.Statement.some((s) => grantsSamlTrust(s, providerArn, audience))) {
    return { document: base, changed: false };
  }
  const index = document.Statement.findIndex((s) => isOnlyFederatedTo(s, providerArn));
  const existing = document.Statement[index];
  if (existing === undefined) {
    return {
      document: { ...base, Statement: [...document.Statement, samlTrustStatement(providerArn, audience)] },
      changed: true,
    };
  }
  const statements = [...document.Statement];
  statements[index] = widen(existing, audience);
  return { document: { ...base, Statement: statements }, changed: true };
}

/** SAML provider ARNs that `document` lets sign in with sts:AssumeRoleWithSAML (an Allow statement names them). */
export function trustedSamlProviders(document: PolicyDocument): string[] {
  const arns = new Set<string>();
  for (const statement of document.Statement) {
    if (!isPlainAllow(statement)) continue;
    if (!actionsOf(statement).some((pattern) => actionMatches(pattern, 'sts:AssumeRoleWithSAML'))) continue;
    for (const federated of federatedPrincipals(statement)) {
      if (SAML_PROVIDER_ARN.test(federated)) arns.add(federated);
    }
  }
  return [...arns];
}

const SAML_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:saml-provider\/[\w.-]+$/;

function grantsSamlTrust(statement: PolicyStatement, providerArn: string, audience: string): boolean {
  if (!isPlainAllow(statement) || !federatedPrincipals(statement).includes(providerArn)) return false;
  const actions = actionsOf(statement);
  if (!SAML_TRUST_ACTIONS.every((needed) => actions.some((pattern) => actionMatches(pattern, needed)))) {
    return false;
  }
  return audienceValues(statement).includes(audience);
}

function isOnlyFederatedTo(statement: PolicyStatement, providerArn: string): boolean {
  if (!isPlainAllow(statement)) return false;
  const principal = statement['Principal'];
  if (!isRecord(principal)) return false;
  const keys = Object.keys(principal);
  return (
    keys.length === 1 &&
    keys[0] === 'Federated' &&
    sameStrings(asStrings(principal['Federated']), [providerArn])
  );
}

function widen(statement: PolicyStatement, audience: string): PolicyStatement {
  const actions = actionsOf(statement);
  const missing = SAML_TRUST_ACTIONS.filter(
    (needed) => !actions.some((pattern) => actionMatches(pattern, needed)),
  );
  const condition = isRecord(statement['Condition']) ? statement['Condition'] : {};
  const stringEquals = isRecord(condition['StringEquals']) ? condition['StringEquals'] : {};
  // Condition keys are case-insensitive in IAM: fold every spelling of SAML:aud into one.
  const audKeys = Object.keys(stringEquals).filter((k) => k.toLowerCase() === 'saml:aud');
  const audiences = [...new Set([...audKeys.flatMap((k) => asStrings(stringEquals[k])), audience])];
  const otherKeys = Object.fromEntries(Object.entries(stringEquals).filter(([k]) => !audKeys.includes(k)));
  return {
    ...statement,
    Action: [...actions, ...missing],
    Condition: {
      ...condition,
      StringEquals: { ...otherKeys, 'SAML:aud': audiences.length === 1 ? audiences[0] : audiences },
    },
  };
}

/** An Allow statement that names its principals and actions positively (no NotPrincipal, no NotAction). */
function isPlainAllow(statement: PolicyStatement): boolean {
  return statement['Effect'] === 'Allow' && !('NotPrincipal' in statement) && !('NotAction' in statement);
}

function federatedPrincipals(statement: PolicyStatement): string[] {
  const principal = statement['Principal'];
  return isRecord(principal) ? asStrings(principal['Federated']) : [];
}

function actionsOf(statement: PolicyStatement): string[] {
  return asStrings(statement['Action']);
}

function audienceValues(statement: PolicyStatement): string[] {
  const condition = statement['Condition'];
  if (!isRecord(condition)) return [];
  const stringEquals = condition['StringEquals'];
  if (!isRecord(stringEquals)) return [];
  return Object.entries(stringEquals)
    .filter(([key]) => key.toLowerCase() === 'saml:aud')
    .flatMap(([, value]) => asStrings(value));
}

/** IAM action names are case-insensitive and may use `*` and `?` wildcards. */
function actionMatches(pattern: string, action: string): boolean {
  const regex = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.+()|[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${regex}$`, 'i').test(action);
}

function asStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function sameStrings(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
