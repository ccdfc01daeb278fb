/**
 * Domain events written to the outbox in the same transaction as the change they describe.
 * Other modules react to them (revocation, SCIM push) without importing the module that emits them.
 */
export type DomainEvent =
  | { type: 'user.created'; userId: string; userName: string }
  | { type: 'user.updated'; userId: string; userName: string }
  | { type: 'user.deactivated'; userId: string; userName: string }
  | { type: 'user.reactivated'; userId: string; userName: string }
  | { type: 'user.deleted'; userId: string; userName: string }
  | { type: 'group.created'; groupId: string; displayName: string }
  /** renamed (or its description/externalId changed) */
  | { type: 'group.updated'; groupId: string; displayName: string }
  | { type: 'group.deleted'; groupId: string; displayName: string }
  | { type: 'membership.changed'; groupId: string; userId: string; change: 'added' | 'removed' }
  | {
      type: 'session.revoked';
      sessionId: string;
      userId: string;
      reason: string;
      /** also end the person's live AWS sessions (the per-person deny), as offboarding does */
      endAwsSessions?: boolean;
      userName?: string;
    }
  /** end the person's live AWS sessions on one role (PIM: an activation expired or was revoked) */
  | {
      type: 'aws.sessions-revoke-requested';
      userId: string;
      userName: string;
      account: string;
      role: string;
      reason: string;
    }
  /**
   * PIM (0024): an activation of a permission set began or ended: create or delete the person's
   * Identity Center account assignment, confirmed through the assignment status API.
   */
  | {
      type: 'pim.account-assignment-requested';
      activationId: string;
      action: 'create' | 'delete';
      userId: string;
      userName: string;
      account: string;
      permissionSet: string;
    }
  /** PIM (0024): an activation of a group membership began or ended: add or remove the membership */
  | {
      type: 'pim.group-membership-requested';
      activationId: string;
      action: 'add' | 'remove';
      groupId: string;
      userId: string;
      userName: string;
      expiresAt: string | null;
    }
  /** PIM: tell one configured webhook that an activation changed (a snapshot, so retries say the same) */
  | {
      type: 'pim.notification';
      webhook: string;
      change: string;
      actor: string;
      reason: string | null;
      activation: Record<string, unknown>;
    }
  /** an access review decided (or left unreviewed) that this membership or eligibility goes */
  | {
      type: 'review.removal-requested';
      campaignId: string;
      itemId: string;
      kind: 'membership' | 'eligibility';
      groupId: string | null;
      userId: string | null;
      eligibilityId: string | null;
      reason: string;
    }
  /** detections: send one alert to one sink (retried with the outbox's backoff) */
  | { type: 'alert.delivery-requested'; alertId: string; sink: string };

export type DomainEventType = DomainEvent['type'];
