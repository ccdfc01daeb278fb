import type { Services } from './services.js';
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
