import type { AttributedRecord } from '../record.js';
import type { Finding, Observation, SpikeCount } from './finding.js';

/**
 * The CloudTrail detections: pure functions over one attributed record and what Ferry knows about
 * the accounts it manages. Field names follow AWS's documented record format
 * (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
 */

/** A revocation Ferry wrote: sessions of this identity on this role issued before `cutoff` must not work. */
export interface RevocationEntry {
  account: string;
  role: string;
  sourceIdentity: string;
  userId: string | null;
  cutoff: Date;
}

export interface ManagedEstate {
  /** ARNs of the roles registered in Ferry (aws_roles) */
  managedRoleArns: ReadonlySet<string>;
  /** ARNs of the SAML providers Ferry's accounts trust */
  samlProviderArns: ReadonlySet<string>;
  /** Ferry's OpenID issuer as IAM names its provider: host and path, no scheme (e.g. ferry.example.com) */
  oidcProviderPaths: ReadonlySet<string>;
  /** the inline policy name of the per-person deny (revocation-policy.ts) */
  denyPolicyName: string;
  /** ARNs (or ARN prefixes ending in *) of Ferry's own AWS identity, whose writes are expected */
  ferryPrincipals: readonly string[];
  /** revocations of the people in the batch */
  revocations: readonly RevocationEntry[];
}

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'Client.UnauthorizedOperation',
  'UnauthorizedAccess',
]);

const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

const requestOf = (r: AttributedRecord) => obj(r.raw.requestParameters);
const identityOf = (r: AttributedRecord) => obj(r.raw.userIdentity);

/** Who made the call, in words: the person when known, else the principal ARN or type. */
export function actorOf(r: AttributedRecord): string {
  return (
    r.attribution.userName ??
    r.sourceIdentity ??
    str(identityOf(r).arn) ??
    (r.roleArn ? `${r.roleArn}/${r.roleSessionName ?? '?'}` : r.identityType)
  );
}

const outcomeOf = (r: AttributedRecord) => (r.errorCode ? `failed (${r.errorCode})` : 'succeeded');

function finding(
  r: AttributedRecord,
  f: Omit<Finding, 'account' | 'occurredAt' | 'evidence' | 'details'> & { details?: Record<string, unknown> },
): Finding {
  return {
    ...f,
    account: r.account,
    occurredAt: r.eventTime,
    evidence: r.eventId,
    details: {
      eventName: r.eventName,
      eventSource: r.eventSource,
      actor: actorOf(r),
      sourceIpAddress: r.sourceIpAddress,
      errorCode: r.errorCode,
      ...f.details,
    },
  };
}

const roleArnIn = (account: string, roleName: string | null, managed: ReadonlySet<string>): string | null => {
  if (!roleName) return null;
  const name = roleName.split('/').at(-1)!;
  for (const arn of managed) {
    const m = /^arn:[\w-]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (m && m[1] === account && m[2] === name) return arn;
  }
  return null;
};

const matchesPrincipal = (arn: string | null, patterns: readonly string[]) =>
  arn !== null && patterns.some((p) => (p.endsWith('*') ? arn.startsWith(p.slice(0, -1)) : arn === p));

/** Ferry's own writes (the revocation policy it maintains) are expected; anyone else's are not. */
function byFerry(r: AttributedRecord, estate: ManagedEstate): boolean {
  const arn = str(identityOf(r).arn);
  return matchesPrincipal(arn, estate.ferryPrincipals) || matchesPrincipal(r.roleArn, estate.ferryPrincipals);
}

export function rootActivity(r: AttributedRecord): Finding | null {
  if (r.identityType !== 'Root') return null;
  // AWS services acting for the account (invokedBy) still show Root; they are not a person's root use.
  if (str(identityOf(r).invokedBy)) return null;
  const signin = r.eventName === 'ConsoleLogin';
  return finding(r, {
    rule: 'root-activity',
    title: signin
      ? `root user console sign-in ${outcomeOf(r)} in account ${r.account}`
      : `root user called ${r.eventName} in account ${r.account}`,
    subject: `root:${r.account}`,
  });
}

const CREDENTIAL_CREATIONS: Record<string, string> = {
  CreateUser: 'IAM user',
  CreateAccessKey: 'access key',
  CreateLoginProfile: 'console password (login profile)',
};

export function iamCredentialsCreated(r: AttributedRecord): Finding | null {
  if (r.eventSource !== 'iam.amazonaws.com' || r.errorCode) return null;
  const what = CREDENTIAL_CREATIONS[r.eventName];
  if (!what) return null;
  const userName =
    str(requestOf(r).userName) ?? str(obj(obj(r.raw.responseElements).accessKey).userName) ?? actorOf(r);
  return finding(r, {
    rule: 'iam-credentials-created',
    title: `${what} created for ${userName} in account ${r.account} by ${actorOf(r)}`,
    subject: `${r.account}:${userName}`,
    details: { userName },
  });
}

/** AssumeRole* into, or console sign-in on, a role Ferry manages by a session Ferry did not issue. */
export function sessionOutsideFerry(r: AttributedRecord, estate: ManagedEstate): Finding | null {
  if (r.attribution.issuedByFerry || r.errorCode) return null;
  if (r.eventSource === 'sts.amazonaws.com' && r.eventName.startsWith('AssumeRole')) {
    const roleArn = str(requestOf(r).roleArn);
    if (!roleArn || !estate.managedRoleArns.has(roleArn)) return null;
    if (
      r.eventName === 'AssumeRoleWithSAML' &&
      estate.samlProviderArns.has(str(requestOf(r).principalArn) ?? '')
    )
      return null;
    if (r.eventName === 'AssumeRoleWithWebIdentity') {
      const idp = (str(identityOf(r).identityProvider) ?? '').replace(/^https:\/\//, '');
      if ([...estate.oidcProviderPaths].some((p) => idp === p || idp.endsWith(`/${p}`))) return null;
    }
    return finding(r, {
      rule: 'session-outside-ferry',
      title: `${r.eventName} into Ferry-managed role ${roleArn} not issued by Ferry (by ${actorOf(r)})`,
      subject: roleArn,
      details: { roleArn, roleSessionName: str(requestOf(r).roleSessionName) },
    });
  }
  if (r.eventName === 'ConsoleLogin' && r.identityType === 'AssumedRole' && r.roleArn) {
    if (!estate.managedRoleArns.has(r.roleArn)) return null;
    return finding(r, {
      rule: 'session-outside-ferry',
      title: `console sign-in on Ferry-managed role ${r.roleArn} with a session Ferry did not issue`,
      subject: r.roleArn,
      details: { roleArn: r.roleArn, roleSessionName: r.roleSessionName },
    });
  }
  return null;
}

const PROVIDER_CHANGES = new Set([
  'UpdateSAMLProvider',
  'DeleteSAMLProvider',
  'CreateOpenIDConnectProvider',
  'UpdateOpenIDConnectProviderThumbprint',
  'DeleteOpenIDConnectProvider',
  'AddClientIDToOpenIDConnectProvider',
  'RemoveClientIDFromOpenIDConnectProvider',
]);

/** Changes to what Ferry's federation rests on: its roles' trust, its identity providers, its deny policies. */
export function federationTampering(r: AttributedRecord, estate: ManagedEstate): Finding | null {
  if (r.eventSource !== 'iam.amazonaws.com') return null;
  const req = requestOf(r);
  if (r.eventName === 'UpdateAssumeRolePolicy') {
    const arn = roleArnIn(r.account, str(req.roleName), estate.managedRoleArns);
    if (!arn) return null;
    return finding(r, {
      rule: 'federation-tampering',
      title: `trust policy of Ferry-managed role ${arn} changed by ${actorOf(r)} (${outcomeOf(r)})`,
      subject: arn,
      details: { roleArn: arn },
    });
  }
  if (PROVIDER_CHANGES.has(r.eventName)) {
    const saml = str(req.sAMLProviderArn);
    const oidcArn = str(req.openIDConnectProviderArn);
    const oidcUrl = str(req.url)?.replace(/^https:\/\//, '') ?? null;
    const ours =
      (saml !== null && estate.samlProviderArns.has(saml)) ||
      (oidcArn !== null &&
        [...estate.oidcProviderPaths].some((p) => oidcArn.endsWith(`:oidc-provider/${p}`))) ||
      (oidcUrl !== null && estate.oidcProviderPaths.has(oidcUrl.replace(/\/$/, '')));
    if (!ours) return null;
    const provider = saml ?? oidcArn ?? oidcUrl!;
    return finding(r, {
      rule: 'federation-tampering',
      title: `${r.eventName} on Ferry's identity provider ${provider} by ${actorOf(r)} (${outcomeOf(r)})`,
      subject: provider,
      details: { provider },
    });
  }
  if (
    (r.eventName === 'PutRolePolicy' || r.eventName === 'DeleteRolePolicy') &&
    str(req.policyName) === estate.denyPolicyName &&
    !byFerry(r, estate)
  ) {
    const role = str(req.roleName) ?? '?';
    return finding(r, {
      rule: 'federation-tampering',
      title: `per-person deny policy ${estate.denyPolicyName} on role ${role} ${r.eventName === 'DeleteRolePolicy' ? 'deleted' : 'rewritten'} outside Ferry by ${actorOf(r)} (${outcomeOf(r)})`,
      subject: `${r.account}:${role}:${estate.denyPolicyName}`,
      details: { roleName: role, policyName: estate.denyPolicyName },
    });
  }
  return null;
}

/** PutEventSelectors leaves the trail with nothing to log: no management events and no data events. */
export function selectorsTurnLoggingOff(req: Record<string, unknown>): boolean {
  const basic = req.eventSelectors;
  if (Array.isArray(basic)) {
    return basic.every((s) => {
      const sel = obj(s);
      const data = Array.isArray(sel.dataResources) ? sel.dataResources : [];
      return (sel.includeManagementEvents === false || sel.readWriteType === 'None') && data.length === 0;
    });
  }
  const advanced = req.advancedEventSelectors;
  if (Array.isArray(advanced)) return advanced.length === 0;
  return false;
}

export function cloudTrailDisabled(r: AttributedRecord): Finding | null {
  if (r.eventSource !== 'cloudtrail.amazonaws.com') return null;
  const req = requestOf(r);
  const trail = str(req.name) ?? str(req.trailName) ?? '?';
  let what: string | null = null;
  if (r.eventName === 'StopLogging') what = 'logging stopped';
  else if (r.eventName === 'DeleteTrail') what = 'trail deleted';
  else if (r.eventName === 'UpdateTrail') what = 'trail updated';
  else if (r.eventName === 'PutEventSelectors' && selectorsTurnLoggingOff(req))
    what = 'event selectors turned off';
  if (!what) return null;
  return finding(r, {
    rule: 'cloudtrail-disabled',
    title: `CloudTrail ${what}: ${trail} in account ${r.account} by ${actorOf(r)} (${outcomeOf(r)})`,
    subject: `${r.account}:${trail}`,
    details: { trail },
  });
}

/** When the session was issued (userIdentity.sessionContext.attributes.creationDate), when CloudTrail says. */
export function sessionIssuedAt(r: AttributedRecord): Date | null {
  const created = str(obj(obj(obj(identityOf(r).sessionContext).attributes)).creationDate);
  const d = created ? new Date(created) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
}

/**
 * A call made after Ferry revoked the person's sessions, with a session issued before that cutoff:
 * the per-person deny should have stopped it (or the deny was removed, or the record is of another path).
 */
export function revokedCredentialsUsed(r: AttributedRecord, estate: ManagedEstate): Finding | null {
  const roleName = r.roleArn?.split('/').at(-1) ?? null;
  const issued = sessionIssuedAt(r);
  for (const rev of estate.revocations) {
    const same =
      (r.sourceIdentity !== null && r.sourceIdentity === rev.sourceIdentity) ||
      (r.attribution.userId !== null && r.attribution.userId === rev.userId);
    if (!same) continue;
    if (roleName !== null && (rev.account !== r.account || rev.role !== roleName)) continue;
    if (r.eventTime.getTime() <= rev.cutoff.getTime()) continue;
    if (issued && issued.getTime() > rev.cutoff.getTime()) continue; // a session issued after the revocation
    const person = r.attribution.userName ?? rev.sourceIdentity;
    return finding(r, {
      rule: 'revoked-credentials-used',
      title: `${person} called ${r.eventName} in ${r.account} after Ferry revoked their sessions (${outcomeOf(r)})`,
      subject: person,
      details: { cutoff: rev.cutoff.toISOString(), role: rev.role, accessKeyId: r.accessKeyId },
    });
  }
  return null;
}

export function accessDenied(r: AttributedRecord): SpikeCount | null {
  if (!r.errorCode || !ACCESS_DENIED.has(r.errorCode)) return null;
  return {
    rule: 'access-denied-spike',
    subject: actorOf(r),
    account: r.account,
    occurredAt: r.eventTime,
    evidence: r.eventId,
    details: { lastEventName: r.eventName, lastErrorCode: r.errorCode },
  };
}

/** Everything the CloudTrail rules see in one record. */
export function observeRecord(r: AttributedRecord, estate: ManagedEstate): Observation[] {
  const out: Observation[] = [];
  for (const f of [
    rootActivity(r),
    iamCredentialsCreated(r),
    sessionOutsideFerry(r, estate),
    federationTampering(r, estate),
    cloudTrailDisabled(r),
    revokedCredentialsUsed(r, estate),
  ])
    if (f) out.push({ kind: 'finding', finding: f });
  const denied = accessDenied(r);
  if (denied) out.push({ kind: 'count', count: denied });
  return out;
}
