import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addMs, type Clock, iso } from '../clock.js';
import type { Store } from '../store/open.js';
import type { AuditExportsTable } from '../store/schema.js';
import type { SignedTreeHead } from './tree-head.js';
import { headFromRow } from './verify.js';

/**
 * Reads published tree heads for `verify --against`: each path is a head file (one head as JSON, an
 * array of heads, or JSON lines) or a directory of such files, as the file exporter writes them.
 */
export function readHeads(paths: string[]): unknown[] {
  const out: unknown[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort())
        if (name.endsWith('.json') || name.endsWith('.jsonl')) out.push(...readHeads([join(path, name)]));
      continue;
    }
    const text = readFileSync(path, 'utf8').trim();
    if (text === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // JSON lines: one head per line
      for (const line of text.split('\n')) if (line.trim()) out.push(JSON.parse(line));
      continue;
    }
    if (Array.isArray(parsed)) out.push(...parsed);
    else out.push(parsed);
  }
  return out;
}

/** Somewhere signed tree heads are published: outside Ferry's database and out of its reach to rewrite. */
export interface HeadDestination {
  /** stable name, e.g. file:/var/lib/ferry-heads, s3://bucket/prefix */
  readonly name: string;
  publish(head: SignedTreeHead): Promise<void>;
}

/** The file name a head is published under: its tree size, zero-padded, so names sort in order. */
export function headFileName(head: SignedTreeHead): string {
  return `${String(head.treeSize).padStart(16, '0')}.json`;
}

/**
 * A directory: one file per published head, never overwritten. A file of the same size with other
 * content already there is itself proof of a rewrite, so that publication fails loudly.
 */
export function fileDestination(directory: string): HeadDestination {
  return {
    name: `file:${directory}`,
    async publish(head) {
      await mkdir(directory, { recursive: true });
      const path = join(directory, headFileName(head));
      const body = `${JSON.stringify(head)}\n`;
      try {
        await writeFile(path, body, { flag: 'wx', mode: 0o444 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const existing = await readFile(path, 'utf8');
        if (existing !== body)
          throw new Error(`${path} holds another head of ${head.treeSize} events: the ledger was rewritten`);
      }
    },
  };
}

/** An HTTPS endpoint that receives each head as JSON (a transparency log, a SIEM, another team's bucket). */
export function webhookDestination(url: string, timeoutMs = 10_000): HeadDestination {
  return {
    name: `webhook:${new URL(url).origin}${new URL(url).pathname}`,
    async publish(head) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(head),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status < 200 || res.status >= 300) throw new Error(`${url} answered ${res.status}`);
    },
  };
}

export interface ExportStatus {
  destination: string;
  /** tree size of the newest head published there (0: none yet) */
  treeSize: number;
  exportedAt: string | null;
  /** failures since the last success */
  failures: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

export interface HeadExporterDeps {
  store: Store;
  clock: Clock;
  log?: { warn(obj: object, msg: string): void };
}

/**
 * Publishes the latest signed head to every destination. A destination that fails is retried with
 * exponential backoff (5 s doubling to an hour) and reported by `status()` (in /readyz and metrics);
 * it never holds anything else up: exports run in the background worker, each with its own timeout.
 * Several instances may publish the same head: destinations take a head idempotently (by tree size).
 */
export class HeadExporter {
  constructor(
    private readonly deps: HeadExporterDeps,
    readonly destinations: HeadDestination[],
  ) {}

  /** Publishes where it is due; returns how many destinations received a new head. */
  async exportDue(): Promise<number> {
    if (this.destinations.length === 0) return 0;
    const { store, clock } = this.deps;
    const latest = await store.db
      .selectFrom('audit_tree_heads')
      .selectAll()
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!latest) return 0;
    const head = headFromRow(latest);
    const states = new Map((await this.#rows()).map((r) => [r.destination, r]));
    let published = 0;
    for (const destination of this.destinations) {
      const state = states.get(destination.name);
      const now = clock.now();
      if (state && Number(state.tree_size) >= head.treeSize) continue;
      if (state?.next_attempt_at && state.next_attempt_at > iso(now)) continue;
      try {
        await destination.publish(head);
        await this.#save(destination.name, {
          tree_size: head.treeSize,
          exported_at: iso(clock.now()),
          attempts: 0,
          next_attempt_at: null,
          last_error: null,
        });
        published += 1;
      } catch (err) {
        const attempts = (state?.attempts ?? 0) + 1;
        const delayMs = Math.min(3_600_000, 5_000 * 2 ** Math.min(attempts - 1, 10));
        const message = (err as Error).message.slice(0, 500);
        this.deps.log?.warn(
          { err, destination: destination.name, attempts },
          'audit head export failed; will retry',
        );
        await this.#save(destination.name, {
          tree_size: Number(state?.tree_size ?? 0),
          exported_at: state?.exported_at ?? null,
          attempts,
          next_attempt_at: iso(addMs(clock.now(), delayMs)),
          last_error: message,
        });
      }
    }
    return published;
  }

  async status(): Promise<ExportStatus[]> {
    const states = new Map((await this.#rows()).map((r) => [r.destination, r]));
    return this.destinations.map((d) => {
      const s = states.get(d.name);
      return {
        destination: d.name,
        treeSize: Number(s?.tree_size ?? 0),
        exportedAt: s?.exported_at ?? null,
        failures: s?.attempts ?? 0,
        nextAttemptAt: s?.next_attempt_at ?? null,
        lastError: s?.last_error ?? null,
      };
    });
  }

  #rows() {
    return this.deps.store.db.selectFrom('audit_exports').selectAll().execute();
  }

  async #save(destination: string, values: Omit<AuditExportsTable, 'destination'>): Promise<void> {
    await this.deps.store.db
      .insertInto('audit_exports')
      .values({ destination, ...values })
      .onConflict((oc) => oc.column('destination').doUpdateSet(values))
      .execute();
  }
}
