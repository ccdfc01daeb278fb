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
