import type { AuditContext } from '../../audit/actor.js';
import type { Clock } from '../../clock.js';
import { Conflict } from '../../errors.js';
import { withLease } from '../../store/leases.js';
import type { Store } from '../../store/open.js';
import { type PlanScope, type PushPlan, planPush } from './plan.js';
import { type PushOptions, type PushResult, PushRun } from './push.js';
import { DEFAULT_RETRY, IdentityCenterScimClient, type ScimClientOptions } from './scim-client.js';
import type { IdentityCenterTargets } from './target.js';

export type ClientTuning = Omit<ScimClientOptions, 'endpoint' | 'token'>;

/**
 * SCIM push to IAM Identity Center: `ferry scim push` (everything, or a dry run) and the outbox
 * handlers (what one event touched) both go through here. Runs are serialised, in this process and
 * across instances (the `identity-center-push` lease), so two never race on the same object.
 */
export class IdentityCenterPush {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly targets: IdentityCenterTargets,
    private readonly tuning: ClientTuning = {},
    /** this process's heartbeating instance: if it dies, another takes the push lease over at once */
    private readonly instanceId?: string,
  ) {}

  /** What a push would change (the dry run). */
  plan(scope: PlanScope = {}): Promise<PushPlan> {
    return planPush(this.store.db, scope);
  }

  /** Plans and applies; throws Conflict when no target is configured. */
  async push(
    ctx: AuditContext,
    scope: PlanScope = {},
    options: PushOptions & { onPlan?: (plan: PushPlan) => void } = {},
  ): Promise<PushResult> {
    return this.run(ctx, scope, options, this.tuning);
  }

  private run(
    ctx: AuditContext,
    scope: PlanScope,
    options: PushOptions & { onPlan?: (plan: PushPlan) => void },
    tuning: ClientTuning,
  ): Promise<PushResult> {
    // One push at a time in this process, and across instances (a lease in the database): two
    // instances planning the same user at once would each see it missing and each create it.
    return this.serialised(() =>
      withLease(
        this.store,
        'identity-center-push',
        async (signal) => {
          const target = await this.targets.current();
          if (!target)
            throw new Conflict('no IAM Identity Center SCIM endpoint is configured (ferry scim target set)');
          const plan = await planPush(this.store.db, scope);
          options.onPlan?.(plan);
          const client = new IdentityCenterScimClient({ ...tuning, clock: this.clock, ...target });
          return new PushRun(this.store, this.clock, client, ctx, { ...options, signal }).apply(plan);
        },
        { instanceId: this.instanceId },
      ),
    );
  }

  /** For outbox handlers: pushes what changed, or does nothing when no target is configured. */
  async sync(ctx: AuditContext, scope: PlanScope, options: PushOptions = {}): Promise<PushResult | null> {
    if (!(await this.targets.current())) return null;
    // The outbox drains events one after another: a push here must not hold up the revocations
    // behind it for long. Few quick tries; a long throttle fails the event, which the outbox retries.
    const retry = this.tuning.retry ?? DEFAULT_RETRY;
    return this.run(ctx, scope, options, {
      ...this.tuning,
      retry: {
        ...retry,
        maxAttempts: Math.min(retry.maxAttempts, 3),
        maxDelayMs: Math.min(retry.maxDelayMs, 1_000),
      },
      maxRetryAfterMs: 2_000,
    });
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
