import { describe, expect, it } from 'vitest';
import {
  ACTIVATION_EVENTS,
  ACTIVATION_STATES,
  type ActivationEvent,
  type ActivationState,
  FINAL_STATES,
  IllegalTransition,
  nextState,
} from './lifecycle.js';

/**
 * The expected machine, written out by hand (not derived from TRANSITIONS): every state × every event.
 * A dash is a refused transition.
 */
const EXPECTED: Record<ActivationState, Record<ActivationEvent, ActivationState | '-'>> = {
  //          approve     deny      lapse     activate  expire     revoke     cancel
  requested: {
    approve: 'approved',
    deny: 'denied',
    lapse: 'lapsed',
    activate: '-',
    expire: '-',
    revoke: '-',
    cancel: 'cancelled',
  },
  approved: {
    approve: '-',
    deny: '-',
    lapse: '-',
    activate: 'active',
    expire: '-',
    revoke: '-',
    cancel: 'cancelled',
  },
  active: {
    approve: '-',
    deny: '-',
    lapse: '-',
    activate: '-',
    expire: 'expired',
    revoke: 'revoked',
    cancel: '-',
  },
  denied: { approve: '-', deny: '-', lapse: '-', activate: '-', expire: '-', revoke: '-', cancel: '-' },
  lapsed: { approve: '-', deny: '-', lapse: '-', activate: '-', expire: '-', revoke: '-', cancel: '-' },
  expired: { approve: '-', deny: '-', lapse: '-', activate: '-', expire: '-', revoke: '-', cancel: '-' },
  revoked: { approve: '-', deny: '-', lapse: '-', activate: '-', expire: '-', revoke: '-', cancel: '-' },
  cancelled: { approve: '-', deny: '-', lapse: '-', activate: '-', expire: '-', revoke: '-', cancel: '-' },
};

describe('activation lifecycle', () => {
  const cases = ACTIVATION_STATES.flatMap((s) => ACTIVATION_EVENTS.map((e) => [s, e] as const));

  it('covers 8 states × 7 events', () => {
    expect(cases).toHaveLength(56);
    expect(Object.keys(EXPECTED).sort()).toEqual([...ACTIVATION_STATES].sort());
  });

  it.each(cases)('%s + %s', (state, event) => {
    const expected = EXPECTED[state][event];
    if (expected === '-') {
      expect(() => nextState('a1', state, event)).toThrow(IllegalTransition);
      try {
        nextState('a1', state, event);
      } catch (err) {
        expect((err as IllegalTransition).state).toBe(state);
        expect((err as IllegalTransition).event).toBe(event);
        expect((err as Error).message).toContain(`activation a1 is ${state}`);
      }
    } else {
      expect(nextState('a1', state, event)).toBe(expected);
    }
  });

  it('ends in exactly the final states, and every state is reachable from requested', () => {
    expect([...FINAL_STATES].sort()).toEqual(['cancelled', 'denied', 'expired', 'lapsed', 'revoked']);
    const seen = new Set<ActivationState>(['requested']);
    for (let grew = true; grew; ) {
      grew = false;
      for (const s of [...seen])
        for (const e of ACTIVATION_EVENTS) {
          const n = EXPECTED[s][e];
          if (n !== '-' && !seen.has(n)) {
            seen.add(n);
            grew = true;
          }
        }
    }
    expect([...seen].sort()).toEqual([...ACTIVATION_STATES].sort());
  });
});
