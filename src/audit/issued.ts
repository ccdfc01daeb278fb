import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { Database, IssuedCredentialsTable } from '../store/schema.js';

/** One credential an issuer handed out: what revocation and CloudTrail correlation read. */
export interface IssuedCredential {
  id: string;
  kind: 'saml-assertion' | 'sts-credentials' | 'ssh-certificate' | 'ssh-host-certificate' | 'oidc-token';
  userId: string | null;
  subject: string;
  /** aws:<account>/<role>, an SP entity id, ssh:<host>… */
  target: string;
  audience: string | null;
  /** the id the far side logs: assertion id, AccessKeyId, SSH serial */
  externalId: string;
  details: Record<string, unknown>;
  issuedAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

const fromRow = (r: IssuedCredentialsTable): IssuedCredential => ({
  id: r.id,
  kind: r.kind as IssuedCredential['kind'],
  userId: r.user_id,
  subject: r.subject,
  target: r.target,
  audience: r.audience,
  externalId: r.external_id,
  details: JSON.parse(r.details) as Record<string, unknown>,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export type IssuedInput = Omit<IssuedCredential, 'id' | 'issuedAt' | 'revokedAt' | 'expiresAt'> & {
  expiresAt: Date;
};

/** Records an issued credential; call it in the transaction that writes the issuing audit event. */
export async function recordIssued(
  trx: Kysely<Database>,
  clock: Clock,
  input: IssuedInput,
): Promise<IssuedCredential> {
  const row = issuedRow(clock, input);
  await trx.insertInto('issued_credentials').values(row).execute();
  return fromRow(row);
}

/** The row recordIssued inserts, for a caller that writes several in one statement (with their audit events). */
export function issuedRow(
  clock: Clock,
  input: IssuedInput,
  /** the row's id when the caller makes it (e.g. time-ordered for a batch); a UUID */
  id: string = randomUUID(),
): IssuedCredentialsTable {
  return {
    id,
    kind: input.kind,
    user_id: input.userId,
    subject: input.subject,
    target: input.target,
    audience: input.audience,
    external_id: input.externalId,
    details: JSON.stringify(input.details),
    issued_at: iso(clock.now()),
    expires_at: iso(input.expiresAt),
    revoked_at: null,
  };
}

export async function listIssued(
  db: Kysely<Database>,
  filter: { userId?: string; externalId?: string; kind?: string; limit?: number },
): Promise<IssuedCredential[]> {
  let q = db.selectFrom('issued_credentials').selectAll();
  if (filter.userId) q = q.where('user_id', '=', filter.userId);
  if (filter.externalId) q = q.where('external_id', '=', filter.externalId);
  if (filter.kind) q = q.where('kind', '=', filter.kind);
  const rows = await q
    .orderBy('issued_at', 'desc')
    .limit(Math.min(filter.limit ?? 100, 1000))
    .execute();
  return rows.map(fromRow);
}

/** Issued credentials by the id the far side logs (CloudTrail correlation by AccessKeyId), in one query per 500. */
export async function issuedByExternalIds(
  db: Kysely<Database>,
  kind: IssuedCredential['kind'],
  externalIds: readonly string[],
): Promise<Map<string, IssuedCredential>> {
  const found = new Map<string, IssuedCredential>();
  const ids = [...new Set(externalIds)];
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('issued_credentials')
      .selectAll()
      .where('kind', '=', kind)
      .where('external_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) found.set(r.external_id, fromRow(r));
  }
  return found;
}

/** Credentials of these kinds issued for one target between two instants (ISO-8601), newest first. */
export async function issuedForTarget(
  db: Kysely<Database>,
  kinds: ReadonlyArray<IssuedCredential['kind']>,
  target: string,
  issuedFrom: string,
  issuedTo: string,
): Promise<IssuedCredential[]> {
  const rows = await db
    .selectFrom('issued_credentials')
    .selectAll()
    .where('kind', 'in', [...kinds])
    .where('target', '=', target)
    .where('issued_at', '>=', issuedFrom)
    .where('issued_at', '<=', issuedTo)
    .orderBy('issued_at', 'desc')
    .limit(1000)
    .execute();
  return rows.map(fromRow);
}
