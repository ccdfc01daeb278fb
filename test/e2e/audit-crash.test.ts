import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { openStore, type Store } from '../../src/store/open.js';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../support/db.js';
import {
  type FerryProcess,
  runFerry,
  startFerryProcess,
  stopAllFerryProcesses,
  waitFor,
} from '../support/process.js';

const BACKLOG = 10_000;

/**
 * kill -9 of a real `ferry serve` while its sequencer is in the middle of sealing: nothing that was
 * sealed is half-sealed, nothing acknowledged is lost, and the next start seals everything.
 */
describe.each(ENGINES)('audit sealing survives kill -9 on %s', (engine) => {
  let db: TestDatabase;
  let dir: string;
  let store: Store;
  let env: Record<string, string>;
  let token: string;

  beforeAll(async () => {
    db = await createMigratedTestDatabase(engine);
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-audit-crash-'));
    env = { FERRY_DATABASE_URL: db.url, FERRY_MASTER_KEY: randomBytes(32).toString('base64') };
    const created = await runFerry(['admin', 'token', 'create', '--name', 'e2e'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    store = openStore(db.url, { poolSize: 2 });
  });

  afterAll(async () => {
    await stopAllFerryProcesses();
    await store?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const counts = async () => {
    const row = await store.db
      .selectFrom('audit_events')
      .select((eb) => [
        eb.fn.countAll<number | string>().as('all'),
        eb.fn.count<number | string>('leaf_index').as('sealed'),
      ])
      .executeTakeFirstOrThrow();
    return { all: Number(row.all), sealed: Number(row.sealed) };
  };

  it('a kill mid-batch leaves whole batches only, and a restart seals every event, acknowledged ones included', async () => {
    // A backlog (as after an upgrade from the hash chain, or an outage of the sequencer) keeps the
    // sequencer busy in batch after batch, so the kill lands inside one.
    for (let i = 0; i < BACKLOG; i += 1000) {
      await store.db
        .insertInto('audit_events')
        .values(
          Array.from({ length: 1000 }, (_, j) => ({
            id: randomUUID(),
            time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i + j)).toISOString(),
            type: 'signin.password',
            outcome: 'failure',
            actor: canonicalJson({ type: 'anonymous' }),
            subject: `user-${i + j}@contoso.example`,
            ip: '198.51.100.7',
            request_id: null,
            data: canonicalJson({ reason: 'bad-password' }),
            prev_hash: '',
            hash: '',
          })),
        )
        .execute();
    }

    const a = await startFerryProcess({ cwd: dir, env });
    // Writes keep arriving while it seals: every acknowledged one must end up sealed.
    const acknowledged: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const userName = `crash-${n}@contoso.example`;
        try {
          const res = await fetch(new URL('/api/v1/users', a.url), {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ userName }),
            signal: AbortSignal.timeout(5_000),
          });
          if (res.status === 201) acknowledged.push(userName);
        } catch {
          // the server was killed under this request: not acknowledged
        }
      }
    })();
    await waitFor(
      'the sequencer to be part-way through the backlog, with a write acknowledged meanwhile',
      async () => {
        const c = await counts();
        return acknowledged.length > 0 && c.sealed >= 1_000 && c.sealed < BACKLOG;
      },
      { timeoutMs: 60_000, intervalMs: 5 },
    );
    await (a as FerryProcess).stop('SIGKILL');
    writing = false;
    await writer;

    const atCrash = await counts();
    expect(atCrash.sealed).toBeGreaterThan(0);
    expect(atCrash.sealed).toBeLessThan(atCrash.all);
    // What was sealed is whole: consecutive leaves, exactly covered by the latest signed head.
    const verifyNow = await runFerry(['audit', 'verify', '--json'], { cwd: dir, env });
    expect(verifyNow.code, verifyNow.stdout + verifyNow.stderr).toBe(0);
    const mid = JSON.parse(verifyNow.stdout) as {
      ok: boolean;
      events: number;
      treeSize: number;
      unsealed: number;
    };
    expect(mid).toMatchObject({ ok: true, events: atCrash.sealed, treeSize: atCrash.sealed });
    expect(mid.unsealed).toBe(atCrash.all - atCrash.sealed);

    const b = await startFerryProcess({ cwd: dir, env });
    await waitFor(
      'every event to be sealed after the restart',
      async () => {
        const c = await counts();
        return c.sealed === c.all;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const final = await counts();
    const verified = await runFerry(['audit', 'verify', '--json'], { cwd: dir, env });
    expect(verified.code, verified.stdout).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, events: final.all, unsealed: 0 });
    expect(acknowledged.length).toBeGreaterThan(0);
    const recorded = await store.db
      .selectFrom('audit_events')
      .select(['subject', 'leaf_index'])
      .where('type', '=', 'user.created')
      .execute();
    const sealedSubjects = new Set(recorded.filter((r) => r.leaf_index !== null).map((r) => r.subject));
    expect(acknowledged.filter((u) => !sealedSubjects.has(u))).toEqual([]);
    await b.stop();
  }, 180_000);
});
