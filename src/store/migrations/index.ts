import type { Migration } from 'kysely';
import * as foundation from './0001_foundation.js';
import * as awsAccessSaml from './0002_aws_access_saml.js';
import * as oidc from './0003_oidc.js';
import * as ssh from './0004_ssh.js';
import * as scim from './0005_scim.js';
import * as sessionRevocation from './0006_session_revocation.js';
import * as proxy from './0007_proxy.js';
import * as pim from './0008_pim.js';
import * as conditionalAccess from './0009_conditional_access.js';
import * as upstream from './0010_upstream.js';
import * as scimPush from './0011_scim_push.js';
import * as signinRefusals from './0012_signin_refusals.js';
import * as secretsAtRest from './0013_secrets_at_rest.js';
import * as awsIdentities from './0014_aws_identities.js';
import * as scimLanes from './0015_scim_lanes.js';
import * as samlRequests from './0017_saml_requests.js';
import * as auditLedger from './0019_audit_ledger.js';
import * as proxyAppsClosed from './0020_proxy_apps_closed.js';
import * as adminRoles from './0021_admin_roles.js';
import * as permissionSets from './0023_permission_sets.js';
import * as pimBeyondRoles from './0024_pim_beyond_roles.js';
import * as cloudtrail from './0025_cloudtrail.js';
import * as detectionsAlerts from './0026_detections_alerts.js';
import * as outboxLanes from './0027_outbox_lanes.js';
import * as auditArchive from './0028_audit_archive.js';
import * as activityThroughputSlidingWindows from './0034_activity_throughput_sliding_windows.js';
import * as apiTokenCreator from './0035_api_token_creator.js';
import * as auditArchiveStatus from './0036_audit_archive_status.js';
import * as cloudtrailTimeKey from './0037_cloudtrail_time_key.js';
import * as leaseHolderInstance from './0038_lease_holder_instance.js';
import * as oidcArtifactsPartialIndexes from './0041_oidc_artifacts_partial_indexes.js';
import * as sshLoginsGeneration from './0042_ssh_logins_generation.js';

/**
 * Every migration, in order. Add new ones at the end, numbered above every migration that has shipped
 * (Kysely refuses to run one that sorts before a migration a database already applied, so a free lower
 * number is not free); never edit one that has shipped.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_aws_access_saml': awsAccessSaml,
  '0003_oidc': oidc,
  '0004_ssh': ssh,
  '0005_scim': scim,
  '0006_session_revocation': sessionRevocation,
  '0007_proxy': proxy,
  '0008_pim': pim,
  '0009_conditional_access': conditionalAccess,
  '0010_upstream': upstream,
  '0011_scim_push': scimPush,
  '0012_signin_refusals': signinRefusals,
  '0013_secrets_at_rest': secretsAtRest,
  '0014_aws_identities': awsIdentities,
  '0015_scim_lanes': scimLanes,
  '0017_saml_requests': samlRequests,
  '0019_audit_ledger': auditLedger,
  '0020_proxy_apps_closed': proxyAppsClosed,
  '0021_admin_roles': adminRoles,
  '0023_permission_sets': permissionSets,
  '0024_pim_beyond_roles': pimBeyondRoles,
  '0025_cloudtrail': cloudtrail,
  '0026_detections_alerts': detectionsAlerts,
  '0027_outbox_lanes': outboxLanes,
  '0028_audit_archive': auditArchive,
  '0034_activity_throughput_sliding_windows': activityThroughputSlidingWindows,
  '0035_api_token_creator': apiTokenCreator,
  '0036_audit_archive_status': auditArchiveStatus,
  '0037_cloudtrail_time_key': cloudtrailTimeKey,
  '0038_lease_holder_instance': leaseHolderInstance,
  '0041_oidc_artifacts_partial_indexes': oidcArtifactsPartialIndexes,
  '0042_ssh_logins_generation': sshLoginsGeneration,
};
