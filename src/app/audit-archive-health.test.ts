import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { ManualClock } from '../clock.js';

const ADMIN: AuditContext = { actor: { type: 'operator', name: 'archive-health-test' } };
const PASSWORD = 'correct horse battery staple 42';
const meta = { ip: '192.0.2.10', userAgent: 'vitest', requestId: null };

/** An "S3" that accepts connections and never answers: the archive run hangs until it is closed. */
async function silentS3(): Promise<{ endpoint: string; sockets: Socket[]; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe.each(ENGINES)('the scheduled audit archive when its destination is down (%s)', (engine) => {
  const clock = new ManualClock('2026-11-01T08:00:00.000Z');
  let ferry: TestFerry;
  let s3: Awaited<ReturnType<typeof silentS3>>;
  const destination = 's3://ferry-archive/ferry-audit-archive/';

  beforeAll(async () => {
    s3 = await silentS3();
    ferry = await startTestFerry(engine, {
      clock,
      config: {
        audit: {
          retention: {
            archiveAfter: '1d',
            destination: { type: 's3', bucket: 'ferry-archive', endpoint: s3.endpoint },
          },
        },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await s3?.close();
  });

  it('never holds up sign-ins; the failure is retried with backoff and shown in /readyz and /metrics', async () => {
    const userName = `archive-${engine}@contoso.example`;
    await ferry.services.users.create(ADMIN, { userName, password: PASSWORD });
    await ferry.workers.sequencer.sealAll();
    clock.advance(2 * 86_400_000);
    const archiver = ferry.services.auditArchiver!;
    expect(archiver.destination).toBe(destination);
    let settled = false;
    const run = archiver.runDue().finally(() => {
      settled = true;
    });
    // While the archive waits on an S3 that does not answer (until it is closed below; the S3 request
    // timeout is 30 s), people sign in and /readyz answers.
    const signin = await ferry.services.signin.password(userName, PASSWORD, meta);
    expect(signin.status).toBe('signed-in');
    expect((await ferry.api('/readyz', { auth: false })).status).toBe(200);
    expect(settled).toBe(false);
    expect(s3.sockets.length).toBeGreaterThan(0);
    // The S3 goes away altogether: the run fails (the SDK's own retries find nobody listening).
    await s3.close();
    expect(await run).toBeNull();

    // anonymous: which component, nothing more; the admin token (audit:read) sees the detail
    expect(await (await ferry.api('/readyz', { auth: false })).json()).toEqual({
      status: 'ready',
      database: 'ok',
      auditArchive: { ok: false },
    });
    const ready = (await (await ferry.api('/readyz')).json()) as Record<string, unknown>;
    expect(ready).toMatchObject({
      status: 'ready',
      auditArchive: {
        destination,
        ok: false,
        archivedBelow: 0,
        failures: 1,
        nextAttemptAt: new Date(clock.now().getTime() + 5_000).toISOString(),
      },
    });
    expect((ready.auditArchive as { lastError: string }).lastError).toBeTruthy();
    const metrics = await (await ferry.api('/metrics', { auth: false })).text();
    expect(metrics).toContain(`ferry_audit_archive_failures{destination="${destination}"} 1`);
    expect(metrics).toContain(`ferry_audit_archived_leaves{destination="${destination}"} 0`);
    // Nothing was pruned: the events are all still there and the ledger verifies.
    const verify = (await (await ferry.api('/api/v1/audit/verify')).json()) as Record<string, unknown>;
    expect(verify).toMatchObject({ ok: true, archived: 0 });
    // Within the backoff the worker's tick does not try again.
    expect(await archiver.tick()).toBeNull();
    expect((await archiver.status()).failures).toBe(1);
  }, 60_000);
});

describe.each(ENGINES)('GET /api/v1/audit/verify?archive=true (%s)', (engine) => {
  const clock = new ManualClock('2026-11-01T08:00:00.000Z');
  let ferry: TestFerry;
  let plain: TestFerry;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-verify-archive-'));
    ferry = await startTestFerry(engine, {
      clock,
      config: {
        audit: { retention: { archiveAfter: '1d', destination: { type: 'file', directory: dir } } },
      },
    });
    plain = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
    await plain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('checks the configured archive as the CLI does, names a tampered segment, and refuses without one', async () => {
    for (let i = 0; i < 5; i++)
      await ferry.services.users.create(ADMIN, { userName: `v${i}-${engine}@contoso.example` });
    await ferry.workers.sequencer.sealAll();
    clock.advance(2 * 86_400_000);
    const result = await ferry.services.auditArchiver!.runDue();
    expect(result?.segments.length).toBeGreaterThan(0);
    await ferry.workers.sequencer.sealAll();
    const archived = result!.prunedBelow;

    const without = (await (await ferry.api('/api/v1/audit/verify')).json()) as Record<string, unknown>;
    expect(without).toMatchObject({ ok: true, archived, archiveChecked: false });
    const withArchive = (await (await ferry.api('/api/v1/audit/verify?archive=true')).json()) as Record<
      string,
      unknown
    >;
    expect(withArchive).toMatchObject({ ok: true, archived, archiveChecked: true });
    expect(withArchive.events as number).toBeGreaterThan(without.events as number);

    // An events file altered in the archive: the API names the file, as the CLI does.
    const name = result!.segments[0]!.name;
    const file = join(dir, `${name}.events.jsonl`);
    const { chmodSync, readFileSync } = await import('node:fs');
    chmodSync(file, 0o644);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"outcome":"success"', '"outcome":"failure"'));
    const broken = (await (await ferry.api('/api/v1/audit/verify?archive=true')).json()) as {
      ok: boolean;
      firstBad: { file: string; reason: string };
    };
    expect(broken.ok).toBe(false);
    expect(broken.firstBad.file).toBe(`${name}.events.jsonl`);

    // No archive configured: a problem, not a silent "ok".
    const refused = await plain.api('/api/v1/audit/verify?archive=true');
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/audit\.retention\.destination/);
    // A value that is not a boolean is a 400 too, never a 500.
    expect((await ferry.api('/api/v1/audit/verify?archive=/etc')).status).toBe(400);
  }, 60_000);
});
