import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { migratedStore } from '../../test/support/migrated-store.js';
import { isUniqueViolation } from './errors.js';
import { insertRow } from './insert-row.js';
import type { Store } from './open.js';

describe.each(ENGINES)('insertRow (%s)', (engine) => {
  const database = migratedStore(engine);
  let store: Store;
  beforeAll(() => {
    store = database.store;
  });

  const row = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    type: 'user.created',
    payload: `{"n":"${id}"}`,
    created_at: '2026-12-06T00:00:00.000Z',
    available_at: '2026-12-06T00:00:00.000Z',
    attempts: 0,
    lane: 'bulk',
    ...extra,
  });

  it('writes each row of a shape with its own values, other column sets and returning alike', async () => {
    await store.db.transaction().execute(async (trx) => {
      await insertRow(trx, 'outbox', row('a'));
      await insertRow(trx, 'outbox', row('b', { attempts: 2 })); // same shape, reused SQL
      await insertRow(trx, 'outbox', row('c', { last_error: 'x', claimed_by: undefined })); // another shape
      await insertRow(trx, 'outbox', row('d', { payload: sql<string>`'{"raw":1}'` as unknown as string }));
    });
    const rows = await store.db.selectFrom('outbox').selectAll().orderBy('id').execute();
    expect(rows.map((r) => [r.id, r.payload, Number(r.attempts), r.last_error, r.claimed_by])).toEqual([
      ['a', '{"n":"a"}', 0, null, null],
      ['b', '{"n":"b"}', 2, null, null],
      ['c', '{"n":"c"}', 0, 'x', null],
      ['d', '{"raw":1}', 0, null, null],
    ]);

    const audit = (id: string) => ({
      id,
      time: '2026-12-06T00:00:00.000Z',
      type: 't',
      outcome: 'success',
      actor: '{}',
      data: '{}',
      prev_hash: '',
      hash: id,
      leaf_hash: id,
    });
    const [first] = await insertRow(store.db, 'audit_events', audit('e1'), ['seq']);
    const [second] = await insertRow(store.db, 'audit_events', audit('e2'), ['seq']);
    expect(Number(second!.seq)).toBe(Number(first!.seq) + 1);
  });

  it('fails as the builder would on a unique violation', async () => {
    const err = await insertRow(store.db, 'outbox', row('a')).catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
  });
});
