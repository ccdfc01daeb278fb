import { type AuditEvent, listAudit } from '../audit/ledger.js';
import type { Clock } from '../clock.js';
import { parseDuration } from '../duration.js';
import { InvalidInput } from '../errors.js';
import type { Store } from '../store/open.js';
import { recordFromRow } from './ingest.js';
import { isAccessDenied } from './least-privilege.js';

/** One line of a person's (or a role's) timeline: a Ferry audit event or a CloudTrail record. */
export interface ActivityItem {
  time: string;
  source: 'ferry' | 'cloudtrail';
  /** the audit event type (signin, aws.credentials.issued…) or CloudTrail's eventName */
  eventName: string;
  /** the Ferry user name, when known */
  person: string | null;
  accessKeyId: string | null;
  account: string | null;
  role: string | null;
  /** success, failure (Ferry refused), error (AWS answered an error), denied (AWS AccessDenied) */
  outcome: 'success' | 'failure' | 'error' | 'denied';
  /** eventSource for CloudTrail records (s3.amazonaws.com…) */
  eventSource: string | null;
  errorCode: string | null;
  /** how a CloudTrail record was tied to the person; null for Ferry events */
  attribution: string | null;
  issuedByFerry: boolean | null;
  sourceIpAddress: string | null;
  /** why: the decision's reasons for Ferry events, AWS's errorMessage for failed calls */
  detail: string | null;
  /** audit event id or CloudTrail eventID */
  id: string;
}

/** Ferry's own events that belong on an AWS timeline (the rest of the audit trail stays in `ferry audit`). */
const FERRY_TYPES = /^(signin|session|mfa|aws\.|saml\.|access\.|pim\.|oidc\.token|device)/;

/** `1h`, `30d` (back from now) or an ISO-8601 instant. */
export function sinceOf(text: string | undefined, clock: Clock, fallback: string): Date {
  const value = text ?? fallback;
  const ms = /^\d+(ms|s|m|h|d)$/.test(value) ? parseDuration(value) : null;
  if (ms !== null) return new Date(clock.now().getTime() - ms);
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime()))
    throw new InvalidInput(
      `since takes a duration such as 1h or 30d, or an ISO-8601 time (got ${value})`,
      'since',
    );
  return at;
}

const targetOf = (data: Record<string, unknown>): { account: string; role: string } | null => {
  const m = typeof data.target === 'string' ? /^aws:(\d{12})\/(.+)$/.exec(data.target) : null;
  return m ? { account: m[1]!, role: m[2]! } : null;
};

function fromAudit(e: AuditEvent): ActivityItem {
  const target = targetOf(e.data);
  return {
    time: e.time,
    source: 'ferry',
    eventName: e.type,
    person: e.subject,
    accessKeyId: typeof e.data.accessKeyId === 'string' ? e.data.accessKeyId : null,
    account: target?.account ?? null,
    role: target?.role ?? null,
    outcome: e.outcome,
    eventSource: null,
    errorCode: null,
    attribution: null,
    issuedByFerry: null,
    sourceIpAddress: e.ip,
    detail: Array.isArray(e.data.reasons)
      ? e.data.reasons
          .map((r) => (typeof r === 'string' ? r : ((r as { message?: string }).message ?? '')))
          .join('; ')
      : typeof e.data.message === 'string'
        ? e.data.message
        : null,
    id: e.id,
  };
}

export interface ActivityDeps {
  store: Store;
  clock: Clock;
  /** a Ferry user by UPN or id */
  findUser(ref: string): Promise<{ id: string; userName: string }>;
  /** an account id from an id or a registered alias */
  accountId(ref: string): Promise<string>;
}

/**
 * Timelines that join Ferry's audit trail (sign-in, decision, credential issued) to the AWS calls
 * CloudTrail recorded with what Ferry issued: per person, or per account and role.
 */
export class ActivityViews {
  constructor(private readonly deps: ActivityDeps) {}

  async timeline(q: {
    user?: string;
    account?: string;
    role?: string;
    since: Date;
    limit?: number;
  }): Promise<ActivityItem[]> {
    if (!q.user && !q.account) throw new InvalidInput('give a user, or an account (and a role)', 'user');
    const limit = Math.min(q.limit ?? 5000, 20_000);
    const since = q.since.toISOString();
    const { db } = this.deps.store;
    let records = db.selectFrom('cloudtrail_records').selectAll().where('event_time', '>=', since);
    let ferry: AuditEvent[] = [];
    let accountId: string | null = null;
    if (q.account) {
      accountId = await this.deps.accountId(q.account);
      records = records.where('account', '=', accountId);
      if (q.role) records = records.where('role_name', '=', q.role);
    }
    if (q.user) {
      const user = await this.deps.findUser(q.user);
      records = records.where('user_id', '=', user.id);
      ferry = (await this.#audit({ since, subject: user.userName })).filter((e) => FERRY_TYPES.test(e.type));
    } else {
      // A role's timeline: what Ferry issued for it.
      ferry = (await this.#audit({ since })).filter((e) => {
        const t = targetOf(e.data);
        return FERRY_TYPES.test(e.type) && t?.account === accountId && (!q.role || t.role === q.role);
      });
    }
    if (accountId && q.user)
      ferry = ferry.filter((e) => {
        const t = targetOf(e.data);
        return !t || (t.account === accountId && (!q.role || t.role === q.role));
      });
    const rows = await records.orderBy('event_time', 'desc').limit(limit).execute();
    const items: ActivityItem[] = [
      ...ferry.map(fromAudit),
      ...rows.map((row) => {
        const r = recordFromRow(row);
        return {
          time: row.event_time,
          source: 'cloudtrail' as const,
          eventName: r.eventName,
          person: r.attribution.userName,
          accessKeyId: r.accessKeyId,
          account: r.account,
          role: r.roleName,
          outcome: (r.errorCode
            ? isAccessDenied(r.errorCode)
              ? 'denied'
              : 'error'
            : 'success') as ActivityItem['outcome'],
          eventSource: r.eventSource,
          errorCode: r.errorCode,
          attribution: r.attribution.method,
          issuedByFerry: r.attribution.issuedByFerry,
          sourceIpAddress: r.sourceIpAddress,
          detail: r.errorMessage,
          id: r.eventId,
        };
      }),
    ];
    items.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.source === 'ferry' ? -1 : 1));
    return items.slice(-limit);
  }

  /** Audit events since a time, paged (listAudit answers at most 1000 at a time). */
  async #audit(q: { since: string; subject?: string }): Promise<AuditEvent[]> {
    const all: AuditEvent[] = [];
    let afterSeq: number | undefined;
    for (let page = 0; page < 20; page++) {
      const batch = await listAudit(this.deps.store.db, { ...q, afterSeq, limit: 1000 });
      all.push(...batch);
      if (batch.length < 1000) break;
      afterSeq = batch[batch.length - 1]!.seq;
    }
    return all;
  }
}
