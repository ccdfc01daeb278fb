import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { eventFromRow, GENESIS_HASH, hashEvent } from './ledger.js';

export interface ChainBreak {
  seq: number;
  id: string | null;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  events: number;
  headSeq: number;
  firstBad: ChainBreak | null;
}

/**
 * Walks the chain from the first event: every seq present in order, every prev_hash equal to the
 * previous event's hash, every hash recomputed from the row's own fields, and the head row
 * pointing at the last event (which catches deleting the newest events).
 */
export async function verifyAudit(db: Kysely<Database>, batch = 1000): Promise<VerifyResult> {
  const head = await db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirst();
  const headSeq = Number(head?.seq ?? 0);
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  const fail = (seq: number, id: string | null, reason: string): VerifyResult => ({
    ok: false,
    events: count,
    headSeq,
    firstBad: { seq, id, reason },
  });
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>=', expectedSeq)
      // Only up to the head read above: events appended while we walk are checked below, not
      // counted, else a verify during normal traffic reported the trail as broken.
      .where('seq', '<=', headSeq)
      .orderBy('seq')
      .limit(batch)
      .execute();
    for (const row of rows) {
      const event = eventFromRow(row);
      if (event.seq !== expectedSeq) return fail(expectedSeq, null, `event ${expectedSeq} is missing`);
      if (event.prevHash !== prevHash) {
        return fail(
          event.seq,
          event.id,
          'prev_hash does not match the previous event (deleted or reordered)',
        );
      }
      const { hash, ...rest } = event;
      if (hashEvent(rest) !== hash)
        return fail(event.seq, event.id, 'hash does not match the content (edited)');
      prevHash = hash;
      expectedSeq += 1;
      count += 1;
    }
    if (rows.length < batch) break;
  }
  if (!head) return fail(0, null, 'audit head row is missing');
  if (headSeq !== count || head.hash !== prevHash) {
    return fail(
      count + 1,
      null,
      `chain ends at event ${count} but the head records ${headSeq} (events removed)`,
    );
  }
  // An event past the head is fine if an append committed it since (the head moves in the same
  // transaction); otherwise it was written around Ferry.
  const beyond = await db
    .selectFrom('audit_events')
    .select(['seq', 'id'])
    .where('seq', '>', headSeq)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  if (beyond) {
    const now = await db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst();
    if (Number(now?.seq ?? 0) < Number(beyond.seq)) {
      return fail(Number(beyond.seq), beyond.id, 'event after the head (not written by Ferry)');
    }
  }
  return { ok: true, events: count, headSeq, firstBad: null };
}
