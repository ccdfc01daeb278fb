import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * CloudTrail records and log files shaped as AWS documents them ("CloudTrail record contents",
 * "CloudTrail userIdentity element", "Finding your CloudTrail log files"): what the tests, the demo
 * journey and the benchmark write into (local) S3.
 */

export type Identity = Record<string, unknown>;

/** A session of an assumed role (Ferry's STS credentials, or any other). */
export function assumedRole(o: {
  account: string;
  role: string;
  session: string;
  accessKeyId: string;
  sourceIdentity?: string;
  issuedAt?: Date;
}): Identity {
  return {
    type: 'AssumedRole',
    principalId: `AROA${o.role.toUpperCase().slice(0, 8).padEnd(8, 'X')}EXAMPLE:${o.session}`,
    arn: `arn:aws:sts::${o.account}:assumed-role/${o.role}/${o.session}`,
    accountId: o.account,
    accessKeyId: o.accessKeyId,
    sessionContext: {
      sessionIssuer: {
        type: 'Role',
        principalId: `AROA${o.role.toUpperCase().slice(0, 8).padEnd(8, 'X')}EXAMPLE`,
        arn: `arn:aws:iam::${o.account}:role/${o.role}`,
        accountId: o.account,
        userName: o.role,
      },
      webIdFederationData: {},
      attributes: {
        creationDate: (o.issuedAt ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        mfaAuthenticated: 'false',
      },
      ...(o.sourceIdentity ? { sourceIdentity: o.sourceIdentity } : {}),
    },
  };
}

export function root(account: string, accessKeyId?: string): Identity {
  return {
    type: 'Root',
    principalId: account,
    arn: `arn:aws:iam::${account}:root`,
    accountId: account,
    ...(accessKeyId ? { accessKeyId } : {}),
  };
}

export function iamUser(account: string, userName: string, accessKeyId: string): Identity {
  return {
    type: 'IAMUser',
    principalId: 'AIDAJ45Q7YFFAREXAMPLE',
    arn: `arn:aws:iam::${account}:user/${userName}`,
    accountId: account,
    accessKeyId,
    userName,
  };
}

/** One management event, as CloudTrail writes it. */
export function apiCall(o: {
  identity: Identity;
  eventSource: string;
  eventName: string;
  time: Date;
  account: string;
  region?: string;
  errorCode?: string;
  errorMessage?: string;
  requestParameters?: Record<string, unknown> | null;
  responseElements?: Record<string, unknown> | null;
  resources?: Array<{ ARN: string; accountId?: string; type?: string }>;
  eventId?: string;
  readOnly?: boolean;
}): Record<string, unknown> {
  return {
    eventVersion: '1.09',
    userIdentity: o.identity,
    eventTime: o.time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    eventSource: o.eventSource,
    eventName: o.eventName,
    awsRegion: o.region ?? 'us-east-1',
    sourceIPAddress: '198.51.100.7',
    userAgent: 'aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8',
    ...(o.errorCode ? { errorCode: o.errorCode, errorMessage: o.errorMessage ?? `${o.errorCode}` } : {}),
    requestParameters: o.requestParameters ?? null,
    responseElements: o.responseElements ?? null,
    requestID: randomBytes(8).toString('hex').toUpperCase(),
    eventID: o.eventId ?? randomUUID(),
    readOnly: o.readOnly ?? true,
    ...(o.resources ? { resources: o.resources } : {}),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: o.account,
    eventCategory: 'Management',
    tlsDetails: {
      tlsVersion: 'TLSv1.3',
      cipherSuite: 'TLS_AES_128_GCM_SHA256',
      clientProvidedHostHeader: `${o.eventSource.replace('.amazonaws.com', '')}.us-east-1.amazonaws.com`,
    },
  };
}

/** A root sign-in to the console (signin.amazonaws.com ConsoleLogin). */
export function rootConsoleLogin(account: string, time: Date): Record<string, unknown> {
  return {
    ...apiCall({
      identity: root(account),
      eventSource: 'signin.amazonaws.com',
      eventName: 'ConsoleLogin',
      time,
      account,
      responseElements: { ConsoleLogin: 'Success' },
      readOnly: false,
    }),
    eventType: 'AwsConsoleSignIn',
    additionalEventData: {
      LoginTo: 'https://console.aws.amazon.com/console/home',
      MobileVersion: 'No',
      MFAUsed: 'No',
    },
  };
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<16 random>.json.gz,
 * with AWSLogs/<org id>/<account>/… for an organization trail.
 */
export function logFileKey(o: {
  prefix?: string;
  org?: string;
  account: string;
  region?: string;
  time: Date;
}): string {
  const region = o.region ?? 'us-east-1';
  const t = o.time;
  const day = `${t.getUTCFullYear()}/${pad(t.getUTCMonth() + 1)}/${pad(t.getUTCDate())}`;
  const stamp = `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}T${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}Z`;
  const rand = randomBytes(8).toString('hex').slice(0, 16).replace(/^./, 'A');
  return `${o.prefix ?? ''}AWSLogs/${o.org ? `${o.org}/` : ''}${o.account}/CloudTrail/${region}/${day}/${o.account}_CloudTrail_${region}_${stamp}_${rand}.json.gz`;
}

/** A log file's bytes, gzip as delivered. */
export const logFile = (records: unknown[]): Buffer => gzipSync(JSON.stringify({ Records: records }));

export async function putLogFile(s3: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentType: 'application/json',
      ContentEncoding: 'gzip',
    }),
  );
}
