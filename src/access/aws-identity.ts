import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import { Conflict } from '../errors.js';
import type { Database } from '../store/schema.js';

/**
 * What AWS accepts as RoleSessionName and as SourceIdentity: 2 to 64 of letters, digits and _+=,.@-
 * (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html). `\w` without the u flag
 * is ASCII only, as AWS's is.
 */
export const AWS_IDENTITY_PATTERN = /^[\w+=,.@-]{2,64}$/;
const DISALLOWED = /[^\w+=,.@-]/gu;

/** Whose AWS identity: a person (user id) or a workload (client id); the id never changes, the name may. */
export interface AwsIdentityOwner {
  kind: 'user' | 'workload';
  id: string;
  userName: string;
}

/** Every value this person could carry is already another person's: nothing is issued. */
export class AwsIdentityCollision extends Conflict {
  readonly code = 'aws-identity-collision';
  constructor(
    readonly userName: string,
    readonly tried: string[],
  ) {
    super(
      `no AWS identity can be issued for ${JSON.stringify(userName)}: ${tried.join(' and ')} ` +
        'already belong to someone else, and two people sharing a SourceIdentity would share each ' +
        "other's revocations. Rename the account, or ask an operator to check the aws_identities table.",
    );
    this.name = 'AwsIdentityCollision';
  }
}

/** The 8 hex digits a derived AWS identity ends in: a digest of the owner's stable id, never of the name. */
export function awsIdentitySuffix(ownerKey: string): string {
  return createHash('sha256').update(ownerKey, 'utf8').digest('hex').slice(0, 8);
}

/**
 * The values a person (or workload) may carry as RoleSessionName and SourceIdentity, best first. One
 * value serves as both, so CloudTrail's assumed-role ARN and the source identity name the same person.
 *
 * A UPN AWS accepts as it is comes first, unchanged. A UPN that normalisation would change (accents
 * dropped, refused characters replaced by `-`, more than 64 characters) never comes out as a bare
 * normalised name: josé@ and jose@ would both become jose@, and a deny written for one would end the
 * other's sessions. It gets `-` and 8 hex digits of the SHA-256 of `ownerKey` (the user or workload id,
 * which never changes) instead, so it is stable across sign-ins and apart from every other person.
 * The suffixed form is also the fallback for an unchanged UPN another person already holds (a reused
 * UPN); whether a value is free is awsIdentityOf's call, not this function's.
 */
export function awsIdentityCandidates(ownerKey: string, upn: string): string[] {
  if (ownerKey === '') throw new TypeError('an AWS identity needs the owner id');
  const trimmed = upn.trim();
  const suffix = `-${awsIdentitySuffix(ownerKey)}`;
  let base = trimmed.normalize('NFKD').replace(/\p{M}/gu, '').replace(DISALLOWED, '-');
  // Nothing AWS can show (a name in a script without a Latin transliteration): the suffix alone names them.
  if (!/[A-Za-z0-9]/.test(base)) base = 'user';
  const derived = `${base.slice(0, 64 - suffix.length)}${suffix}`;
  return AWS_IDENTITY_PATTERN.test(trimmed) ? [trimmed, derived] : [derived];
}

const ownerKeyOf = (owner: AwsIdentityOwner) => `${owner.kind}:${owner.id}`;

/**
 * The one answer to "what does AWS call this person": the RoleSessionName and SourceIdentity every
 * issuer (console SAML assertions, STS credentials for people and workloads) puts on a session, and so
 * what the per-person revocation deny matches. The first candidate (awsIdentityCandidates) nobody else
 * holds is claimed for the owner for good; a later call with the same name returns the same value.
 * Claims ignore case, so Alice@ and alice@ held by two people stay apart in CloudTrail too.
 * Throws AwsIdentityCollision when every candidate belongs to someone else.
 */
export async function awsIdentityOf(
  db: Kysely<Database>,
  clock: Clock,
  owner: AwsIdentityOwner,
): Promise<string> {
  const ownerKey = ownerKeyOf(owner);
  const candidates = awsIdentityCandidates(ownerKey, owner.userName);
  for (const identity of candidates) {
    const key = identity.toLowerCase();
    const held = await db
      .selectFrom('aws_identities')
      .select('owner_key')
      .where('identity_key', '=', key)
      .executeTakeFirst();
    if (held?.owner_key === ownerKey) return identity;
    if (held) continue;
    // Insert-or-keep, then read: of two concurrent first claims exactly one row survives (the key).
    await db
      .insertInto('aws_identities')
      .values({
        identity_key: key,
        identity,
        owner_key: ownerKey,
        user_name: owner.userName,
        created_at: iso(clock.now()),
      })
      .onConflict((oc) => oc.column('identity_key').doNothing())
      .execute();
    const row = await db
      .selectFrom('aws_identities')
      .select('owner_key')
      .where('identity_key', '=', key)
      .executeTakeFirstOrThrow();
    if (row.owner_key === ownerKey) return identity;
  }
  throw new AwsIdentityCollision(owner.userName, candidates);
}

/**
 * Whose AWS identities these are (CloudTrail correlation by sourceIdentity): lower-cased identity →
 * owner (`user:<id>` or `workload:<client id>`) and the name it was derived from. Unknown ones are absent.
 */
export async function ownersOfAwsIdentities(
  db: Kysely<Database>,
  identities: readonly string[],
): Promise<Map<string, { ownerKey: string; userName: string }>> {
  const found = new Map<string, { ownerKey: string; userName: string }>();
  const keys = [...new Set(identities.map((i) => i.toLowerCase()))];
  for (let i = 0; i < keys.length; i += 500) {
    const rows = await db
      .selectFrom('aws_identities')
      .select(['identity_key', 'owner_key', 'user_name'])
      .where('identity_key', 'in', keys.slice(i, i + 500))
      .execute();
    for (const r of rows) found.set(r.identity_key, { ownerKey: r.owner_key, userName: r.user_name });
  }
  return found;
}
