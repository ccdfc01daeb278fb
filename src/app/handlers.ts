import { groupMembershipEffect } from '../access/pim/group-effects.js';
import { deliverNotification } from '../access/pim/notifications.js';
import { systemActor } from '../audit/actor.js';
import { NotFound } from '../errors.js';
import type { DomainEvent } from '../events.js';
import type { Services } from './services.js';
import { type EventHandlers, type EventMeta, settleAll } from './workers.js';

const offboarding = { actor: systemActor('offboarding') };
const scimPush = { actor: systemActor('identity-center-push') };
const accessReview = { actor: systemActor('access-review') };

/** The outbox handlers every instance runs: how one module's change reaches another. */
export function defaultHandlers(services: Services): EventHandlers {
  const { sessionRevoker } = services;
  // Offboarding: sessions issued before the change was committed end on every role the person used.
  const revokeAll = (reason: string) => async (e: DomainEvent, meta: EventMeta) => {
    if (e.type !== 'user.deactivated' && e.type !== 'user.deleted') return;
    await sessionRevoker.revokeLiveSessions({ userId: e.userId, userName: e.userName }, meta.createdAt, {
      reason,
    });
  };
  // SCIM push to IAM Identity Center: each handler makes Identity Center match Ferry for what the
  // event touched (reading current state, so replays and reordering are harmless).
  // A push that fails counts towards the provisioning-errors detection; the outbox still retries it.
  const reported =
    (push: (e: DomainEvent) => Promise<void>) =>
    async (e: DomainEvent): Promise<void> => {
      try {
        await push(e);
      } catch (err) {
        await services.detections
          .provisioningFailed({
            direction: 'identity-center',
            connection: 'identity-center',
            detail: (err as Error).message,
          })
          .catch(() => undefined);
        throw err;
      }
    };
  const pushUser = reported(async (e: DomainEvent) => {
    if (e.type.startsWith('user.') && 'userId' in e && typeof e.userId === 'string')
      await services.identityCenter.sync(scimPush, { userIds: [e.userId] });
  });
  const pushGroup = reported(async (e: DomainEvent) => {
    if (
      e.type === 'group.created' ||
      e.type === 'group.updated' ||
      e.type === 'group.deleted' ||
      e.type === 'membership.changed'
    )
      await services.identityCenter.sync(scimPush, { groupIds: [e.groupId] });
  });
  return {
    'user.created': [pushUser],
    'user.updated': [pushUser],
    'user.reactivated': [pushUser],
    'group.created': [pushGroup],
    'group.updated': [pushGroup],
    'membership.changed': [pushGroup],
    'user.deactivated': [
      // Offboarding: the AWS deny and the SSH KRL at once, neither waiting for the other (both are
      // idempotent; when one fails the event is retried whole).
      async (e, meta) => {
        if (e.type !== 'user.deactivated') return;
        await settleAll([
          revokeAll('user deactivated')(e, meta),
          services.ssh.revokeForUser(offboarding, e.userId, `${e.userName} was deactivated`),
        ]);
      },
      // After the revocations (the urgent part): active=false in Identity Center.
      pushUser,
    ],
    // A sign-in session revoked with "end AWS sessions too": the person's live AWS sessions end.
    'session.revoked': [
      async (e, meta) => {
        if (e.type !== 'session.revoked' || !e.endAwsSessions) return;
        await sessionRevoker.revokeLiveSessions(
          { userId: e.userId, userName: e.userName ?? e.userId },
          meta.createdAt,
          { reason: `sign-in session revoked: ${e.reason}` },
        );
      },
    ],
    'aws.sessions-revoke-requested': [
      async (e, meta) => {
        if (e.type !== 'aws.sessions-revoke-requested') return;
        await sessionRevoker.revokeRoleSessions(
          { userId: e.userId, userName: e.userName },
          { account: e.account, role: e.role },
          meta.createdAt,
          { reason: e.reason },
        );
      },
    ],
    'alert.delivery-requested': [
      async (e) => {
        if (e.type === 'alert.delivery-requested') await services.alertDelivery.deliver(e.alertId, e.sink);
      },
    ],
    'pim.notification': [
      async (e, meta) => {
        if (e.type === 'pim.notification')
          await deliverNotification(
            {
              store: services.store,
              clock: services.clock,
              targets: services.outboundTargets,
              metrics: services.metrics,
            },
            services.config.pim.webhooks,
            e,
            services.config.publicUrl,
            meta,
          );
      },
    ],
    // PIM beyond roles (0024): an activation's Identity Center account assignment or group membership.
    'pim.account-assignment-requested': [
      async (e) => {
        if (e.type === 'pim.account-assignment-requested') await services.pimAssignments.handle(e);
      },
    ],
    'pim.group-membership-requested': [
      async (e) => {
        if (e.type === 'pim.group-membership-requested')
          await groupMembershipEffect(services.groups, services.activations, services.clock)(e);
      },
    ],
    // An access review removes what was denied (or left unreviewed); gone already is fine.
    'review.removal-requested': [
      async (e) => {
        if (e.type !== 'review.removal-requested') return;
        try {
          if (e.kind === 'membership' && e.groupId && e.userId)
            await services.groups.setMembership(accessReview, e.groupId, e.userId, false);
          if (e.kind === 'eligibility' && e.eligibilityId)
            await services.eligibilities.remove(accessReview, e.eligibilityId);
        } catch (err) {
          if (!(err instanceof NotFound)) throw err;
        }
      },
    ],
    'group.deleted': [
      async (e) => {
        if (e.type === 'group.deleted') await services.assignments.removeForPrincipal('group', e.groupId);
      },
      pushGroup,
      async (e) => {
        if (e.type === 'group.deleted') await services.eligibilities.removeForPrincipal('group', e.groupId);
      },
      async (e) => {
        if (e.type === 'group.deleted') await services.adminRoles.removeForPrincipal('group', e.groupId);
      },
    ],
    'user.deleted': [
      async (e) => {
        if (e.type === 'user.deleted') await services.assignments.removeForPrincipal('user', e.userId);
      },
      async (e) => {
        if (e.type === 'user.deleted') await services.eligibilities.removeForPrincipal('user', e.userId);
      },
      async (e) => {
        if (e.type === 'user.deleted') await services.adminRoles.removeForPrincipal('user', e.userId);
      },
      revokeAll('user deleted'),
      async (e) => {
        if (e.type === 'user.deleted')
          await services.ssh.revokeForUser(offboarding, e.userId, `${e.userName} was deleted`);
      },
      pushUser,
    ],
  };
}

/** Runs the default handlers and then any extra ones for the same event type. */
export function mergeHandlers(...sets: EventHandlers[]): EventHandlers {
  const out: EventHandlers = {};
  for (const set of sets) {
    for (const [type, list] of Object.entries(set) as Array<
      [keyof EventHandlers, NonNullable<EventHandlers[keyof EventHandlers]>]
    >) {
      out[type] = [...(out[type] ?? []), ...list];
    }
  }
  return out;
}
