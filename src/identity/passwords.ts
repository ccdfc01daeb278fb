import { hash, verify } from '@node-rs/argon2';

/** argon2id at OWASP's recommended minimum (19 MiB, 2 iterations, 1 lane); configurable upward. */
export interface PasswordCost {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: PasswordCost = { memoryKiB: 19_456, iterations: 2, parallelism: 1 };

const ARGON2ID = 2; // Algorithm.Argon2id (a const enum, which isolatedModules can't import)

export class PasswordPolicyViolation extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PasswordPolicyViolation';
  }
}

/** NIST SP 800-63B: length matters, composition rules don't; 8..256 characters. */
export function checkPasswordPolicy(password: string): void {
  if ([...password].length < 8) throw new PasswordPolicyViolation('password must be at least 8 characters');
  if (password.length > 256) throw new PasswordPolicyViolation('password must be at most 256 characters');
}

export class PasswordHasher {
  #dummy: Promise<string> | undefined;
  constructor(readonly cost: PasswordCost = OWASP_ARGON2ID) {}

  hash(password: string): Promise<string> {
    return hash(password, {
      algorithm: ARGON2ID,
      memoryCost: this.cost.memoryKiB,
      timeCost: this.cost.iterations,
      parallelism: this.cost.parallelism,
    });
  }

  async verify(stored: string | null, password: string): Promise<boolean> {
    if (!stored) {
      // Spend the same time as a real check so response time doesn't reveal whether an account exists.
      this.#dummy ??= this.hash('ferry-dummy-password');
      await verify(await this.#dummy, password).catch(() => false);
      return false;
    }
    try {
      return await verify(stored, password);
    } catch {
      return false;
    }
  }
}

/** A place in the hashing queue: run the hash with it, or give it back unused. */
export interface HashTicket {
  run<T>(work: () => Promise<T>): Promise<T>;
  /** gives the place back (idempotent; `run` gives it back by itself) */
  release(): void;
}

/**
 * Anonymous callers may ask Ferry to hash passwords; each hash costs tens of milliseconds and
 * 19 MiB. This bounds how many run at once and how many may wait; beyond that `tryAdmit` says no
 * at once, without a database query, and the caller answers 503 with Retry-After
 * (docs/decisions/0018).
 */
export class HashQueue {
  #admitted = 0;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {}

  /** how many are admitted (running or waiting) right now */
  get admitted(): number {
    return this.#admitted;
  }

  tryAdmit(): HashTicket | null {
    if (this.#admitted >= this.concurrency + this.maxWaiting) return null;
    this.#admitted += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#admitted -= 1;
    };
    return {
      release,
      run: async <T>(work: () => Promise<T>): Promise<T> => {
        if (released) throw new Error('hash ticket already released');
        if (this.#running >= this.concurrency) await new Promise<void>((go) => this.#waiting.push(go));
        else this.#running += 1;
        try {
          return await work();
        } finally {
          const next = this.#waiting.shift();
          // The slot passes straight to the next waiter, so #running never dips below the truth.
          if (next) next();
          else this.#running -= 1;
          release();
        }
      },
    };
  }
}

/** Too many sign-ins are being evaluated at once; the caller should retry in a few seconds. */
export class SigninBusy extends Error {
  readonly code = 'signin-busy';
  readonly retryAfterSeconds = 2;
  constructor() {
    super('too many sign-ins at once; try again in a few seconds');
    this.name = 'SigninBusy';
  }
}
