import { randomUUID } from 'node:crypto';
import type { AttributedRecord, Attribution } from '../../src/activity/record.js';

/**
 * CloudTrail records shaped like AWS's documented record format
 * (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
 * and …/cloudtrail-event-reference-user-identity.html), and the AttributedRecord ingestion makes of them.
 */

export const ACCOUNT = '123456789012';

type Raw = Record<string, unknown>;

export const identities = {
  root: (account = ACCOUNT): Raw => ({
    type: 'Root',
    principalId: account,
    arn: `arn:aws:iam::${account}:root`,
    accountId: account,
    accessKeyId: 'ASIAROOTSESSION00001',
  }),
  iamUser: (name: string, account = ACCOUNT): Raw => ({
    type: 'IAMUser',
    principalId: 'AIDAJ45Q7YFFAREXAMPLE',
    arn: `arn:aws:iam::${account}:user/${name}`,
    accountId: account,
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    userName: name,
  }),
  assumedRole: (o: {
    role: string;
    session: string;
    account?: string;
    accessKeyId?: string;
    sourceIdentity?: string;
    /** when the session was issued */
    creationDate?: string;
  }): Raw => {
    const account = o.account ?? ACCOUNT;
    return {
      type: 'AssumedRole',
      principalId: `AROAEXAMPLEROLEID:${o.session}`,
      arn: `arn:aws:sts::${account}:assumed-role/${o.role}/${o.session}`,
      accountId: account,
      accessKeyId: o.accessKeyId ?? 'ASIAEXAMPLESESSION01',
      sessionContext: {
        sessionIssuer: {
          type: 'Role',
          principalId: 'AROAEXAMPLEROLEID',
          arn: `arn:aws:iam::${account}:role/${o.role}`,
          accountId: account,
          userName: o.role,
        },
        attributes: { creationDate: o.creationDate ?? '2026-12-06T08:00:00Z', mfaAuthenticated: 'false' },
        ...(o.sourceIdentity ? { sourceIdentity: o.sourceIdentity } : {}),
      },
    };
  },
  samlUser: (o: { user: string; provider: string; account?: string }): Raw => ({
    type: 'SAMLUser',
    principalId: `SAMPLE_PRINCIPAL:${o.user}`,
    userName: o.user,
    identityProvider: o.provider,
  }),
  webIdentityUser: (o: { user: string; provider: string }): Raw => ({
    type: 'WebIdentityUser',
    principalId: `${o.provider}:sts.amazonaws.com:${o.user}`,
    userName: o.user,
    identityProvider: o.provider,
  }),
};

/** One record; pass what the event is about, the rest gets plausible values. */
export function cloudTrailRecord(o: {
  eventName: string;
  eventSource: string;
  userIdentity: Raw;
  eventTime?: string;
  account?: string;
  region?: string;
  requestParameters?: Raw | null;
  responseElements?: Raw | null;
  errorCode?: string;
  errorMessage?: string;
  additionalEventData?: Raw;
  eventType?: string;
  readOnly?: boolean;
}): Raw {
  return {
    eventVersion: '1.09',
    userIdentity: o.userIdentity,
    eventTime: o.eventTime ?? '2026-12-06T09:00:00Z',
    eventSource: o.eventSource,
    eventName: o.eventName,
    awsRegion: o.region ?? 'us-east-1',
    sourceIPAddress: '198.51.100.7',
    userAgent: 'aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64',
    ...(o.errorCode ? { errorCode: o.errorCode, errorMessage: o.errorMessage ?? o.errorCode } : {}),
    requestParameters: o.requestParameters ?? null,
    responseElements: o.responseElements ?? null,
    ...(o.additionalEventData ? { additionalEventData: o.additionalEventData } : {}),
    requestID: randomUUID(),
    eventID: randomUUID(),
    readOnly: o.readOnly ?? false,
    eventType: o.eventType ?? 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: o.account ?? ACCOUNT,
    eventCategory: 'Management',
    tlsDetails: {
      tlsVersion: 'TLSv1.3',
      cipherSuite: 'TLS_AES_128_GCM_SHA256',
      clientProvidedHostHeader: 'iam.amazonaws.com',
    },
  };
}

/** A console sign-in record (eventType AwsConsoleSignIn, signin.amazonaws.com). */
export function consoleLogin(
  userIdentity: Raw,
  o: { success?: boolean; eventTime?: string; account?: string } = {},
): Raw {
  const success = o.success ?? true;
  return cloudTrailRecord({
    eventName: 'ConsoleLogin',
    eventSource: 'signin.amazonaws.com',
    eventType: 'AwsConsoleSignIn',
    userIdentity,
    eventTime: o.eventTime,
    account: o.account,
    responseElements: { ConsoleLogin: success ? 'Success' : 'Failure' },
    additionalEventData: {
      LoginTo: 'https://console.aws.amazon.com/console/home',
      MobileVersion: 'No',
      MFAUsed: 'No',
    },
    ...(success ? {} : { errorMessage: 'Failed authentication' }),
  });
}

const NOT_FERRY: Attribution = {
  method: 'none',
  userId: null,
  userName: null,
  credentialId: null,
  issuedByFerry: false,
};

/** A person's Ferry-issued session, as correlation attributes it. */
export const ferryIssued = (userId: string, userName: string): Attribution => ({
  method: 'source-identity',
  userId,
  userName,
  credentialId: null,
  issuedByFerry: true,
});

/** What ingestion stores for a raw record: the fields detections read, and the attribution. */
export function attributed(raw: Raw, attribution: Attribution = NOT_FERRY): AttributedRecord {
  const id = (raw.userIdentity ?? {}) as Raw;
  const ctx = (id.sessionContext ?? {}) as Raw;
  const issuer = (ctx.sessionIssuer ?? {}) as Raw;
  const arn = typeof id.arn === 'string' ? id.arn : '';
  const session = /:assumed-role\/[^/]+\/(.+)$/.exec(arn)?.[1] ?? null;
  return {
    eventId: raw.eventID as string,
    eventTime: new Date(raw.eventTime as string),
    eventSource: raw.eventSource as string,
    eventName: raw.eventName as string,
    awsRegion: (raw.awsRegion as string) ?? null,
    account: raw.recipientAccountId as string,
    sourceIpAddress: (raw.sourceIPAddress as string) ?? null,
    userAgent: (raw.userAgent as string) ?? null,
    errorCode:
      (raw.errorCode as string) ??
      (raw.eventName === 'ConsoleLogin' && (raw.responseElements as Raw)?.ConsoleLogin === 'Failure'
        ? 'Failed authentication'
        : null),
    errorMessage: (raw.errorMessage as string) ?? null,
    identityType: (id.type as string) ?? 'Unknown',
    accessKeyId: (id.accessKeyId as string) ?? null,
    roleArn: id.type === 'AssumedRole' ? ((issuer.arn as string) ?? null) : null,
    roleSessionName: session,
    sourceIdentity: (ctx.sourceIdentity as string) ?? null,
    attribution,
    raw,
  };
}
