import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../../test/support/db.js';
import { ManualClock } from '../../clock.js';
import { openStore, type Store } from '../../store/open.js';
import type { SpikeRule } from './finding.js';
import { Detections } from './service.js';
import { detectionSettings } from './settings.js';

const T = (hhmmss: string) => new Date(`2026-12-06T${hhmmss}.000Z`);

describe.each(ENGINES)('spike detections count in sliding windows (%s)', (engine) => {
  let db: TestDatabase;
  let store: Store;
  let detections: Detections;
  const clock = new ManualClock(T('11:00:00'));

  beforeEach(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
    detections = new Detections({
      store,
      clock,
      // 3 events of one subject within 10 minutes; the clock's 10-minute boundaries are at :00, :10, :20
      settings: detectionSettings({
        rules: {
          'access-denied-spike': { threshold: 3, windowMs: 10 * 60_000 },
          'signin-failure-spike': { threshold: 3, windowMs: 10 * 60_000 },
        },
      }),
      sinks: async () => [],
    });
  });
  afterEach(async () => {
    await store.close();
    await db.drop();
  });

  const count = (rule: SpikeRule, subject: string, at: string, evidence = `${subject}@${at}`) =>
    detections.observe([
      {
        kind: 'count',
        count: { rule, subject, account: null, occurredAt: T(at), evidence, details: {} },
      },
    ]);

  it.each(['access-denied-spike', 'signin-failure-spike'] as const)(
    '%s: raises for a burst that straddles a clock boundary (fixed windows would split it 2 + 1)',
    async (rule) => {
      expect(await count(rule, 'jane', '10:08:00')).toEqual([]);
      expect(await count(rule, 'jane', '10:09:30')).toEqual([]);
      const raised = await count(rule, 'jane', '10:11:00');
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ rule, subject: 'jane' });
      expect(raised[0]!.title).toMatch(/^3 .* for jane within 10m \(threshold 3\)$/);
      expect(raised[0]!.details).toMatchObject({
        count: 3,
        windowStart: '2026-12-06T10:01:00.000Z',
        windowEnd: '2026-12-06T10:11:00.000Z',
      });
    },
  );

  it.each(['access-denied-spike', 'signin-failure-spike'] as const)(
    '%s: stays quiet when the first event has slid out of the window, for another subject, and for the same event twice',
    async (rule) => {
      await count(rule, 'jane', '10:00:00');
      await count(rule, 'jane', '10:05:00');
      // 10:10:00 is exactly one window after 10:00:00: the window (10:00:00, 10:10:00] holds two
      expect(await count(rule, 'jane', '10:10:00')).toEqual([]);
      // someone else's events do not add to Jane's
      expect(await count(rule, 'john', '10:10:30')).toEqual([]);
      // the same evidence delivered again is one event
      expect(await count(rule, 'jane', '10:10:00')).toEqual([]);
      // one more inside (10:05:00 − …): 10:05, 10:10, 10:14 → three within 10 minutes
      expect(await count(rule, 'jane', '10:14:00')).toHaveLength(1);
    },
  );

  it('forgets events long out of every window as the subject counts on', async () => {
    await count('access-denied-spike', 'jane', '09:00:00');
    await count('access-denied-spike', 'jane', '10:00:00');
    const left = await store.db
      .selectFrom('detection_events')
      .select('occurred_at')
      .where('subject', '=', 'jane')
      .execute();
    expect(left.map((r) => r.occurred_at)).toEqual(['2026-12-06T10:00:00.000Z']);
  });
});
