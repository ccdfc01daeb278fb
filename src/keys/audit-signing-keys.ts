import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { sql } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { Store } from '../store/open.js';
import type { AuditSigningKeysTable } from '../store/schema.js';
import type { MasterKey } from './master-key.js';

/** An Ed25519 key that signs audit tree heads; `privateKey` never leaves the process. */
export interface AuditSigningKey {
  /** first 32 hex characters of SHA-256 over the SPKI DER: what a head names as `keyId` */
  id: string;
  publicKeyPem: string;
  privateKey: KeyObject;
}

/** The key id of an Ed25519 public key: a head names its key by it. */
export function auditKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('hex').slice(0, 32);
}

/** Raised when a stored key does not match its sealed private half: the row was swapped. */
export class AuditKeyMismatch extends Error {
  constructor(readonly keyId: string) {
    super(`audit signing key ${keyId}: the stored public key does not match the sealed private key`);
    this.name = 'AuditKeyMismatch';
  }
}

/**
 * The audit ledger's signing key, sealed with the master key at rest (as SigningKeys and SshCaKeys
 * are). Someone who can write the database but lacks the master key can neither sign a head nor swap
 * in a key of their own: `trusted()` only believes a public key its sealed private key reproduces.
 */
export class AuditSigningKeys {
  #current: AuditSigningKey | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
  ) {}

  /** The current key, created once when there is none (instances starting at once end with one). */
  async current(): Promise<AuditSigningKey> {
    if (this.#current) return this.#current;
    const row = await this.#findCurrent();
    if (row) {
      this.#current = this.#open(row);
      return this.#current;
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const id = auditKeyId(publicKey);
    const created = await this.store.db.transaction().execute(async (trx) => {
      if (this.store.engine === 'postgres')
        await sql`select pg_advisory_xact_lock(hashtextextended('ferry/audit-signing-key', 0))`.execute(trx);
      const raced = await trx
        .selectFrom('audit_signing_keys')
        .selectAll()
        .where('state', '=', 'current')
        .executeTakeFirst();
      if (raced) return raced;
      const fresh: AuditSigningKeysTable = {
        id,
        public_key: publicKey.export({ format: 'pem', type: 'spki' }) as string,
        private_key_sealed: this.masterKey.seal(
          privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
          sealContext(id),
        ),
        state: 'current',
        created_at: iso(this.clock.now()),
      };
      await trx.insertInto('audit_signing_keys').values(fresh).execute();
      return fresh;
    });
    this.#current = this.#open(created);
    return this.#current;
  }

  /** Public keys (by id) whose sealed private half unseals and matches: the ones verify may trust. */
  async trusted(): Promise<Map<string, KeyObject>> {
    const rows = await this.store.db.selectFrom('audit_signing_keys').selectAll().execute();
    const out = new Map<string, KeyObject>();
    for (const row of rows) {
      const key = this.#open(row);
      out.set(key.id, createPublicKey(key.publicKeyPem));
    }
    return out;
  }

  #findCurrent() {
    return this.store.db
      .selectFrom('audit_signing_keys')
      .selectAll()
      .where('state', '=', 'current')
      .executeTakeFirst();
  }

  #open(row: AuditSigningKeysTable): AuditSigningKey {
    const privateKey = createPrivateKey(this.masterKey.unseal(row.private_key_sealed, sealContext(row.id)));
    const publicKey = createPublicKey(privateKey);
    const pem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
    if (auditKeyId(publicKey) !== row.id || pem.trim() !== row.public_key.trim())
      throw new AuditKeyMismatch(row.id);
    return { id: row.id, publicKeyPem: pem, privateKey };
  }
}

/** Sealing context: a sealed key can't be moved to another row. */
function sealContext(id: string): string {
  return `audit-signing-key:${id}`;
}
