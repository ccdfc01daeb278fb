import { createHash, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { Engine } from '../store/open.js';
import type { AuditEventRow, Database } from '../store/schema.js';
import type { Actor } from './actor.js';
import { canonicalJson } from './canonical-json.js';

export type Outcome = 'success' | 'failure';

export interface AuditInput {
  /** dotted event name, e.g. signin.password, user.created, api-token.created */
  type: string;
  outcome: Outcome;
  actor: Actor;
  /** what the event is about, e.g. a user name or an object id */
  subject?: string | null;
  ip?: string | null;
  requestId?: string | null;
  /** never secrets: no passwords, tokens, codes or keys */
  data?: Record<string, unknown>;
}

export interface AuditEvent {
  seq: number;
  id: string;
  time: string;
  type: string;
  outcome: Outcome;
  actor: Actor;
  subject: string | null;
  ip: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** The hash covers every field of the event and the previous event's hash. */
export function hashEvent(e: Omit<AuditEvent, 'hash'>): string {
  const body = canonicalJson({
    seq: e.seq,
    id: e.id,
    time: e.time,
    type: e.type,
    outcome: e.outcome,
    actor: e.actor,
    subject: e.subject,
    ip: e.ip,
    requestId: e.requestId,
    data: e.data,
  });
  return createHash('sha256').update(e.prevHash).update('\n').update(body).digest('hex');
}

/**
 * Appends one event to the hash chain. Call it inside the transaction that makes the change, so
 * the event exists exactly when the change does. The head row is locked first: appends from several
 * instances are serialised and the chain never forks.
 */
export async function appendAudit(
  trx: Kysely<Database>,
  engine: Engine,
  clock: Clock,
  input: AuditInput,
): Promise<AuditEvent> {
  let headQuery = trx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
  if (engine === 'postgres') headQuery = headQuery.forUpdate();
  const head = await headQuery.executeTakeFirstOrThrow();
  const partial: Omit<AuditEvent, 'hash'> = {
    seq: Number(head.seq) + 1,
    id: randomUUID(),
    time: iso(clock.now()),
    type: input.type,
    outcome: input.outcome,
    actor: input.actor,
    subject: input.subject ?? null,
    ip: input.ip ?? null,
    requestId: input.requestId ?? null,
    data: input.data ?? {},
    prevHash: head.hash,
  };
  const event: AuditEvent = { ...partial, hash: hashEvent(partial) };
  await trx
    .insertInto('audit_events')
    .values({
      seq: event.seq,
      id: event.id,
      time: event.time,
      type: event.type,
      outcome: event.outcome,
      actor: canonicalJson(event.actor),
      subject: event.subject,
      ip: event.ip,
      request_id: event.requestId,
      data: canonicalJson(event.data),
      prev_hash: event.prevHash,
      hash: event.hash,
    })
    .execute();
  await trx.updateTable('audit_head').set({ seq: event.seq, hash: event.hash }).where('id', '=', 1).execute();
  return event;
}

export function eventFromRow(row: AuditEventRow): AuditEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    time: row.time,
    type: row.type,
    outcome: row.outcome as Outcome,
    actor: JSON.parse(row.actor) as Actor,
    subject: row.subject,
    ip: row.ip,
    requestId: row.request_id,
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export interface AuditQuery {
  /** events at or after this time (ISO-8601) */
  since?: string;
  /** events with seq greater than this (for tailing) */
  afterSeq?: number;
  type?: string;
  subject?: string;
  limit?: number;
}

export async function listAudit(db: Kysely<Database>, q: AuditQuery): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().orderBy('seq');
  if (q.since) query = query.where('time', '>=', q.since);
  if (q.afterSeq !== undefined) query = query.where('seq', '>', q.afterSeq);
  if (q.type) query = query.where('type', '=', q.type);
  if (q.subject) query = query.where('subject', '=', q.subject);
  const rows = await query.limit(Math.min(q.limit ?? 100, 1000)).execute();
  return rows.map(eventFromRow);
}

/** The newest events, oldest first (what `ferry audit tail` shows before following). */
export async function latestAudit(db: Kysely<Database>, count: number): Promise<AuditEvent[]> {
  const rows = await db.selectFrom('audit_events').selectAll().orderBy('seq', 'desc').limit(count).execute();
  return rows.reverse().map(eventFromRow);
}
