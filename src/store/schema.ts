import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Tables as Kysely sees them. Times are ISO-8601 UTC text (sortable in both engines),
 * booleans are 0/1 integers and structured values are JSON text, so SQLite and PostgreSQL
 * return identical rows and one conformance suite covers both.
 */
export interface Database {
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  totp_factors: TotpFactorsTable;
  sessions: SessionsTable;
  signin_throttle: SigninThrottleTable;
  api_tokens: ApiTokensTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  outbox: OutboxTable;
  aws_accounts: AwsAccountsTable;
  aws_roles: AwsRolesTable;
  assignments: AssignmentsTable;
  admin_role_assignments: AdminRoleAssignmentsTable;
  signing_keys: SigningKeysTable;
  service_providers: ServiceProvidersTable;
  saml_request_ids: SamlRequestIdsTable;
  issued_credentials: IssuedCredentialsTable;
  cloudtrail_sources: CloudTrailSourcesTable;
  cloudtrail_positions: CloudTrailPositionsTable;
  cloudtrail_records: CloudTrailRecordsTable;
  oidc_artifacts: OidcArtifactsTable;
  oidc_clients: OidcClientsTable;
  aws_session_revocations: AwsSessionRevocationsTable;
  aws_revocation_policies: AwsRevocationPoliciesTable;
  scim_connections: ScimConnectionsTable;
  scim_managed_objects: ScimManagedObjectsTable;
  ssh_ca_keys: SshCaKeysTable;
  ssh_serials: SshSerialsTable;
  ssh_logins: SshLoginsTable;
  upstream_signin_requests: UpstreamSigninRequestsTable;
  upstream_identities: UpstreamIdentitiesTable;
  identity_center_targets: IdentityCenterTargetsTable;
  identity_center_users: IdentityCenterUsersTable;
  identity_center_groups: IdentityCenterGroupsTable;
  identity_center_members: IdentityCenterMembersTable;
  proxy_apps: ProxyAppsTable;
  app_assignments: AppAssignmentsTable;
  pim_eligibilities: PimEligibilitiesTable;
  pim_activations: PimActivationsTable;
  review_campaigns: ReviewCampaignsTable;
  review_items: ReviewItemsTable;
  ca_policies: CaPoliciesTable;
  ca_policy_set: { id: number; generation: number };
  named_locations: NamedLocationsTable;
  signin_history: SigninHistoryTable;
  risk_detections: RiskDetectionsTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
  recovery_codes: RecoveryCodesTable;
  token_sources: TokenSourcesTable;
  aws_identities: AwsIdentitiesTable;
  audit_tree_nodes: AuditTreeNodesTable;
  audit_tree_heads: AuditTreeHeadsTable;
  audit_signing_keys: AuditSigningKeysTable;
  audit_sequencer: AuditSequencerTable;
  audit_exports: AuditExportsTable;
  worker_instances: WorkerInstancesTable;
  leases: LeasesTable;
  audit_archive_segments: AuditArchiveSegmentsTable;
  audit_archive_status: AuditArchiveStatusTable;
  alerts: AlertsTable;
  alert_sinks: AlertSinksTable;
  alert_deliveries: AlertDeliveriesTable;
  detection_cursors: DetectionCursorsTable;
  detection_events: DetectionEventsTable;
  permission_sets: PermissionSetsTable;
  permission_set_assignments: PermissionSetAssignmentsTable;
  iic_permission_sets: IicPermissionSetsTable;
  iic_assignments: IicAssignmentsTable;
  aws_org_units: AwsOrgUnitsTable;
  aws_org_accounts: AwsOrgAccountsTable;
}

export interface UsersTable {
  id: string;
  user_name: string;
  /** lower-cased user_name: UPNs compare case-insensitively (SCIM userName has caseExact=false). */
  user_name_key: string;
  display_name: string | null;
  given_name: string | null;
  family_name: string | null;
  emails: string; // JSON: Array<{ value, type?, primary? }>
  active: number;
  external_id: string | null;
  attributes: string; // JSON: free attributes (department, costCenter, …)
  phone_numbers: Generated<string>; // JSON: Array<{ value, type?, primary? }> (0005)
  addresses: Generated<string>; // JSON: Array<{ type?, formatted?, streetAddress?, … }> (0005)
  password_hash: string | null;
  /** 1: the next sign-in must register a second factor (0009) */
  mfa_registration_required: Generated<number>;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface GroupsTable {
  id: string;
  display_name: string;
  display_name_key: string;
  description: string | null;
  external_id: string | null;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  created_at: string;
  /** PIM (0024): the activation that granted this membership for a while; null for a standing one */
  activation_id?: string | null;
  /** PIM (0024): when the granting activation ends */
  expires_at?: string | null;
}

export interface TotpFactorsTable {
  id: string;
  user_id: string;
  /** Base32 secret sealed with the master key (keys/sealing). */
  secret_sealed: string;
  label: string;
  confirmed_at: string | null;
  /** Highest RFC 6238 time step accepted so far: a code is never accepted twice. */
  last_used_step: number;
  created_at: string;
}

export interface SessionsTable {
  id: string;
  /** keyed hash of the cookie value (identity/secrets.ts storedSecret); the value itself is never stored. */
  token_hash: string;
  user_id: string;
  state: 'pending_mfa' | 'pending_enrollment' | 'active';
  amr: string; // JSON array of RFC 8176 values: pwd, otp, …
  auth_time: string | null;
  created_at: string;
  last_seen_at: string;
  idle_expires_at: string;
  absolute_expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  ip: string | null;
  user_agent: string | null;
  /** none | low | medium | high: identity protection's view of the sign-in (0009) */
  signin_risk: Generated<string>;
}

export interface SigninThrottleTable {
  /** 'account:<canonical user name>' or 'address:<ip>' */
  key: string;
  /** attempts reserved in this window (evaluated or in flight), less the ones that succeeded */
  failures: number;
  window_started_at: string;
  locked_until: string | null;
  /** attempts refused unevaluated since the window or lock began (0012) */
  refused: number;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  /** keyed hash of the token's secret part (identity/secrets.ts storedSecret). */
  secret_hash: string;
  created_at: string;
  created_by: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  /** space-separated permissions, or `*` for all (0021: tokens made before scopes existed) */
  scopes: string;
  /** 0035: the person whose admin rights bound the token (directly or through the token that made it) */
  creator_user_id: string | null;
}

export interface AuditEventsTable {
  /** read order; from a sequence (PostgreSQL) or the rowid (SQLite), never from a shared row */
  seq: Generated<number>;
  id: string;
  time: string;
  type: string;
  outcome: string;
  actor: string; // JSON { type, id?, name? }
  subject: string | null;
  ip: string | null;
  request_id: string | null;
  data: string; // JSON
  prev_hash: string; // '' since 0019; the hash chain of events written before it
  hash: string; // since 0019: the leaf hash (as leaf_hash)
  /** position in the Merkle tree, given by the sequencer; null until sealed */
  leaf_index: number | null;
  leaf_hash: string | null;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface OutboxTable {
  id: string;
  type: string;
  payload: string; // JSON DomainEvent
  created_at: string;
  available_at: string;
  attempts: number;
  claimed_by: string | null;
  claimed_until: string | null;
  processed_at: string | null;
  last_error: string | null;
  /** since 0027: 'urgent' (revocation, offboarding) or 'bulk'; each lane is claimed on its own */
  lane: Generated<string>;
}

export interface AwsAccountsTable {
  id: string;
  alias: string;
  alias_key: string;
  partition: 'aws' | 'aws-us-gov' | 'aws-cn';
  saml_provider_name: string;
  /** the AWS endpoint (STS, IAM) this account is reached at: the local AWS in the demo, null for AWS itself */
  endpoint_url: string | null;
  created_at: string;
  updated_at: string;
}

export interface AwsRolesTable {
  account_id: string;
  name: string;
  path: string;
  /** seconds, 3600..43200 as IAM allows */
  max_session_duration: number;
  description: string | null;
  created_at: string;
  updated_at: string;
}

export interface AssignmentsTable {
  id: string;
  principal_type: 'group' | 'user' | 'workload';
  principal_id: string;
  account_id: string;
  role_name: string;
  created_at: string;
  created_by: string;
}

/** Standing admin roles: group or user → admin:<role> (0021). */
export interface AdminRoleAssignmentsTable {
  id: string;
  principal_type: 'group' | 'user';
  principal_id: string;
  role: string;
  created_at: string;
  created_by: string;
}

export interface SigningKeysTable {
  id: string;
  purpose: string;
  algorithm: string;
  /** PKCS#8 PEM sealed with the master key */
  private_key_sealed: string;
  certificate_pem: string;
  state: 'next' | 'current' | 'retired';
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
}

export interface ServiceProvidersTable {
  id: string;
  entity_id: string;
  name: string;
  acs_urls: string;
  name_id_format: string;
  attribute_map: string;
  signing_certificates: string;
  require_signed_requests: number;
  created_at: string;
  updated_at: string;
  /** single-factor | mfa | phishing-resistant: the weakest sign-in an assertion to this SP may state */
  minimum_authn_context: string;
  /** 0/1: sign status-only responses (NoPassive, NoAuthnContext) */
  sign_status_responses: number;
  /** 0/1: reachable by every active user while no group is assigned */
  open_to_all: number;
}

export interface IssuedCredentialsTable {
  id: string;
  kind: string;
  user_id: string | null;
  subject: string;
  target: string;
  audience: string | null;
  external_id: string;
  details: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
}

/** One person denied on one role: sessions with their SourceIdentity issued before `cutoff`. */
export interface AwsSessionRevocationsTable {
  account_id: string;
  role_name: string;
  source_identity: string;
  user_id: string | null;
  cutoff: string;
  reason: string;
  created_at: string;
  updated_at: string;
}

/** Per role: `version` grows with every change of its revocations; `applied_version` is what IAM has. */
export interface AwsRevocationPoliciesTable {
  account_id: string;
  role_name: string;
  version: number;
  applied_version: number;
  applied_at: string | null;
}

export interface ScimConnectionsTable {
  id: string;
  name: string;
  /** keyed hash of the bearer token's secret part (identity/secrets.ts storedSecret). */
  secret_hash: string;
  created_at: string;
  created_by: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** 1: this connection may set passwords (off by default; never for an account it was handed) (0015) */
  password_writes: number;
}

/** Which SCIM connection manages a user or group, and how it came to (0015). */
export interface ScimManagedObjectsTable {
  kind: 'user' | 'group';
  object_id: string;
  connection_id: string;
  /** 'provisioned': the connection created it; 'handed': an admin handed an existing object to it */
  origin: 'provisioned' | 'handed';
  since: string;
}

export type ScimConnectionRow = Selectable<ScimConnectionsTable>;
export interface SshCaKeysTable {
  id: string;
  use: 'user' | 'host';
  algorithm: 'ssh-ed25519' | 'rsa-sha2-512';
  /** PKCS#8 PEM sealed with the master key */
  private_key_sealed: string;
  /** `<type> <base64>`: what TrustedUserCAKeys and @cert-authority lines carry */
  public_key: string;
  state: 'next' | 'current' | 'retired';
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
}

export interface SshSerialsTable {
  id: number;
  /** bigint: PostgreSQL returns it as a string */
  last_serial: number | string;
}

export interface SshLoginsTable {
  id: string;
  group_id: string;
  host_pattern: string;
  logins: string; // JSON array of Linux principals
  port_forwarding: number;
  agent_forwarding: number;
  max_duration: number | null;
  created_at: string;
  updated_at: string;
  created_by: string;
}

export interface ProxyAppsTable {
  name: string;
  upstream_url: string;
  /** scheme://host[:port], no path */
  public_url: string;
  created_at: string;
  updated_at: string;
  created_by: string;
  /** 0/1: reachable by every active user while no group is assigned (0020; earlier apps were set to 1) */
  open_to_all: number;
}

export interface AppAssignmentsTable {
  app_name: string;
  group_id: string;
  created_at: string;
  created_by: string;
}

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type GroupRow = Selectable<GroupsTable>;
export type SessionRow = Selectable<SessionsTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type { Generated };

/** oidc-provider's artifacts. Since 0013 id, grant_id, user_code and uid are keyed hashes, payload is sealed. */
export interface OidcArtifactsTable {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  account_id: string | null;
  expires_at: string | null;
  consumed_at: string | null;
  /** Grant rows: the Ferry sign-in session it was given under; revoking that session ends it (0013) */
  session_id: Generated<string | null>;
}

export interface OidcClientsTable {
  id: string;
  name: string;
  kind: 'relying-party' | 'workload';
  metadata: string;
  active: number;
  created_at: string;
  updated_at: string;
}

/** A sign-in sent to an upstream identity provider and not yet returned (0010). */
export interface UpstreamSigninRequestsTable {
  /** SHA-256 of the state parameter: the row is found, and deleted, by the state coming back */
  state_hash: string;
  provider: string;
  nonce: string;
  /** the PKCE code verifier, sealed with the master key */
  code_verifier_sealed: string;
  return_to: string;
  created_at: string;
  expires_at: string;
}

/** An upstream account (Entra tenant id + object id) linked to a Ferry user (0010). */
export interface UpstreamIdentitiesTable {
  provider: string;
  tenant_id: string;
  object_id: string;
  user_id: string;
  created_at: string;
  last_signin_at: string;
}

/** Where Ferry pushes users and groups by SCIM: an IAM Identity Center endpoint and its token. (0011) */
export interface IdentityCenterTargetsTable {
  id: string;
  endpoint: string;
  /** the bearer token, sealed with the master key */
  token_sealed: string;
  created_at: string;
  updated_at: string;
  updated_by: string;
}

/** A Ferry user as last pushed to Identity Center; remote_id null while a create is unconfirmed. */
export interface IdentityCenterUsersTable {
  user_id: string;
  user_name: string;
  remote_id: string | null;
  pushed: string; // JSON: the SCIM representation last sent
  pushed_at: string;
}

export interface IdentityCenterGroupsTable {
  group_id: string;
  display_name: string;
  remote_id: string | null;
  pushed: string; // JSON: { displayName, externalId }
  pushed_at: string;
}

/** A membership Identity Center confirmed (GetGroup there returns no members, so this is the record). */
export interface IdentityCenterMembersTable {
  group_id: string;
  user_id: string;
  pushed_at: string;
}

/** PIM: a group or user may activate one AWS role for a while, under these rules (0008). */
export interface PimEligibilitiesTable {
  id: string;
  principal_type: 'group' | 'user';
  principal_id: string;
  account_id: string;
  role_name: string;
  /** seconds */
  max_duration: number;
  require_justification: number;
  require_ticket: number;
  require_mfa: number;
  approvers: string; // JSON Array<{ type: 'user' | 'group', id, name }>; [] = no approval needed
  approvals_required: number;
  auto_approve: string | null; // JSON AutoApprove
  /** 0024: aws-role | permission-set | group | ssh (what account_id and role_name mean: see the migration) */
  target_kind?: PimTargetKind;
  created_at: string;
  created_by: string;
  updated_at: string;
}

/** PIM: one request to activate an eligible role, through its states (0008). */
export interface PimActivationsTable {
  id: string;
  eligibility_id: string;
  user_id: string;
  user_name: string;
  account_id: string;
  role_name: string;
  state: string;
  /** grows with every change: updates are conditional on it, so concurrent approvals make one transition */
  version: number;
  duration: number;
  justification: string | null;
  ticket: string | null;
  approvers: string;
  approvals_required: number;
  approvals: string; // JSON Array<{ userId, userName, at, reason }>
  requested_at: string;
  answer_by: string;
  activated_at: string | null;
  expires_at: string | null;
  ended_at: string | null;
  ended_by: string | null;
  end_reason: string | null;
  updated_at: string;
  /** 0024: aws-role | permission-set | group | ssh */
  target_kind?: PimTargetKind;
  /** 0024: the effect outside Ferry's tables: pending | applied | failed | removing | removed | kept */
  effect_state?: string | null;
  effect_detail?: string | null;
  effect_at?: string | null;
}

/** PIM (0024): what an eligibility or activation is for. */
export type PimTargetKind = 'aws-role' | 'permission-set' | 'group' | 'ssh';

/** Access reviews: one campaign over memberships and eligibilities (0008). */
export interface ReviewCampaignsTable {
  id: string;
  name: string;
  reviewers: string; // JSON Array<{ type: 'user' | 'group', id, name }>
  deadline: string;
  remove_unreviewed: number;
  state: 'open' | 'closed';
  created_at: string;
  created_by: string;
  closed_at: string | null;
  closed_by: string | null;
}

export interface ReviewItemsTable {
  id: string;
  campaign_id: string;
  kind: 'membership' | 'eligibility';
  group_id: string | null;
  user_id: string | null;
  eligibility_id: string | null;
  /** what a reviewer reads: "jane@… in AWS-Account1-Developers" */
  label: string;
  decision: 'approve' | 'deny' | null;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
  outcome: 'kept' | 'removed' | null;
}

/** Conditional access policies (0009). */
export interface CaPoliciesTable {
  id: string;
  name: string;
  name_key: string;
  state: 'on' | 'report-only' | 'off';
  definition: string; // JSON: PolicyDefinition (access/policies/policy.ts)
  created_at: string;
  updated_at: string;
  version: number;
}

export interface NamedLocationsTable {
  name: string;
  ranges: string; // JSON: CIDR strings
  created_at: string;
  updated_at: string;
}

/** Every password sign-in attempt, for the detections (0009). */
export interface SigninHistoryTable {
  id: string;
  user_id: string | null;
  user_key: string;
  ip: string;
  country: string | null;
  outcome: 'success' | 'failure';
  password_fp: string | null;
  at: string;
}

export interface RiskDetectionsTable {
  id: string;
  user_id: string | null;
  subject: string;
  kind: string;
  level: 'low' | 'medium' | 'high';
  ip: string | null;
  detail: string; // JSON
  state: 'open' | 'confirmed' | 'dismissed';
  created_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
}

export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  public_key: string;
  counter: number;
  transports: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface WebauthnChallengesTable {
  challenge: string;
  user_id: string;
  purpose: 'register' | 'authenticate';
  expires_at: string;
}

export interface RecoveryCodesTable {
  code_hash: string;
  user_id: string;
  created_at: string;
  used_at: string | null;
}

/** Where each `ferry login` grant was first used: token reuse from a new source (0009). */
export interface TokenSourcesTable {
  grant_hash: string;
  user_id: string;
  network: string;
  ip: string;
  first_seen_at: string;
}

/** AuthnRequest IDs seen, kept until the request could no longer be accepted anyway (replay refusal). */
export interface SamlRequestIdsTable {
  issuer: string;
  request_id: string;
  expires_at: string;
}

/** One value ever issued as RoleSessionName/SourceIdentity and its only owner (see 0014_aws_identities). */
export interface AwsIdentitiesTable {
  identity_key: string;
  identity: string;
  owner_key: string;
  user_name: string;
  created_at: string;
}
// The audit ledger (0019): Merkle tree nodes, signed heads, their keys, the sequencer's lease,
// export progress per destination, and instance heartbeats.
export interface AuditTreeNodesTable {
  level: number;
  idx: number;
  hash: string;
}

export interface AuditTreeHeadsTable {
  tree_size: number;
  root_hash: string;
  frontier: string; // JSON string[]
  signed_at: string;
  key_id: string;
  signature: string;
}

export interface AuditSigningKeysTable {
  id: string;
  public_key: string;
  private_key_sealed: string;
  state: 'current' | 'retired';
  created_at: string;
}

export interface AuditSequencerTable {
  id: number;
  holder: string | null;
  lease_until: string | null;
}

export interface AuditExportsTable {
  destination: string;
  tree_size: number;
  exported_at: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
}

export interface WorkerInstancesTable {
  id: string;
  started_at: string;
  heartbeat_at: string;
}

/** The scheduled archive's health per destination (0036): failures since the last success, backoff. */
export interface AuditArchiveStatusTable {
  destination: string;
  archived_at: string | null;
  checked_at: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
}

/** Archived segments of the audit ledger (0028); the newest end_leaf is the pruned prefix. */
export interface AuditArchiveSegmentsTable {
  first_leaf: number;
  end_leaf: number;
  events: number;
  first_time: string;
  last_time: string;
  destination: string;
  name: string;
  events_sha256: string;
  manifest_sha256: string;
  archived_at: string;
}

/** Named leases across instances (0027): one holder at a time, taken over once expired. */
export interface LeasesTable {
  name: string;
  holder: string | null;
  lease_until: string | null;
  /** the holder's instance (worker_instances), whose stale heartbeat frees the lease at once (0038) */
  holder_instance: string | null;
}
export interface CloudTrailSourcesTable {
  id: string;
  bucket: string;
  prefix: string;
  region: string | null;
  created_at: string;
  last_sync_at: string | null;
  last_error: string | null;
  // A source's sync lease is the `cloudtrail-source:<id>` row of leases (withLease); its old lease
  // columns went in 0047.
}

export interface CloudTrailPositionsTable {
  source_id: string;
  folder: string;
  after_key: string;
  updated_at: string;
}

export interface CloudTrailRecordsTable {
  event_id: string;
  event_time: string;
  event_source: string;
  event_name: string;
  aws_region: string | null;
  account: string;
  source_ip: string | null;
  user_agent: string | null;
  error_code: string | null;
  error_message: string | null;
  identity_type: string;
  access_key_id: string | null;
  role_arn: string | null;
  role_name: string | null;
  role_session_name: string | null;
  source_identity: string | null;
  method: string;
  user_id: string | null;
  user_name: string | null;
  credential_id: string | null;
  issued_by_ferry: number;
  raw: string;
  source_id: string;
  object_key: string;
  ingested_at: string;
}

/** One event counted towards a spike rule, kept while it is inside the rule's sliding window. */
export interface DetectionEventsTable {
  rule: string;
  subject: string;
  evidence: string;
  occurred_at: string;
  /** how many events this row stands for (aggregated SCIM authentication failures) */
  weight: Generated<number>;
}

/** One alert per deduplication key and window; repeats raise `occurrences` (0026). */
export interface AlertsTable {
  id: string;
  rule: string;
  severity: string;
  title: string;
  subject: string;
  account: string | null;
  dedup_key: string;
  dedup_slot: string;
  first_seen_at: string;
  last_seen_at: string;
  occurrences: number;
  evidence: string;
  /** JSON */
  details: string;
  /** set when a suppression window covered it: recorded, not sent */
  suppressed_reason: string | null;
  created_at: string;
}

/** Where alerts go; the webhook key, Slack URL or SMTP password sealed under the master key (0026). */
export interface AlertSinksTable {
  name: string;
  type: 'webhook' | 'slack' | 'email';
  /** JSON of the non-secret settings */
  settings: string;
  secret_sealed: string;
  min_severity: string;
  created_at: string;
  created_by: string;
}

export interface AlertDeliveriesTable {
  alert_id: string;
  sink: string;
  state: 'pending' | 'delivered' | 'failed' | 'rate-limited';
  attempts: number;
  last_error: string | null;
  updated_at: string;
  delivered_at: string | null;
}

/** How far a reader of the audit trail got (the Ferry-side detections), by name (0026). */
export interface DetectionCursorsTable {
  name: string;
  position: number;
  updated_at: string;
}

/** 0023: an IAM Identity Center permission set as declared (tenant file, API, CLI). */
export interface PermissionSetsTable {
  name: string;
  description: string | null;
  session_duration: string;
  relay_state: string | null;
  managed_policies: string;
  customer_managed_policies: string;
  inline_policy: string | null;
  permissions_boundary: string | null;
  created_at: string;
  updated_at: string;
}

/** 0023: a group or user assigned a permission set in an account or every account of an OU. */
export interface PermissionSetAssignmentsTable {
  id: string;
  principal_type: 'group' | 'user';
  principal_id: string;
  scope_type: 'account' | 'ou';
  scope_id: string;
  permission_set: string;
  created_at: string;
  created_by: string;
}

/** 0023: a permission set Ferry created (or adopted) in Identity Center: the only ones it changes. */
export interface IicPermissionSetsTable {
  name: string;
  instance_arn: string;
  arn: string | null;
  updated_at: string;
}

/** 0023: an account assignment Ferry made in Identity Center, with the state of its last request. */
export interface IicAssignmentsTable {
  permission_set: string;
  account_id: string;
  principal_type: 'GROUP' | 'USER';
  principal_id: string;
  principal_name: string;
  state: 'creating' | 'created' | 'deleting' | 'failed';
  request_id: string | null;
  failure: string | null;
  updated_at: string;
}

/** 0023: an organizational unit (or the root) as AWS Organizations last described it. */
export interface AwsOrgUnitsTable {
  id: string;
  name: string;
  parent_id: string | null;
  path: string;
  updated_at: string;
}

/** 0023: an account of the organization and the OU (or root) it is in. */
export interface AwsOrgAccountsTable {
  id: string;
  name: string;
  email: string | null;
  status: string;
  parent_id: string;
  updated_at: string;
}
