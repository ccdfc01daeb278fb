import { onFirstUse } from '../lazy-module.js';

/**
 * The AWS SDK clients, loaded on first use (ADR 0046). Each client package with its Smithy runtime
 * costs 100–180 ms of a start and several MB of heap, and a server that never calls AWS (or not yet)
 * needs none of them. They are CommonJS packages, so `require` loads one synchronously at the first
 * property read; importing them with `import` elsewhere yields the same module object (same classes
 * for `instanceof`). Modules on the server's start path import only types from '@aws-sdk/…' and take
 * the values from here, e.g. `new iamSdk.GetRoleCommand(…)`.
 */
export const iamSdk = onFirstUse<typeof import('@aws-sdk/client-iam')>('@aws-sdk/client-iam');
export const stsSdk = onFirstUse<typeof import('@aws-sdk/client-sts')>('@aws-sdk/client-sts');
export const s3Sdk = onFirstUse<typeof import('@aws-sdk/client-s3')>('@aws-sdk/client-s3');
export const ssoAdminSdk =
  onFirstUse<typeof import('@aws-sdk/client-sso-admin')>('@aws-sdk/client-sso-admin');
export const identityStoreSdk = onFirstUse<typeof import('@aws-sdk/client-identitystore')>(
  '@aws-sdk/client-identitystore',
);
export const organizationsSdk = onFirstUse<typeof import('@aws-sdk/client-organizations')>(
  '@aws-sdk/client-organizations',
);
