import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { appendAudit } from '../src/audit/ledger.js';
import { systemClock } from '../src/clock.js';
import type { BenchEnv } from './lib/env.js';
import { throughputs } from './lib/measure.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';

/** A table with the audit event's columns and nothing else: no chain, no head row. */
interface PlainDb {
  bench_plain_events: {
    id: string;
    time: string;
    type: string;
    outcome: string;
    actor: string;
    subject: string | null;
    ip: string | null;
    request_id: string | null;
    data: string;
  };
}

const CONCURRENCY = 8;

/**
 * The hash-chained audit append (lock the head, insert, move the head) in a transaction of its own,
 * against a plain one-row insert transaction of the same event on the same engine. On PostgreSQL also
 * with 8 writers at once: the chain's head row serialises them, plain inserts do not.
 */
export const auditAppend: Scenario = {
  name: 'audit',
  title: 'audit append per second vs a plain one-row insert transaction',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    for (const engine of env.engines) {
      const { store } = await env.freshStore(engine, 'audit');
      try {
        const plainDb = store.db as unknown as Kysely<PlainDb>;
        await plainDb.schema
          .createTable('bench_plain_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('subject', 'text')
          .addColumn('ip', 'text')
          .addColumn('request_id', 'text')
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        const actor = { type: 'user' as const, id: randomUUID(), name: 'test-awsdeveloper@contoso.example' };
        const data = () => ({
          step: 'password',
          sessionId: randomUUID(),
          amr: ['pwd'],
          userAgent: 'Mozilla/5.0 (X11; Linux x86_64) ferry-bench',
        });
        const ferry = () =>
          store.db.transaction().execute((trx) =>
            appendAudit(trx, store.engine, systemClock, {
              type: 'signin',
              outcome: 'success',
              actor,
              subject: actor.name,
              ip: '198.51.100.7',
              requestId: randomUUID(),
              data: data(),
            }),
          );
        const plain = () =>
          plainDb.transaction().execute((trx) =>
            trx
              .insertInto('bench_plain_events')
              .values({
                id: randomUUID(),
                time: new Date().toISOString(),
                type: 'signin',
                outcome: 'success',
                actor: JSON.stringify(actor),
                subject: actor.name,
                ip: '198.51.100.7',
                request_id: randomUUID(),
                data: JSON.stringify(data()),
              })
              .execute(),
          );
        const r = await throughputs({ ferry, plain }, { runs: env.runs, runMs: 1000, warmupMs: 300 });
        rows.push({
          scenario: `audit append (${engine})`,
          unit: 'events/s, 1 writer',
          better: 'higher',
          ferry: r.ferry,
          reference: r.plain,
          referenceName: `one-row insert transaction (${engine})`,
          goal: ratioAtLeast(0.5),
        });
        if (engine === 'postgres') {
          const c = await throughputs(
            { ferry, plain },
            { runs: env.runs, runMs: 1000, warmupMs: 300, concurrency: CONCURRENCY },
          );
          rows.push({
            scenario: `audit append, ${CONCURRENCY} writers (${engine})`,
            unit: `events/s, ${CONCURRENCY} writers`,
            better: 'higher',
            ferry: c.ferry,
            reference: c.plain,
            referenceName: `one-row insert transactions, ${CONCURRENCY} writers (${engine})`,
            goal: ratioAtLeast(0.5),
            note: 'every append locks the chain’s head row until commit, so appends from all connections are serialised; plain inserts commit in parallel',
          });
        }
      } finally {
        await store.close();
      }
    }
    return rows;
  },
};
