/**
 * The life of an activation as an explicit state machine (the shape of Teleport's access requests):
 *
 *   requested ─approve→ approved ─activate→ active ─expire→ expired
 *       │ deny → denied                       │ revoke → revoked
 *       │ lapse → lapsed (nobody answered)    │
 *       └ cancel → cancelled ← cancel ─ approved
 *
 * Every change goes through `nextState`; a pair missing from the table is refused.
 */
export const ACTIVATION_STATES = [
  'requested',
  'approved',
  'denied',
  'lapsed',
  'active',
  'expired',
  'revoked',
  'cancelled',
] as const;
export type ActivationState = (typeof ACTIVATION_STATES)[number];

export const ACTIVATION_EVENTS = [
  'approve',
  'deny',
  'lapse',
  'activate',
  'expire',
  'revoke',
  'cancel',
] as const;
export type ActivationEvent = (typeof ACTIVATION_EVENTS)[number];

/** The whole transition table. */
export const TRANSITIONS: Readonly<
  Record<ActivationState, Readonly<Partial<Record<ActivationEvent, ActivationState>>>>
> = {
  requested: { approve: 'approved', deny: 'denied', lapse: 'lapsed', cancel: 'cancelled' },
  approved: { activate: 'active', cancel: 'cancelled' },
  active: { expire: 'expired', revoke: 'revoked' },
  denied: {},
  lapsed: {},
  expired: {},
  revoked: {},
  cancelled: {},
};

/** States nothing leaves. */
export const FINAL_STATES: ReadonlySet<ActivationState> = new Set(
  ACTIVATION_STATES.filter((s) => Object.keys(TRANSITIONS[s]).length === 0),
);

/** An event the current state does not allow (answered 409). */
export class IllegalTransition extends Error {
  constructor(
    readonly activationId: string,
    readonly state: ActivationState,
    readonly event: ActivationEvent,
  ) {
    super(`activation ${activationId} is ${state}: it cannot be ${PAST[event]}`);
    this.name = 'IllegalTransition';
  }
}

const PAST: Record<ActivationEvent, string> = {
  approve: 'approved',
  deny: 'denied',
  lapse: 'lapsed',
  activate: 'activated',
  expire: 'expired',
  revoke: 'revoked',
  cancel: 'cancelled',
};

export function nextState(id: string, state: ActivationState, event: ActivationEvent): ActivationState {
  const next = TRANSITIONS[state][event];
  if (!next) throw new IllegalTransition(id, state, event);
  return next;
}

export function isActivationState(s: string): s is ActivationState {
  return (ACTIVATION_STATES as readonly string[]).includes(s);
}
