import type { FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { type Actor, actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/open.js';

/** Why the admin guard said 403: the problem type it answered. */
export type RefusalReason =
  | 'insufficient-scope'
  | 'token-creator-lacks-permission'
  | 'admin-role-required'
  | 'step-up-required'
  | 'approvals-need-a-person'
  /** a new API token asked for permissions its maker does not hold */
  | 'token-beyond-maker'
  /** an approval page's answer from someone who may not give it (not an approver, their own request) */
  | 'not-allowed-to-answer';

export interface AdminRefusalOptions {
  /** one audit event per actor and route in this window; the rest are counted (default 60 s) */
  windowMs?: number;
  /** at most this many audit events per actor in a window, whatever the routes (default 20) */
  perActor?: number;
  /** the windows kept in memory; beyond it, refusals are only counted (default 10 000) */
  maxKeys?: number;
}

const actorKey = (a: Actor): string => ('id' in a ? `${a.type}:${a.id}` : actorName(a));

/**
 * Audits the admin guard's refusals (docs/decisions/0041): one `admin.refused` event per actor and
 * route in a window, carrying how many were refused since the last one (`refusedSinceLast`), and at most
 * `perActor` events per actor in a window, so an attacker holding a token cannot flood the ledger.
 * Every refusal is counted in `ferry_admin_refusals_total{outcome}` (audited, suppressed, failed).
 * The windows are per process: N instances write at most N events per window.
 */
export class AdminRefusals {
  readonly #windowMs: number;
  readonly #perActor: number;
  readonly #maxKeys: number;
  /** actor+route → when its window began and how many were refused since its event */
  readonly #routes = new Map<string, { start: number; suppressed: number }>();
  /** actor → when its window began and how many events it wrote in it */
  readonly #actors = new Map<string, { start: number; events: number }>();
  readonly counter: Counter<'outcome'>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    registry: Registry,
    options: AdminRefusalOptions = {},
  ) {
    this.#windowMs = options.windowMs ?? 60_000;
    this.#perActor = options.perActor ?? 20;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.counter = new Counter({
      name: 'ferry_admin_refusals_total',
      help: 'Admin calls the admin guard refused (403), by whether an audit event was written for it',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
    for (const outcome of ['audited', 'suppressed', 'failed']) this.counter.inc({ outcome }, 0);
  }

  /** Records one refusal; never throws (the caller answers 403 whatever happens here). */
  async record(
    req: FastifyRequest,
    refusal: { permission: string; reason: RefusalReason; detail?: string },
  ): Promise<void> {
    const now = this.clock.now().getTime();
    const actor = req.actor ?? { type: 'anonymous' };
    const who = actorKey(actor);
    const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
    const key = `${who}\n${route}`;
    const open = (start: number) => now - start < this.#windowMs && now >= start;
    const w = this.#routes.get(key);
    if (w && open(w.start)) {
      w.suppressed++;
      this.counter.inc({ outcome: 'suppressed' });
      return;
    }
    const a = this.#actors.get(who);
    if (a && open(a.start) && a.events >= this.#perActor) {
      this.counter.inc({ outcome: 'suppressed' });
      return;
    }
    if (this.#routes.size >= this.#maxKeys || this.#actors.size >= this.#maxKeys) this.#prune(now);
    if (this.#routes.size >= this.#maxKeys || this.#actors.size >= this.#maxKeys) {
      this.counter.inc({ outcome: 'suppressed' });
      return;
    }
    const refusedSinceLast = w?.suppressed ?? 0;
    this.#routes.set(key, { start: now, suppressed: 0 });
    if (a && open(a.start)) a.events++;
    else this.#actors.set(who, { start: now, events: 1 });
    try {
      await appendAudit(this.store.db, this.store.engine, this.clock, {
        type: 'admin.refused',
        outcome: 'failure',
        actor,
        subject: route,
        ip: req.ip,
        requestId: req.id,
        data: {
          route,
          permission: refusal.permission,
          reason: refusal.reason,
          ...(refusal.detail ? { detail: refusal.detail } : {}),
          ...(refusedSinceLast > 0 ? { refusedSinceLast } : {}),
        },
      });
      this.counter.inc({ outcome: 'audited' });
    } catch (err) {
      this.counter.inc({ outcome: 'failed' });
      req.log.warn({ err }, 'admin refusal not audited');
    }
  }

  #prune(now: number): void {
    for (const [k, v] of this.#routes) if (now - v.start >= this.#windowMs) this.#routes.delete(k);
    for (const [k, v] of this.#actors) if (now - v.start >= this.#windowMs) this.#actors.delete(k);
  }
}
