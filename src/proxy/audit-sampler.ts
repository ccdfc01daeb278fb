/**
 * Which allowed proxy requests are written to the audit trail: the first one of each session for
 * each app (who started using what), then one in `rate`. Denials are always audited, not here.
 * The memory of seen sessions is per instance and bounded; forgetting one only means one more event.
 */
export class AuditSampler {
  #count = 0;
  readonly #seen = new Set<string>();

  constructor(
    private readonly rate: number,
    private readonly maxSessions = 10_000,
  ) {}

  /** Should this allowed request be audited? `session` identifies the caller's sign-in. */
  shouldAudit(session: string, app: string): { audit: boolean; why: 'first-in-session' | 'sampled' | null } {
    const key = `${app}\u0000${session}`;
    if (!this.#seen.has(key)) {
      if (this.#seen.size >= this.maxSessions) {
        // Drop the oldest (Sets iterate in insertion order).
        const oldest = this.#seen.values().next().value;
        if (oldest !== undefined) this.#seen.delete(oldest);
      }
      this.#seen.add(key);
      return { audit: true, why: 'first-in-session' };
    }
    if (this.rate <= 0) return { audit: false, why: null };
    this.#count = (this.#count + 1) % this.rate;
    return this.#count === 0 ? { audit: true, why: 'sampled' } : { audit: false, why: null };
  }
}
