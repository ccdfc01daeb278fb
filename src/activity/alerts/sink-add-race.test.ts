import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';

const HMAC_KEY = `${'r'.repeat(24)}sink-add-race-hmac-key`;

describe.each(ENGINES)('adding one alert sink name concurrently (%s)', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine, { config: { alerts: { allowPrivateTargets: true } } });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('one burst: exactly one 201, every other answer a 409 problem, one row and one audit event', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          ferry.api('/api/v1/alerts/sinks', {
            method: 'POST',
            body: JSON.stringify({
              name,
              type: 'webhook',
              url: `https://soc-${i}.contoso.example/hook`,
              secret: HMAC_KEY,
            }),
          }),
        ),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses, `round ${round}`).toEqual([201, ...Array(11).fill(409)]);
      for (const a of answers.filter((x) => x.status === 409)) {
        expect(a.headers.get('content-type')).toContain('application/problem+json');
        expect(await a.json()).toMatchObject({ status: 409, detail: expect.stringContaining(name) });
      }
      const rows = await ferry.services.store.db
        .selectFrom('alert_sinks')
        .select('name')
        .where('name', '=', name)
        .execute();
      expect(rows).toHaveLength(1);
      const audited = await ferry.services.store.db
        .selectFrom('audit_events')
        .select('type')
        .where('type', '=', 'alert-sink.added')
        .where('subject', '=', name)
        .execute();
      expect(audited).toHaveLength(1);
    }
  });
});
