import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { addMs, type Clock, iso } from '../clock.js';
import { guardedPost, OutboundHttpStatus } from '../outbound/post.js';
import type { TargetPolicy } from '../outbound/target-guard.js';
import type { Store } from '../store/open.js';
import type { AuditExportsTable, Database } from '../store/schema.js';
import { FERRY_VERSION } from '../version.js';
import { makeDestinationDirectory } from './destination-directory.js';
import { type AuditEvent, listAudit } from './ledger.js';
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
      await makeDestinationDirectory(directory);
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

/**
 * An HTTPS endpoint that receives each head as JSON (a transparency log, a SIEM, another team's bucket).
 * Its host passes the same target guard as alert sinks (`targets`: alerts.allowPrivateTargets,
 * alerts.allowTargetNetworks): an internal address is refused, and the refusal is the destination's
 * lastError until the config allows it.
 */
export function webhookDestination(
  url: string,
  options: { targets: TargetPolicy; timeoutMs?: number },
): HeadDestination {
  const { origin, pathname } = new URL(url);
  return {
    name: `webhook:${origin}${pathname}`,
    async publish(head) {
      try {
        await guardedPost(url, JSON.stringify(head), {
          targets: options.targets,
          userAgent: 'Ferry-Audit/1',
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        });
      } catch (err) {
        if (err instanceof OutboundHttpStatus) throw new Error(`${origin}${pathname} answered ${err.status}`);
        throw err;
      }
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

// ---------------------------------------------------------------------------------------------------
// Events for SIEMs: JSON lines (the event as the API returns it) or OCSF 1.3 (docs/audit.md "Export").

export type EventExportFormat = 'jsonl' | 'ocsf';

/** The OCSF schema version the records follow. */
export const OCSF_VERSION = '1.3.0';

interface OcsfClass {
  classUid: 3001 | 3002 | 3006 | 6003;
  activityId: number;
  activityName: string;
}

const CLASSES = {
  3001: { name: 'Account Change', category: 3, categoryName: 'Identity & Access Management' },
  3002: { name: 'Authentication', category: 3, categoryName: 'Identity & Access Management' },
  3006: { name: 'Group Management', category: 3, categoryName: 'Identity & Access Management' },
  6003: { name: 'API Activity', category: 6, categoryName: 'Application Activity' },
} as const;

const MFA_STEPS = new Set(['totp', 'webauthn', 'recovery-code', 'mfa']);

function isMfa(e: AuditEvent): boolean {
  const step = e.data.step;
  const amr = e.data.amr;
  return (
    (typeof step === 'string' && MFA_STEPS.has(step)) ||
    (Array.isArray(amr) && amr.some((m) => m === 'mfa' || m === 'otp' || m === 'hwk' || m === 'swk'))
  );
}

/** Which OCSF class and activity an event is. */
export function ocsfClassOf(e: AuditEvent): OcsfClass {
  const t = e.type;
  // Authentication (3002): sign-in steps, successful or not, MFA included; refusals by a lockout.
  if (t === 'signin' || t.startsWith('signin.'))
    return { classUid: 3002, activityId: 1, activityName: 'Logon' };
  if (t === 'session.revoked' || t === 'signout' || t === 'logout')
    return { classUid: 3002, activityId: 2, activityName: 'Logoff' };
  // Account Change (3001): a person's account and its credentials.
  const account: Record<string, [number, string]> = {
    'user.created': [1, 'Create'],
    'user.enabled': [2, 'Enable'],
    'user.reactivated': [2, 'Enable'],
    'user.password-set': [4, 'Password Reset'],
    'user.password-changed': [3, 'Password Change'],
    'user.disabled': [5, 'Disable'],
    'user.deactivated': [5, 'Disable'],
    'user.deleted': [6, 'Delete'],
    'mfa.totp.enrolled': [10, 'MFA Factor Enable'],
    'mfa.webauthn.registered': [10, 'MFA Factor Enable'],
    'mfa.reset': [11, 'MFA Factor Disable'],
  };
  const a = account[t];
  if (a) return { classUid: 3001, activityId: a[0], activityName: a[1] };
  if (t.startsWith('user.') || t.startsWith('mfa.'))
    return { classUid: 3001, activityId: 99, activityName: 'Other' };
  // Group Management (3006): groups and who is in them (OCSF's Account Change is about one account).
  const group: Record<string, [number, string]> = {
    'group.created': [6, 'Create'],
    'group.deleted': [5, 'Delete'],
  };
  const g = group[t];
  if (g) return { classUid: 3006, activityId: g[0], activityName: g[1] };
  if (t.startsWith('group.') || t === 'membership.changed')
    return { classUid: 3006, activityId: 99, activityName: 'Other' };
  // Everything else is an operation on Ferry's API or by its workers: API Activity (6003).
  const verb = t.split('.').at(-1) ?? '';
  if (/^(created|added|issued|requested|registered|raised|generated|discovered|linked)$/.test(verb))
    return { classUid: 6003, activityId: 1, activityName: 'Create' };
  if (/^(removed|deleted|revoked)$/.test(verb))
    return { classUid: 6003, activityId: 4, activityName: 'Delete' };
  if (/^(updated|changed|set|activated|decided|closed|state-changed|handed-over|synced|archived)$/.test(verb))
    return { classUid: 6003, activityId: 3, activityName: 'Update' };
  return { classUid: 6003, activityId: 99, activityName: 'Other' };
}

function ocsfActor(actor: AuditEvent['actor']): Record<string, unknown> {
  switch (actor.type) {
    case 'anonymous':
      return { user: { name: 'anonymous', type: 'Unknown', type_id: 0 } };
    case 'system':
      return { app_name: `ferry:${actor.name}` };
    case 'operator':
      return { user: { name: actor.name, type: 'Admin', type_id: 2 } };
    case 'user':
      return { user: { uid: actor.id, name: actor.name, type: 'User', type_id: 1 } };
    default:
      // api-token, workload (a client), scim-connection: non-human principals
      return { user: { uid: actor.id, name: actor.name, type: 'System', type_id: 3 }, app_name: actor.type };
  }
}

/** One audit event as an OCSF 1.3 record of the fitting class. */
export function toOcsf(e: AuditEvent): Record<string, unknown> {
  const c = ocsfClassOf(e);
  const cls = CLASSES[c.classUid];
  const failed = e.outcome === 'failure';
  const severityId = e.type === 'signin.refusals' ? 3 : failed ? 2 : 1;
  const reason = typeof e.data.reason === 'string' ? e.data.reason : undefined;
  const record: Record<string, unknown> = {
    category_uid: cls.category,
    category_name: cls.categoryName,
    class_uid: c.classUid,
    class_name: cls.name,
    activity_id: c.activityId,
    activity_name: c.activityName,
    type_uid: c.classUid * 100 + c.activityId,
    type_name: `${cls.name}: ${c.activityName}`,
    severity_id: severityId,
    severity: ['Unknown', 'Informational', 'Low', 'Medium'][severityId],
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    ...(reason ? { status_detail: reason } : {}),
    time: Date.parse(e.time),
    message: e.type,
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'Ferry', vendor_name: 'Ferry', version: FERRY_VERSION },
      uid: e.id,
      log_name: 'audit',
      event_code: e.type,
      original_time: e.time,
      sequence: e.seq,
      ...(e.requestId ? { correlation_uid: e.requestId } : {}),
    },
    actor: ocsfActor(e.actor),
    ...(e.ip ? { src_endpoint: { ip: e.ip } } : {}),
    unmapped: { ferry: { type: e.type, subject: e.subject, leafIndex: e.leafIndex, data: e.data } },
  };
  const userName = e.subject ?? (e.actor.type === 'anonymous' ? 'unknown' : e.actor.name);
  const userId = typeof e.data.userId === 'string' ? e.data.userId : undefined;
  if (c.classUid === 3002) {
    record.user = { name: userName, ...(userId ? { uid: userId } : {}) };
    record.is_mfa = isMfa(e);
    // The service authenticated to (OCSF asks for it or a destination endpoint).
    record.service = { name: 'Ferry' };
    if (typeof e.data.step === 'string') record.auth_protocol = e.data.step;
    if (typeof e.data.sessionId === 'string') record.session = { uid: e.data.sessionId };
  } else if (c.classUid === 3001) {
    record.user = { name: userName, ...(userId ? { uid: userId } : {}) };
  } else if (c.classUid === 3006) {
    const groupId = typeof e.data.groupId === 'string' ? e.data.groupId : undefined;
    record.group = { name: e.subject ?? groupId ?? 'unknown', ...(groupId ? { uid: groupId } : {}) };
  } else {
    record.api = { operation: e.type, service: { name: 'Ferry' } };
    // Required for API Activity: an event from a background worker comes from Ferry itself.
    record.src_endpoint = e.ip ? { ip: e.ip } : { name: 'ferry' };
    if (e.subject) record.resources = [{ name: e.subject, type: e.type.split('.')[0] }];
  }
  return record;
}

/** One line of an export in `format` (no trailing newline). */
export function exportLine(e: AuditEvent, format: EventExportFormat): string {
  return JSON.stringify(format === 'ocsf' ? toOcsf(e) : e);
}

/**
 * Every event in [since, until) in sequence order, one line each, read a page at a time (an export of
 * millions of events never sits in memory).
 */
export async function* exportEvents(
  db: Kysely<Database>,
  options: { format: EventExportFormat; since?: string; until?: string },
): AsyncGenerator<string> {
  let after: number | undefined;
  for (;;) {
    const page = await listAudit(db, {
      since: options.since,
      until: options.until,
      afterSeq: after,
      limit: 1000,
    });
    for (const e of page) yield `${exportLine(e, options.format)}\n`;
    if (page.length < 1000) return;
    after = page.at(-1)!.seq;
  }
}
