import type { S3Client } from '@aws-sdk/client-s3';
import type { ArchiveStore } from '../audit/archive.js';
import { type HeadDestination, headFileName } from '../audit/export.js';
import type { Clock } from '../clock.js';
import { s3Sdk } from './sdk.js';

export interface S3HeadsOptions {
  bucket: string;
  prefix: string;
  /** COMPLIANCE retention for each object when the bucket has Object Lock; 0 = none */
  retainDays: number;
  region: string;
  /** a local S3 (moto); omit for real AWS */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Where the audit ledger writes outside Ferry in S3: signed tree heads and archived segments. When the
 * bucket has Object Lock, each object is written in COMPLIANCE mode with a retention date, so not even
 * the bucket's owner (nor an administrator holding Ferry's master key) can delete or overwrite it
 * before then.
 */
export class S3AuditObjects {
  readonly name: string;
  readonly #s3: S3Client;
  #locked: boolean | undefined;

  constructor(
    readonly options: S3HeadsOptions,
    private readonly clock: Clock,
  ) {
    const credentials =
      options.credentials ??
      (options.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
    this.#s3 = new s3Sdk.S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, forcePathStyle: true }),
      ...(credentials === undefined ? {} : { credentials }),
      // An S3 that does not answer fails the export or archive run (retried with backoff) instead of
      // holding it, and the archive lease, indefinitely.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    });
    this.name = `s3://${options.bucket}/${options.prefix}`;
  }

  async #objectLock(): Promise<boolean> {
    if (this.#locked !== undefined) return this.#locked;
    try {
      const out = await this.#s3.send(
        new s3Sdk.GetObjectLockConfigurationCommand({ Bucket: this.options.bucket }),
      );
      this.#locked = out.ObjectLockConfiguration?.ObjectLockEnabled === s3Sdk.ObjectLockEnabled.Enabled;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ObjectLockConfigurationNotFoundError') throw err;
      this.#locked = false;
    }
    return this.#locked;
  }

  /** Writes `prefix + name`, under COMPLIANCE retention when the bucket has Object Lock. */
  async put(name: string, body: string | Buffer, contentType: string): Promise<void> {
    const lock = this.options.retainDays > 0 && (await this.#objectLock());
    await this.#s3.send(
      new s3Sdk.PutObjectCommand({
        Bucket: this.options.bucket,
        Key: `${this.options.prefix}${name}`,
        Body: body,
        ContentType: contentType,
        ...(lock
          ? {
              ObjectLockMode: 'COMPLIANCE',
              ObjectLockRetainUntilDate: new Date(
                this.clock.now().getTime() + this.options.retainDays * 86_400_000,
              ),
              ChecksumAlgorithm: 'SHA256',
            }
          : {}),
      }),
    );
  }

  /** The object's bytes, or null when there is none. */
  async get(name: string): Promise<Buffer | null> {
    try {
      const out = await this.#s3.send(
        new s3Sdk.GetObjectCommand({ Bucket: this.options.bucket, Key: `${this.options.prefix}${name}` }),
      );
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return null;
      throw err;
    }
  }

  /** Names (without the prefix) of every object under the prefix. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.#s3.send(
        new s3Sdk.ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: this.options.prefix,
          ContinuationToken: token,
        }),
      );
      for (const o of out.Contents ?? []) if (o.Key) names.push(o.Key.slice(this.options.prefix.length));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return names.sort();
  }
}

/** Publishes signed tree heads as objects in S3, one per tree size. */
export function s3HeadDestination(options: S3HeadsOptions, clock: Clock): HeadDestination {
  const objects = new S3AuditObjects(options, clock);
  return {
    name: objects.name,
    async publish(head) {
      await objects.put(headFileName(head), `${JSON.stringify(head)}\n`, 'application/json');
    },
  };
}

/** Archived segments of the audit ledger in S3 (the same writer as the heads, Object Lock and all). */
export function s3Archive(options: S3HeadsOptions, clock: Clock): ArchiveStore {
  const objects = new S3AuditObjects(options, clock);
  return {
    name: objects.name,
    put: (name, body, contentType) => objects.put(name, body, contentType),
    get: (name) => objects.get(name),
    list: () => objects.list(),
  };
}
