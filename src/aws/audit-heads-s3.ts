import {
  GetObjectLockConfigurationCommand,
  ObjectLockEnabled,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { type HeadDestination, headFileName } from '../audit/export.js';
import type { Clock } from '../clock.js';

export interface S3HeadsOptions {
  bucket: string;
  prefix: string;
  /** COMPLIANCE retention for each head when the bucket has Object Lock; 0 = none */
  retainDays: number;
  region: string;
  /** a local S3 (moto); omit for real AWS */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Publishes signed tree heads as objects in S3, one per tree size. When the bucket has Object Lock,
 * each head is written in COMPLIANCE mode with a retention date, so not even the bucket's owner (nor
 * an administrator holding Ferry's master key) can delete or overwrite it before then.
 */
export function s3HeadDestination(options: S3HeadsOptions, clock: Clock): HeadDestination {
  const credentials =
    options.credentials ??
    (options.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
  const s3 = new S3Client({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, forcePathStyle: true }),
    ...(credentials === undefined ? {} : { credentials }),
  });
  let locked: boolean | undefined;
  const objectLock = async (): Promise<boolean> => {
    if (locked !== undefined) return locked;
    try {
      const out = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: options.bucket }));
      locked = out.ObjectLockConfiguration?.ObjectLockEnabled === ObjectLockEnabled.Enabled;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ObjectLockConfigurationNotFoundError') throw err;
      locked = false;
    }
    return locked;
  };
  return {
    name: `s3://${options.bucket}/${options.prefix}`,
    async publish(head) {
      const lock = options.retainDays > 0 && (await objectLock());
      await s3.send(
        new PutObjectCommand({
          Bucket: options.bucket,
          Key: `${options.prefix}${headFileName(head)}`,
          Body: `${JSON.stringify(head)}\n`,
          ContentType: 'application/json',
          ...(lock
            ? {
                ObjectLockMode: 'COMPLIANCE',
                ObjectLockRetainUntilDate: new Date(clock.now().getTime() + options.retainDays * 86_400_000),
                ChecksumAlgorithm: 'SHA256',
              }
            : {}),
        }),
      );
    },
  };
}
