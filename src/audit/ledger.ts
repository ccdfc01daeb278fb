import { createHash, randomUUID } from 'node:crypto';
import type { Insertable, Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import { insertRow } from '../store/insert-row.js';
import type { Engine } from '../store/open.js';
import type { AuditEventRow, AuditEventsTable, Database } from '../store/schema.js';
import type { Actor } from './actor.js';
import { canonicalJson } from './canonical-json.js';
import { leafHash } from './merkle.js';
import { type LeafEvent, leafData } from './tree-head.js';

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
  /** read order (ascending as appended); the tree order is `leafIndex` */
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
  /** '' for ledger events; the previous event's hash for events of the old hash chain */
  prevHash: string;
  /** the leaf hash (hex); for events of the old hash chain, their chain hash */
  hash: string;
  /** position in the Merkle tree; null until the sequencer sealed it (usually within a second) */
  leafIndex: number | null;
}

export const GENESIS_HASH = '0'.repeat(64);

/** The old chain's hash (events written before migration 0019): previous hash + the event's fields. */
export function hashEvent(e: Omit<AuditEvent, 'hash' | 'leafIndex'>): string {
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

/** What the tree commits to for an event (old-chain events carry their chain link along). */
export function leafEventOf(e: AuditEvent): LeafEvent {
  const leaf: LeafEvent = {
    id: e.id,
    time: e.time,
    type: e.type,
    outcome: e.outcome,
    actor: e.actor,
    subject: e.subject,
    ip: e.ip,
    requestId: e.requestId,
    data: e.data,
  };
  if (e.prevHash !== '') leaf.chain = { prevHash: e.prevHash, hash: e.hash };
  return leaf;
}

/** The event's leaf hash, hex, recomputed from its fields. */
export function leafHashOf(e: AuditEvent): string {
  return leafHash(leafData(leafEventOf(e))).toString('hex');
}

type AppendListener = () => void;
const appendListeners = new Set<AppendListener>();

/** Called after each append in this process (the sequencer wakes on it instead of waiting to poll). */
export function onAuditAppended(listener: AppendListener): () => void {
  appendListeners.add(listener);
  return () => appendListeners.delete(listener);
}

/**
 * Appends one event. Call it inside the transaction that makes the change, so the event exists exactly
 * when the change does. It touches no shared row: the sequence number comes from a database sequence
 * (PostgreSQL) or the rowid (SQLite), and the sequencer gives the event its place in the Merkle tree
 * after commit (sequencer.ts). `engine` is kept for the call sites; nothing depends on it any more.
 */
export async function appendAudit(
  trx: Kysely<Database>,
  _engine: Engine,
  clock: Clock,
  input: AuditInput,
): Promise<AuditEvent> {
  const { row, event } = auditRow(clock, input);
  const [inserted] = await insertRow(trx, 'audit_events', row, ['seq']);
  if (!inserted) throw new Error('the audit event was not inserted');
  auditAppended();
  return { ...event, seq: Number(inserted.seq) };
}

/**
 * The row appendAudit inserts, for a caller that writes it in a statement of its own (e.g. with the
 * change it records, in one round trip); it must call auditAppended() after that statement.
 */
export function auditRow(
  clock: Clock,
  input: AuditInput,
  /** the event's id when the caller makes it (e.g. time-ordered for a batch of appends); a UUID */
  id: string = randomUUID(),
): { row: Insertable<AuditEventsTable>; event: Omit<AuditEvent, 'seq'> } {
  const fields = {
    id,
    time: iso(clock.now()),
    type: input.type,
    outcome: input.outcome,
    actor: input.actor,
    subject: input.subject ?? null,
    ip: input.ip ?? null,
    requestId: input.requestId ?? null,
    data: input.data ?? {},
  };
  const actor = canonicalJson(fields.actor);
  const data = canonicalJson(fields.data);
  const hash = leafHash(leafDataOf(fields, actor, data)).toString('hex');
  return {
    row: {
      id: fields.id,
      time: fields.time,
      type: fields.type,
      outcome: fields.outcome,
      actor,
      subject: fields.subject,
      ip: fields.ip,
      request_id: fields.requestId,
      data,
      prev_hash: '',
      hash,
      leaf_hash: hash,
    },
    event: { ...fields, prevHash: '', hash, leafIndex: null },
  };
}

/**
 * leafData() of a new event, given its actor and data already as canonical JSON (the row stores them so):
 * the same string, keys in canonical (sorted) order, without sorting and writing the data a second time.
 */
function leafDataOf(
  e: {
    id: string;
    time: string;
    type: string;
    outcome: string;
    subject: string | null;
    ip: string | null;
    requestId: string | null;
  },
  actor: string,
  data: string,
): string {
  const q = JSON.stringify;
  return `{"actor":${actor},"data":${data},"id":${q(e.id)},"ip":${q(e.ip)},"outcome":${q(e.outcome)},"requestId":${q(e.requestId)},"subject":${q(e.subject)},"time":${q(e.time)},"type":${q(e.type)}}`;
}

/** Wakes the sequencer: an event was appended (see onAuditAppended). */
export function auditAppended(): void {
  for (const listener of appendListeners) listener();
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
    leafIndex: row.leaf_index === null ? null : Number(row.leaf_index),
  };
}

export interface AuditQuery {
  /** events at or after this time (ISO-8601) */
  since?: string;
  /** events before this time (ISO-8601) */
  until?: string;
  /** events with seq greater than this (for tailing) */
  afterSeq?: number;
  type?: string;
  subject?: string;
  limit?: number;
}

export async function listAudit(db: Kysely<Database>, q: AuditQuery): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().orderBy('seq');
  if (q.since) query = query.where('time', '>=', q.since);
  if (q.until) query = query.where('time', '<', q.until);
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
