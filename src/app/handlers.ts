import { systemActor } from '../audit/actor.js';
import type { Services } from './services.js';

const offboarding = { actor: systemActor('offboarding') };

import type { EventHandlers } from './workers.js';

/** The outbox handlers every instance runs: how one module's change reaches another. */
export function defaultHandlers(services: Services): EventHandlers {
  return {
    'group.deleted': [
      async (e) => {
        if (e.type === 'group.deleted') await services.assignments.removeForPrincipal('group', e.groupId);
      },
    ],
    'user.deleted': [
      async (e) => {
        if (e.type === 'user.deleted') await services.assignments.removeForPrincipal('user', e.userId);
      },
      async (e) => {
        if (e.type === 'user.deleted')
          await services.ssh.revokeForUser(offboarding, e.userId, `${e.userName} was deleted`);
      },
    ],
    // Offboarding: a person's live SSH certificates go into the KRL at once.
    'user.deactivated': [
      async (e) => {
        if (e.type === 'user.deactivated')
          await services.ssh.revokeForUser(offboarding, e.userId, `${e.userName} was deactivated`);
      },
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
