/**
 * The inline role policy that ends one person's live sessions on a role: AWS's "revoke older sessions"
 * deny (aws:TokenIssueTime before a cutoff) narrowed by aws:SourceIdentity, so colleagues on the same
 * role keep working. https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html
 */

/** Ferry owns this one inline policy on every role it revokes sessions on. */
export const REVOCATION_POLICY_NAME = 'FerryRevokedSessions';

/** IAM's limit for all inline policies of one role together, counted without whitespace. */
export const INLINE_ROLE_POLICY_LIMIT = 10_240;

/** One person denied on a role: their sessions issued before `cutoff` fail. */
export interface RevokedIdentity {
  sourceIdentity: string;
  cutoff: Date;
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Deny';
  Action: '*';
  Resource: '*';
  Condition: {
    StringEquals: { 'aws:SourceIdentity': string | string[] };
    DateLessThan: { 'aws:TokenIssueTime': string };
  };
}

export interface RevocationPolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** Even folded into one statement the identities don't fit IAM's inline policy limit. */
export class RevocationPolicyTooLarge extends Error {
  constructor(
    readonly identities: number,
    readonly size: number,
  ) {
    super(
      `the revocation policy for ${identities} identities is ${size} characters, over IAM's ` +
        `${INLINE_ROLE_POLICY_LIMIT} for a role's inline policies`,
    );
    this.name = 'RevocationPolicyTooLarge';
  }
}

/** Whole seconds, rounded up: a cutoff never moves earlier than asked. */
export function cutoffText(cutoff: Date): string {
  const ms = Math.ceil(cutoff.getTime() / 1000) * 1000;
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** Sessions issued before the cutoff last at most the role's MaxSessionDuration: then the entry can go. */
export function stillNeeded(entry: RevokedIdentity, now: Date, maxSessionSeconds: number): boolean {
  return entry.cutoff.getTime() + maxSessionSeconds * 1000 > now.getTime();
}

const statement = (sourceIdentity: string | string[], cutoff: Date, sid?: string): PolicyStatement => ({
  ...(sid ? { Sid: sid } : {}),
  Effect: 'Deny',
  Action: '*',
  Resource: '*',
  Condition: {
    StringEquals: { 'aws:SourceIdentity': sourceIdentity },
    DateLessThan: { 'aws:TokenIssueTime': cutoffText(cutoff) },
  },
});

/** What IAM counts against the limit: the document without whitespace. */
export function policySize(doc: RevocationPolicyDocument): number {
  return JSON.stringify(doc).length;
}

/**
 * The policy for these entries, or null when none is left (the policy is then deleted). One statement
 * per person keeps each cutoff exact; when that is over IAM's limit, entries sharing a cutoff are folded
 * into one statement, and as a last resort all of them into one statement with the latest cutoff —
 * denying more, never less, than asked.
 */
export function revocationPolicy(entries: readonly RevokedIdentity[]): RevocationPolicyDocument | null {
  if (entries.length === 0) return null;
  const sorted = [...entries].sort((a, b) => (a.sourceIdentity < b.sourceIdentity ? -1 : 1));
  const perPerson: RevocationPolicyDocument = {
    Version: '2012-10-17',
    Statement: sorted.map((e, i) => statement(e.sourceIdentity, e.cutoff, `Revoked${i + 1}`)),
  };
  if (policySize(perPerson) <= INLINE_ROLE_POLICY_LIMIT) return perPerson;

  const byCutoff = new Map<string, { cutoff: Date; ids: string[] }>();
  for (const e of sorted) {
    const key = cutoffText(e.cutoff);
    const group = byCutoff.get(key) ?? { cutoff: e.cutoff, ids: [] };
    group.ids.push(e.sourceIdentity);
    byCutoff.set(key, group);
  }
  const perCutoff: RevocationPolicyDocument = {
    Version: '2012-10-17',
    Statement: [...byCutoff.values()].map((g) => statement(g.ids.length === 1 ? g.ids[0]! : g.ids, g.cutoff)),
  };
  if (policySize(perCutoff) <= INLINE_ROLE_POLICY_LIMIT) return perCutoff;

  const latest = new Date(Math.max(...sorted.map((e) => e.cutoff.getTime())));
  const folded: RevocationPolicyDocument = {
    Version: '2012-10-17',
    Statement: [
      statement(
        sorted.map((e) => e.sourceIdentity),
        latest,
      ),
    ],
  };
  const size = policySize(folded);
  if (size > INLINE_ROLE_POLICY_LIMIT) throw new RevocationPolicyTooLarge(sorted.length, size);
  return folded;
}
