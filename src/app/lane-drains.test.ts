import { describe, expect, it } from 'vitest';
import { LaneDrains } from './lane-drains.js';

/** A drain the test ends by hand: `ends[i]()` finishes the i-th drain started. */
function controlledDrains() {
  const ends: Array<() => void> = [];
  const drain = () =>
    new Promise<number>((resolve) => {
      ends.push(() => resolve(0));
    });
  return { ends, drain };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('draining one outbox lane', () => {
  it('a wake while a drain runs starts another, up to the bound', async () => {
    const { ends, drain } = controlledDrains();
    const drains = new LaneDrains(drain, 2, (err) => {
      throw err;
    });
    drains.wake();
    drains.wake();
    drains.wake(); // over the bound: remembered, not started
    expect(ends).toHaveLength(2);
    expect(drains.running).toBe(2);
    ends[0]!();
    await tick();
    // The remembered wake starts a drain as soon as one ended.
    expect(ends).toHaveLength(3);
    ends[1]!();
    ends[2]!();
    await drains.settled();
    expect(ends).toHaveLength(3);
    expect(drains.running).toBe(0);
  });

  it('a wake that arrives while the only drain is finishing (its last claim empty) drains again', async () => {
    // The lost wake of issue 16: the notification of a commit lands after the drain's last claim took
    // its snapshot and before the drain ended. One drain at a time, so the wake cannot start another.
    const { ends, drain } = controlledDrains();
    const drains = new LaneDrains(drain, 1, (err) => {
      throw err;
    });
    drains.wake();
    drains.wake();
    expect(ends).toHaveLength(1);
    ends[0]!();
    await tick();
    expect(ends).toHaveLength(2);
    ends[1]!();
    await drains.settled();
    expect(ends).toHaveLength(2); // one wake, one more drain: no loop
  });

  it('a failed drain is reported and does not stop later wakes; after stop() nothing new starts', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const drains = new LaneDrains(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('database away');
        return 0;
      },
      1,
      (err) => errors.push(err),
    );
    drains.wake();
    await drains.settled();
    expect(errors).toHaveLength(1);
    drains.wake();
    await drains.settled();
    expect(calls).toBe(2);
    drains.stop();
    drains.wake();
    await drains.settled();
    expect(calls).toBe(2);
  });
});
