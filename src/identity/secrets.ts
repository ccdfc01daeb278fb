import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { MasterKey } from '../keys/master-key.js';
import type { Store } from '../store/open.js';

/** 256 bits of randomness, URL-safe: session cookies, API token secrets, CSRF tokens. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Constant-time equality for secrets of any length (compares fixed-size digests). */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/**
 * How a bearer secret is stored: a keyed hash (under the master key, per purpose) of its SHA-256.
 * A copy of the database cannot be presented anywhere, and write access to the database cannot plant
 * a known token without the master key. The inner SHA-256 is what releases before 0013 stored, so
 * rows written then are re-keyed in place at start (rekeyLegacyHashes) rather than invalidated.
 */
export function storedSecret(masterKey: MasterKey, purpose: string, secret: string): string {
  return masterKey.lookupKey(purpose, sha256Hex(secret));
}

/** Every column that holds a stored secret, and the purpose it is keyed under. */
const STORED_SECRETS = [
  { table: 'sessions', column: 'token_hash', purpose: 'session' },
  { table: 'api_tokens', column: 'secret_hash', purpose: 'api-token' },
  { table: 'scim_connections', column: 'secret_hash', purpose: 'scim-token' },
  { table: 'recovery_codes', column: 'code_hash', purpose: 'recovery-code' },
] as const;

const LEGACY_HASH = /^[0-9a-f]{64}$/;

/**
 * Re-keys hashes written before 0013 (plain SHA-256 hex) into storedSecret's form, so existing API
 * tokens, SCIM tokens, sign-in sessions and recovery codes keep working. Idempotent, and safe with
 * several instances starting at once (each update is conditional on the old value).
 */
export async function rekeyLegacyHashes(store: Store, masterKey: MasterKey): Promise<number> {
  const db = store.db as unknown as Kysely<Record<string, Record<string, string>>>;
  let rekeyed = 0;
  for (const { table, column, purpose } of STORED_SECRETS) {
    const rows = await db
      .selectFrom(table)
      .select(column)
      .where(sql<boolean>`length(${sql.ref(column)}) = 64`)
      .execute();
    for (const row of rows) {
      const old = row[column];
      if (typeof old !== 'string' || !LEGACY_HASH.test(old)) continue;
      const res = await db
        .updateTable(table)
        .set({ [column]: masterKey.lookupKey(purpose, old) })
        .where(column, '=', old)
        .executeTakeFirst();
      rekeyed += Number(res.numUpdatedRows);
    }
  }
  return rekeyed;
}
