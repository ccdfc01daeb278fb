import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
} from 'node:crypto';

export class InvalidMasterKey extends Error {
  constructor(reason: string) {
    super(`master key: ${reason}`);
    this.name = 'InvalidMasterKey';
  }
}

/** Raised when sealed data was altered or sealed under another master key. */
export class SealedDataTampered extends Error {
  constructor() {
    super('sealed data failed authentication');
    this.name = 'SealedDataTampered';
  }
}

/** Parses a 32-byte master key given as base64, base64url or 64 hex characters. */
export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (bytes.length !== 32) throw new InvalidMasterKey('must be 32 bytes, as base64 or 64 hex characters');
  return bytes;
}

export function generateMasterKey(): string {
  return randomBytes(32).toString('base64');
}

/**
 * Random bytes for GCM nonces, drawn from a pool the CSPRNG refills: `randomBytes(12)` per seal cost
 * as much as the AES-GCM itself (a crypto job per call; a token grant seals its token). Each byte is
 * handed out once, so nonces stay random and unique as before.
 */
const NONCE_POOL = Buffer.allocUnsafe(12 * 512);
let noncePoolOffset = NONCE_POOL.length;
function freshNonce(): Buffer {
  if (noncePoolOffset + 12 > NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePoolOffset = 0;
  }
  const nonce = Buffer.from(NONCE_POOL.subarray(noncePoolOffset, noncePoolOffset + 12));
  noncePoolOffset += 12;
  return nonce;
}

/**
 * The master key never encrypts data directly: each purpose gets its own HKDF-derived key, so a key
 * used for sealing secrets at rest is never also the one that signs cookies.
 */
export class MasterKey {
  readonly #root: Buffer;
  readonly #lookupKeys = new Map<string, Buffer>();
  /** derived once: HKDF on every seal cost more than the AES-GCM itself (a grant seals its token) */
  #sealKey: Buffer | undefined;
  constructor(root: Buffer) {
    if (root.length !== 32) throw new InvalidMasterKey('must be 32 bytes');
    this.#root = root;
  }

  derive(purpose: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#root, Buffer.alloc(0), `ferry/${purpose}`, length));
  }

  /**
   * The key under which a bearer value (token, session cookie, code) is stored and looked up: HMAC-SHA256
   * under a per-purpose key derived from the master key. A copy of the database holds only these, which
   * cannot be presented anywhere; and whoever can write the database still cannot mint a value that
   * matches without the master key (docs/decisions/0019).
   */
  lookupKey(purpose: string, value: string): string {
    let key = this.#lookupKeys.get(purpose);
    if (!key) {
      key = this.derive(`lookup/${purpose}`);
      this.#lookupKeys.set(purpose, key);
    }
    return createHmac('sha256', key).update(value, 'utf8').digest('base64url');
  }

  #sealKeyV1(): Buffer {
    this.#sealKey ??= this.derive('seal/v1');
    return this.#sealKey;
  }

  /** AES-256-GCM; `context` is bound as associated data so a sealed value can't be moved to another row. */
  seal(plaintext: string, context: string): string {
    const key = this.#sealKeyV1();
    const iv = freshNonce();
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      'v1',
      iv.toString('base64url'),
      ct.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.');
  }

  unseal(sealed: string, context: string): string {
    const [version, iv, ct, tag] = sealed.split('.');
    if (version !== 'v1' || !iv || ct === undefined || !tag) throw new SealedDataTampered();
    try {
      // authTagLength pins the tag to 16 bytes: by default Node also accepts a truncated (4..15 byte)
      // tag, which authenticates against a prefix only and makes forging far cheaper.
      const decipher = createDecipheriv('aes-256-gcm', this.#sealKeyV1(), Buffer.from(iv, 'base64url'), {
        authTagLength: 16,
      });
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SealedDataTampered();
    }
  }
}
