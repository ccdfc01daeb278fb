/**
 * When one outbox lane is drained (issue 16 point 4, offboarding within 200 ms): on every wake (a
 * commit's notification, this process's enqueue, the poll), up to `maxConcurrent` drains at once.
 *
 * - A wake while drains run starts another one, up to the bound: its claim takes other rows (FOR
 *   UPDATE SKIP LOCKED on PostgreSQL, the one connection on SQLite), so an offboarding committed while
 *   the previous one's slower handlers (SSH KRL, Identity Center push) finish is handled at once
 *   instead of after them.
 * - A wake while all of them run is remembered, and a drain starts again as soon as one ends: an event
 *   committed while a drain was finishing (its last, empty claim's snapshot older than the commit)
 *   is never left for the next poll.
 */
export class LaneDrains {
  readonly #running = new Set<Promise<void>>();
  #wokenWhileFull = false;
  #stopped = false;

  constructor(
    private readonly drain: () => Promise<unknown>,
    private readonly maxConcurrent: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  wake(): void {
    if (this.#stopped) return;
    if (this.#running.size >= this.maxConcurrent) {
      this.#wokenWhileFull = true;
      return;
    }
    this.#wokenWhileFull = false;
    const run: Promise<void> = this.drain()
      .then(
        () => undefined,
        (err: unknown) => this.onError(err),
      )
      .finally(() => {
        this.#running.delete(run);
        if (this.#wokenWhileFull) this.wake();
      });
    this.#running.add(run);
  }

  /** How many drains run now. */
  get running(): number {
    return this.#running.size;
  }

  /** Resolves once no drain runs (including those started by wakes meanwhile). */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running]);
  }

  /** No new drains; those running go on (await settled()). */
  stop(): void {
    this.#stopped = true;
  }
}
