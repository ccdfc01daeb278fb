import type { AuditContext } from '../../audit/actor.js';
import { systemActor } from '../../audit/actor.js';
import type { Clock } from '../../clock.js';
import type { DomainEvent } from '../../events.js';
import type { Activations } from './activations.js';

type MembershipEvent = Extract<DomainEvent, { type: 'pim.group-membership-requested' }>;

/** The directory's side (identity/groups.ts GroupDirectory), named by shape: same floor, no import. */
export interface ActivationMemberships {
  grantForActivation(
    ctx: AuditContext,
    grant: { groupId: string; userId: string; activationId: string; expiresAt: string },
  ): Promise<'added' | 'already-member'>;
  endForActivation(
    ctx: AuditContext,
    grant: { groupId: string; userId: string; activationId: string },
  ): Promise<boolean>;
}

const effects: AuditContext = { actor: systemActor('pim-effects') };
const ENDED = new Set(['expired', 'revoked']);

/**
 * The outbox handler of `pim.group-membership-requested`: an activation of a group becomes a
 * membership until its end (an ordinary one otherwise: SCIM push to Identity Center, the group's
 * assignments and SSH logins follow), and is removed when it ends. Replays are harmless.
 */
export function groupMembershipEffect(
  groups: ActivationMemberships,
  activations: Activations,
  clock?: Clock,
) {
  return async (e: MembershipEvent): Promise<void> => {
    const grant = { groupId: e.groupId, userId: e.userId, activationId: e.activationId };
    if (e.action === 'remove') {
      // Two ends may arrive (the one due at expiresAt, and the scheduler's or a revocation's): the
      // first removes; a later one finds nothing of this activation's and leaves its record as it is.
      const state = (await activations.get(e.activationId)).effect?.state;
      if (state === 'kept' || state === 'removed') {
        await groups.endForActivation(effects, grant);
        return;
      }
      const removed = await groups.endForActivation(effects, grant);
      await activations.recordEffect(
        e.activationId,
        { state: 'removed', detail: removed ? 'membership removed' : 'no membership to remove' },
        { type: 'membership-removed', outcome: 'success', data: { groupId: e.groupId, removed } },
      );
      return;
    }
    const activation = await activations.get(e.activationId);
    if (activation.state !== 'active' || !activation.expiresAt) return;
    // Delivered late (outbox retries) after its end: adding it now would outlive the activation.
    if (clock && Date.parse(activation.expiresAt) <= clock.now().getTime()) return;
    const claimed = await activations.recordEffect(e.activationId, {
      state: 'applying',
      detail: null,
      onlyFrom: ['pending', 'failed', 'applying'],
    });
    if (!claimed) return;
    const found = await groups.grantForActivation(effects, { ...grant, expiresAt: activation.expiresAt });
    const recorded = await activations.recordEffect(
      e.activationId,
      found === 'added'
        ? { state: 'applied', detail: `member until ${activation.expiresAt}`, onlyFrom: ['applying'] }
        : {
            state: 'kept',
            detail: `${e.userName} was already a member; left as it was`,
            onlyFrom: ['applying'],
          },
      {
        type: found === 'added' ? 'membership-added' : 'membership-kept',
        outcome: 'success',
        data: { groupId: e.groupId, expiresAt: activation.expiresAt },
      },
    );
    // Ended while the membership was being added: take it away here.
    if (!recorded && found === 'added' && ENDED.has((await activations.get(e.activationId)).state))
      await groups.endForActivation(effects, grant);
  };
}
