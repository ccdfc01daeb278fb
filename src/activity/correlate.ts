import type { Kysely } from 'kysely';
import { ownersOfAwsIdentities } from '../access/aws-identity.js';
import { type IssuedCredential, issuedByExternalIds, issuedForTarget } from '../audit/issued.js';
import type { Database } from '../store/schema.js';
import type { AttributedRecord, Attribution } from './record.js';

/** A record read from a log file, before attribution. */
export type ParsedRecord = Omit<AttributedRecord, 'attribution'> & {
  roleName: string | null;
  /** for AssumeRole* events: the key of the credentials the call handed out */
  issuedAccessKeyId: string | null;
};

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const obj = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/** arn:aws:sts::123456789012:assumed-role/Developer/jane → { role: Developer, session: jane } */
export function assumedRoleParts(
  arn: string | null,
): { partition: string; account: string; role: string; session: string } | null {
  const m = arn ? /^arn:([\w-]+):sts::(\d{12}):assumed-role\/([\w+=,.@-]+)\/([\w+=,.@-]+)$/.exec(arn) : null;
  return m ? { partition: m[1]!, account: m[2]!, role: m[3]!, session: m[4]! } : null;
}

const roleNameOf = (roleArn: string | null): string | null => {
  const m = roleArn ? /:role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(roleArn) : null;
  return m ? m[1]! : null;
};

/**
 * One CloudTrail record (AWS's documented record format, "CloudTrail record contents") into the fields
 * Ferry keeps. Only eventID, eventTime, eventSource and eventName are required: anything else of an
 * unknown shape (a new identity type, a missing userIdentity) is kept with what could be read.
 * `fallbackAccount` is the account in the log file's key, for records without recipientAccountId.
 */
export function parseRecord(
  raw: unknown,
  fallbackAccount: string | null,
): ParsedRecord | { rejected: string } {
  const r = obj(raw);
  if (!r) return { rejected: 'not an object' };
  const eventId = str(r.eventID);
  if (!eventId) return { rejected: 'no eventID' };
  const eventName = str(r.eventName);
  const eventSource = str(r.eventSource);
  if (!eventName || !eventSource) return { rejected: 'no eventName or eventSource' };
  const timeText = str(r.eventTime);
  const eventTime = timeText ? new Date(timeText) : null;
  if (!eventTime || Number.isNaN(eventTime.getTime())) return { rejected: 'no readable eventTime' };
  const identity = obj(r.userIdentity) ?? {};
  const sessionContext = obj(identity.sessionContext) ?? {};
  const issuer = obj(sessionContext.sessionIssuer) ?? {};
  const identityArn = str(identity.arn);
  const assumed = assumedRoleParts(identityArn);
  let roleArn = str(issuer.type) === 'Role' ? str(issuer.arn) : null;
  if (!roleArn && assumed) roleArn = `arn:${assumed.partition}:iam::${assumed.account}:role/${assumed.role}`;
  let roleSessionName = assumed?.session ?? null;
  let sourceIdentity = str(sessionContext.sourceIdentity);
  let issuedAccessKeyId: string | null = null;
  // AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity: the session the call created.
  if (eventSource === 'sts.amazonaws.com' && eventName.startsWith('AssumeRole')) {
    const request = obj(r.requestParameters) ?? {};
    const response = obj(r.responseElements) ?? {};
    const created = assumedRoleParts(str(obj(response.assumedRoleUser)?.arn));
    if (identity.type !== 'AssumedRole') {
      roleArn = str(request.roleArn) ?? roleArn;
      roleSessionName = created?.session ?? str(request.roleSessionName) ?? roleSessionName;
    }
    sourceIdentity ??= str(request.sourceIdentity) ?? str(response.sourceIdentity);
    issuedAccessKeyId = str(obj(response.credentials)?.accessKeyId);
  }
  const account = str(r.recipientAccountId) ?? str(identity.accountId) ?? fallbackAccount ?? 'unknown';
  return {
    eventId,
    eventTime,
    eventSource,
    eventName,
    awsRegion: str(r.awsRegion),
    account,
    sourceIpAddress: str(r.sourceIPAddress),
    userAgent: str(r.userAgent),
    errorCode: str(r.errorCode),
    errorMessage: str(r.errorMessage),
    identityType: str(identity.type) ?? 'Unknown',
    accessKeyId: str(identity.accessKeyId),
    roleArn,
    roleName: roleNameOf(roleArn),
    roleSessionName,
    sourceIdentity,
    issuedAccessKeyId,
    raw: r,
  };
}

/** The longest an AWS role session lasts (MaxSessionDuration ≤ 12 h): how far back a session name may point. */
const MAX_SESSION_MS = 12 * 3_600_000;

const NOT_FERRY: Attribution = {
  method: 'none',
  userId: null,
  userName: null,
  credentialId: null,
  issuedByFerry: false,
};

const fromCredential = (c: IssuedCredential, method: Attribution['method']): Attribution => ({
  method,
  userId: c.userId,
  userName: c.subject,
  credentialId: c.id,
  issuedByFerry: true,
});

/** The record without its parse-only fields, with its attribution (spelled out: cheaper than a rest spread). */
const attributed = (r: ParsedRecord, attribution: Attribution): AttributedRecord => ({
  eventId: r.eventId,
  eventTime: r.eventTime,
  eventSource: r.eventSource,
  eventName: r.eventName,
  awsRegion: r.awsRegion,
  account: r.account,
  sourceIpAddress: r.sourceIpAddress,
  userAgent: r.userAgent,
  errorCode: r.errorCode,
  errorMessage: r.errorMessage,
  identityType: r.identityType,
  accessKeyId: r.accessKeyId,
  roleArn: r.roleArn,
  roleSessionName: r.roleSessionName,
  sourceIdentity: r.sourceIdentity,
  attribution,
  raw: r.raw,
});

/**
 * Ties records to people, in the order of trust: the AccessKeyId Ferry issued (the ledger); the
 * session's SourceIdentity, which AWS carries through role chaining and nobody can change; the
 * assumed-role session name within a session's lifetime of an issue. Everything else (IAM users,
 * root, AWS services, other federations) is marked as not Ferry's.
 */
export class Correlator {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: { clockSkewMs: number },
  ) {}

  async attribute(records: readonly ParsedRecord[]): Promise<AttributedRecord[]> {
    const keys = new Set<string>();
    const identities = new Set<string>();
    for (const r of records) {
      if (r.accessKeyId) keys.add(r.accessKeyId);
      if (r.issuedAccessKeyId) keys.add(r.issuedAccessKeyId);
      if (r.sourceIdentity) identities.add(r.sourceIdentity);
      if (r.roleSessionName) identities.add(r.roleSessionName);
    }
    // Both lookups at once (two connections on PostgreSQL: one wait for the server, not two).
    const [issued, owners] = await Promise.all([
      keys.size
        ? issuedByExternalIds(this.db, 'sts-credentials', [...keys])
        : new Map<string, IssuedCredential>(),
      identities.size
        ? ownersOfAwsIdentities(this.db, [...identities])
        : new Map<string, { ownerKey: string; userName: string }>(),
    ]);
    const bySession = new Map<string, IssuedCredential[]>();
    const out: AttributedRecord[] = [];
    for (const r of records) {
      // Only the session-name fallback may need the database (once per role and batch).
      const attribution =
        this.#fromIdentity(r, issued, owners) ??
        (await this.#bySessionName(r, bySession, records)) ??
        NOT_FERRY;
      out.push(attributed(r, attribution));
    }
    return out;
  }

  /** By the ledger's AccessKeyId, then SourceIdentity; undefined when only the session name can still tell. */
  #fromIdentity(
    r: ParsedRecord,
    issued: Map<string, IssuedCredential>,
    owners: Map<string, { ownerKey: string; userName: string }>,
  ): Attribution | undefined {
    const byKey =
      (r.accessKeyId && issued.get(r.accessKeyId)) ||
      (r.issuedAccessKeyId && issued.get(r.issuedAccessKeyId));
    if (byKey) return fromCredential(byKey, 'access-key');
    const owner = r.sourceIdentity ? owners.get(r.sourceIdentity.toLowerCase()) : undefined;
    if (owner?.ownerKey.startsWith('user:'))
      return {
        method: 'source-identity',
        userId: owner.ownerKey.slice('user:'.length),
        userName: owner.userName,
        credentialId: null,
        issuedByFerry: true,
      };
    if (!(r.roleSessionName && r.roleName && owners.has(r.roleSessionName.toLowerCase()))) return NOT_FERRY;
    return undefined;
  }

  /** The newest credential for this role with this session name, issued within a session's lifetime before the call. */
  async #bySessionName(
    r: ParsedRecord,
    cache: Map<string, IssuedCredential[]>,
    batch: readonly ParsedRecord[],
  ): Promise<Attribution | undefined> {
    const target = `aws:${r.account}/${r.roleName}`;
    let candidates = cache.get(target);
    if (!candidates) {
      // One query per role and batch, over the batch's whole time span.
      let min = r.eventTime.getTime();
      let max = min;
      for (const o of batch) {
        const t = o.eventTime.getTime();
        if (t < min) min = t;
        if (t > max) max = t;
      }
      const skew = this.options.clockSkewMs;
      candidates = await issuedForTarget(
        this.db,
        ['sts-credentials', 'saml-assertion'],
        target,
        new Date(min - MAX_SESSION_MS - skew).toISOString(),
        new Date(max + skew).toISOString(),
      );
      cache.set(target, candidates);
    }
    const at = r.eventTime.getTime();
    const skew = this.options.clockSkewMs;
    const name = r.roleSessionName!.toLowerCase();
    const credential = candidates.find((c) => {
      const issuedAt = Date.parse(c.issuedAt);
      const session = typeof c.details.sessionName === 'string' ? c.details.sessionName.toLowerCase() : null;
      return session === name && issuedAt <= at + skew && issuedAt >= at - MAX_SESSION_MS - skew;
    });
    return credential ? fromCredential(credential, 'session-name') : undefined;
  }
}
