import { isDatabaseUnavailable, isStorageFull } from './errors.js';
import type { WriteCondition } from './open.js';

/** How much room a probe asks for before writes count as working again. */
export const PROBE_BYTES = 256 * 1024;
/** Thrown inside the probe's transaction to roll it back once the space was found. */
export const PROBE_DONE = Symbol('probe done');

/**
 * Tracks whether the database can write (issue 16 point 5): SQLite's SQLITE_FULL, PostgreSQL's
 * disk_full (53100). Such an error from any statement marks it full (reported once, with its cause); a
 * probe then looks for room at most once a second: a rolled-back insert of PROBE_BYTES that must get
 * its pages (what fails under a full disk, a quota, or SQLite's max_page_count). Successful writes alone
 * don't end it: an in-place update can succeed while every insert fails, and the state would flap.
 */
export class WriteHealth {
  #failure: { cause: string; since: string } | undefined;
  #lastProbe = 0;
  #probing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly onChange: (condition: WriteCondition) => void,
  ) {}

  failed(err: unknown): void {
    if (this.#failure) return;
    const e = err as { code?: string; message?: string };
    this.#failure = {
      cause: `database writes fail: out of space (${e.code ?? 'error'}: ${e.message ?? String(err)})`,
      since: new Date().toISOString(),
    };
    this.#lastProbe = Date.now();
    this.onChange({ ok: false, ...this.#failure });
    this.#timer = setInterval(() => void this.check(), 2_000);
    this.#timer.unref();
  }

  async check(): Promise<WriteCondition> {
    if (this.#failure && !this.#probing && Date.now() - this.#lastProbe >= 1_000) {
      this.#lastProbe = Date.now();
      const recovered = () => {
        if (!this.#failure) return;
        this.#failure = undefined;
        clearInterval(this.#timer);
        this.onChange({ ok: true });
      };
      this.#probing = this.probe()
        .then(recovered, (err: unknown) => {
          // Still full, or unreachable: the failure stays as first reported. Any other error says
          // nothing about space (a role without CREATE on the schema, say): the probe cannot tell, so
          // the condition ends and the next write that finds the disk full reports it again, rather
          // than keeping every instance out of the load balancer for good.
          if (!isStorageFull(err) && !isDatabaseUnavailable(err)) recovered();
        })
        .finally(() => {
          this.#probing = undefined;
        });
    }
    await this.#probing;
    return this.#failure ? { ok: false, ...this.#failure } : { ok: true };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
