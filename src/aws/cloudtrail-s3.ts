import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from './sdk.js';

/**
 * S3 clients for reading CloudTrail log files, one per region (a trail's bucket may live in another
 * region than Ferry's own AWS calls). Against real AWS the SDK's default chain provides the
 * credentials; with an endpoint (moto) path-style addressing and dummy keys are used.
 */
export function cloudTrailS3(defaults: {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}): (source: { region: string | null }) => S3Client {
  const clients = new Map<string, S3Client>();
  const credentials =
    defaults.credentials ??
    (defaults.endpoint === undefined ? undefined : { accessKeyId: 'testing', secretAccessKey: 'testing' });
  return (source) => {
    const region = source.region ?? defaults.region;
    let client = clients.get(region);
    if (!client) {
      client = new s3Sdk.S3Client({
        region,
        ...(defaults.endpoint === undefined ? {} : { endpoint: defaults.endpoint, forcePathStyle: true }),
        ...(credentials === undefined ? {} : { credentials }),
        maxAttempts: 3,
      });
      clients.set(region, client);
    }
    return client;
  };
}
