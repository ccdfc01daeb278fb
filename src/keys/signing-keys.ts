import { createPrivateKey, type KeyObject, randomUUID, X509Certificate } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { type Actor, type AuditContext, systemActor } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { Conflict } from '../errors.js';
import type { Store } from '../store/open.js';
import type { Database, SigningKeysTable } from '../store/schema.js';
import type { MasterKey } from './master-key.js';
import type { GeneratedSigningKey } from './self-signed-certificate.js';

/** saml: assertions; oidc-es256 / oidc-rs256: ID tokens and JWT access tokens (RS256 for clients that ask). */
export type SigningKeyPurpose = 'saml' | 'oidc-es256' | 'oidc-rs256';
export type SigningAlgorithm = 'rsa-sha256' | 'ecdsa-p256-sha256';
export type SigningKeyState = 'next' | 'current' | 'retired';

/** A signing key with its certificate; `privateKey` never leaves the process (never log it). */
export interface SigningKey {
  id: string;
  purpose: SigningKeyPurpose;
  algorithm: SigningAlgorithm;
  certificatePem: string;
  /** The certificate's DER as base64 on one line: the content of ds:X509Certificate. */
  certificateBase64: string;
  privateKey: KeyObject;
  state: SigningKeyState;
  createdAt: string;
  activatedAt: string | null;
}

/** Raised when a purpose has no current key: `ensureCurrent` was not run at start-up. */
export class NoCurrentSigningKey extends Error {
  constructor(readonly purpose: SigningKeyPurpose) {
    super(
      `no current ${purpose} signing key; the server creates one at start-up (SigningKeys.ensureCurrent)`,
    );
    this.name = 'NoCurrentSigningKey';
  }
}

export interface SigningKeysOptions {
  /** Test seam: where new key material comes from (default: RSA-3072, self-signed, 10 years). */
  generateKey?: (purpose: SigningKeyPurpose, now: Date) => Promise<GeneratedSigningKey>;
}

export const SIGNING_KEY_MODULUS_LENGTH = 3072;
export const SIGNING_CERT_VALIDITY_YEARS = 10;
const COMMON_NAMES: Record<SigningKeyPurpose, string> = {
  saml: 'Ferry SAML signing',
  'oidc-es256': 'Ferry OpenID Connect signing (ES256)',
  'oidc-rs256': 'Ferry OpenID Connect signing (RS256)',
};
const algorithmOf = (purpose: SigningKeyPurpose): SigningAlgorithm =>
  purpose === 'oidc-es256' ? 'ecdsa-p256-sha256' : 'rsa-sha256';

type Row = SigningKeysTable;
type Db = Kysely<Database>;

const defaultActor = systemActor('signing-keys');

/**
 * Signing keys per purpose, with a rotation that never breaks a relying party:
 * `rotate` stages a `next` key that metadata publishes beside the `current` one while nothing signs
 * with it; after a grace period (`rotateDue`, or `activateNext` by hand) it becomes current and the
 * old key is retired and unpublished.
 *
 * Every state change happens in one transaction that first takes a per-purpose lock (PostgreSQL:
 * a transaction-scoped advisory lock, since the row to lock may not exist yet; SQLite: transactions
 * begin immediate and so already hold the database's write lock), then re-reads the state. Several
 * instances starting at once therefore end with exactly one current key. Key generation (slow for
 * RSA-3072) happens before the lock, and a loser's fresh key is simply dropped.
 */
export class SigningKeys {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #masterKey: MasterKey;
  readonly #generateKey: (purpose: SigningKeyPurpose, now: Date) => Promise<GeneratedSigningKey>;
  /** Unsealed material per key id (immutable once written); saves an unseal and a parse per use. */
  readonly #material = new Map<string, { privateKey: KeyObject; certificateBase64: string }>();

  constructor(store: Store, clock: Clock, masterKey: MasterKey, options: SigningKeysOptions = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#masterKey = masterKey;
    this.#generateKey =
      options.generateKey ??
      // The X.509 library (and its DI container) loads only when a key is generated: a warm start never
      // needs it, and it costs a quarter second and 20 MB.
      (async (purpose, now) =>
        (await import('./self-signed-certificate.js')).generateSelfSignedRsa({
          commonName: COMMON_NAMES[purpose],
          // RS256 JWTs: 2048 bits, as AWS STS and every JOSE library expect; SAML keeps 3072.
          modulusLength: purpose === 'oidc-rs256' ? 2048 : SIGNING_KEY_MODULUS_LENGTH,
          curve: purpose === 'oidc-es256' ? 'P-256' : undefined,
          notBefore: now,
          validityYears: SIGNING_CERT_VALIDITY_YEARS,
        }));
  }

  /** The current key, created (and audited as `signing-key.created`) when there is none. */
  async ensureCurrent(purpose: SigningKeyPurpose, ctx?: AuditContext): Promise<SigningKey> {
    const existing = await this.#find(this.#store.db, purpose, 'current');
    if (existing) return this.#toKey(existing);
    const material = await this.#generateKey(purpose, this.#clock.now());
    const row = await this.#locked(purpose, async (trx) => {
      const raced = await this.#find(trx, purpose, 'current');
      if (raced) return raced;
      const now = iso(this.#clock.now());
      const created = await this.#insert(trx, purpose, material, 'current', now);
      await this.#audit(trx, ctx, 'signing-key.created', created);
      return created;
    });
    return this.#toKey(row);
  }

  /** The key that signs now. */
  async current(purpose: SigningKeyPurpose): Promise<SigningKey> {
    const row = await this.#find(this.#store.db, purpose, 'current');
    if (!row) throw new NoCurrentSigningKey(purpose);
    return this.#toKey(row);
  }

  /** What metadata publishes: the current key, then the staged next key if there is one. */
  async published(purpose: SigningKeyPurpose): Promise<SigningKey[]> {
    const rows = await this.#store.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('state', 'in', ['current', 'next'])
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const order = (s: string) => (s === 'current' ? 0 : 1);
    return rows.sort((a, b) => order(a.state) - order(b.state)).map((r) => this.#toKey(r));
  }

  /**
   * Stages a new `next` key: published in metadata from now on, used for signing only once activated.
   * Refused (Conflict) while another next key is staged or when there is no current key.
   */
  async rotate(purpose: SigningKeyPurpose, ctx: AuditContext): Promise<SigningKey> {
    await this.#assertCanStage(this.#store.db, purpose);
    const material = await this.#generateKey(purpose, this.#clock.now());
    const row = await this.#locked(purpose, async (trx) => {
      await this.#assertCanStage(trx, purpose);
      const staged = await this.#insert(trx, purpose, material, 'next', iso(this.#clock.now()));
      await this.#audit(trx, ctx, 'signing-key.staged', staged);
      return staged;
    });
    return this.#toKey(row);
  }

  /** next → current, old current → retired (no longer published). Conflict when nothing is staged. */
  async activateNext(purpose: SigningKeyPurpose, ctx: AuditContext): Promise<SigningKey> {
    const row = await this.#locked(purpose, async (trx) => {
      const next = await this.#find(trx, purpose, 'next');
      if (!next) throw new Conflict(`no next ${purpose} signing key is staged; rotate first`);
      return this.#activate(trx, ctx, next);
    });
    return this.#toKey(row);
  }

  /**
   * For the rotation worker: activates the staged key once it has been published for `graceMs`
   * (long enough for relying parties to have fetched the new metadata). Returns the newly current
   * key, or null when there is nothing due. Safe to run on every instance at once.
   */
  async rotateDue(
    purpose: SigningKeyPurpose,
    graceMs: number,
    ctx: AuditContext = { actor: systemActor('signing-key-rotation') },
  ): Promise<SigningKey | null> {
    if (!Number.isFinite(graceMs) || graceMs < 0)
      throw new RangeError('graceMs must be a non-negative number');
    const dueBy = iso(new Date(this.#clock.now().getTime() - graceMs));
    const pending = await this.#find(this.#store.db, purpose, 'next');
    if (!pending || pending.created_at > dueBy) return null;
    const row = await this.#locked(purpose, async (trx) => {
      const next = await this.#find(trx, purpose, 'next');
      if (!next || next.created_at > dueBy) return null;
      return this.#activate(trx, ctx, next);
    });
    return row ? this.#toKey(row) : null;
  }

  async #activate(trx: Db, ctx: AuditContext, next: Row): Promise<Row> {
    const now = iso(this.#clock.now());
    const previous = await trx
      .selectFrom('signing_keys')
      .select('id')
      .where('purpose', '=', next.purpose)
      .where('state', '=', 'current')
      .execute();
    await trx
      .updateTable('signing_keys')
      .set({ state: 'retired', retired_at: now })
      .where('purpose', '=', next.purpose)
      .where('state', '=', 'current')
      .execute();
    await trx
      .updateTable('signing_keys')
      .set({ state: 'current', activated_at: now })
      .where('id', '=', next.id)
      .execute();
    const activated: Row = { ...next, state: 'current', activated_at: now };
    await this.#audit(trx, ctx, 'signing-key.activated', activated, { retired: previous.map((p) => p.id) });
    return activated;
  }

  async #assertCanStage(db: Db, purpose: SigningKeyPurpose): Promise<void> {
    if (!(await this.#find(db, purpose, 'current'))) {
      throw new Conflict(`there is no current ${purpose} signing key to rotate from`);
    }
    const next = await this.#find(db, purpose, 'next');
    if (next) {
      throw new Conflict(
        `a next ${purpose} signing key (${next.id}) is already staged since ${next.created_at}; activate it first`,
      );
    }
  }

  #locked<T>(purpose: SigningKeyPurpose, fn: (trx: Db) => Promise<T>): Promise<T> {
    return this.#store.db.transaction().execute(async (trx) => {
      if (this.#store.engine === 'postgres') {
        await sql`select pg_advisory_xact_lock(hashtextextended(${`ferry/signing-keys/${purpose}`}, 0))`.execute(
          trx,
        );
      }
      return fn(trx);
    });
  }

  async #find(db: Db, purpose: SigningKeyPurpose, state: SigningKeyState): Promise<Row | undefined> {
    // Newest first: with the lock there is at most one current and one next per purpose anyway.
    return db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('state', '=', state)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  async #insert(
    trx: Db,
    purpose: SigningKeyPurpose,
    material: GeneratedSigningKey,
    state: 'current' | 'next',
    now: string,
  ): Promise<Row> {
    const id = randomUUID();
    const row: Row = {
      id,
      purpose,
      algorithm: algorithmOf(purpose),
      private_key_sealed: this.#masterKey.seal(material.privateKeyPem, sealContext(id)),
      certificate_pem: material.certificatePem,
      state,
      created_at: now,
      activated_at: state === 'current' ? now : null,
      retired_at: null,
    };
    await trx.insertInto('signing_keys').values(row).execute();
    return row;
  }

  async #audit(
    trx: Db,
    ctx: AuditContext | undefined,
    type: string,
    row: Row,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const actor: Actor = ctx?.actor ?? defaultActor;
    await appendAudit(trx, this.#store.engine, this.#clock, {
      type,
      outcome: 'success',
      actor,
      subject: row.id,
      ip: ctx?.ip ?? null,
      requestId: ctx?.requestId ?? null,
      data: {
        purpose: row.purpose,
        algorithm: row.algorithm,
        state: row.state,
        certificateSha256: new X509Certificate(row.certificate_pem).fingerprint256,
        ...extra,
      },
    });
  }

  #toKey(row: Row): SigningKey {
    let material = this.#material.get(row.id);
    if (!material) {
      const pem = this.#masterKey.unseal(row.private_key_sealed, sealContext(row.id));
      material = {
        privateKey: createPrivateKey({ key: pem, format: 'pem' }),
        certificateBase64: new X509Certificate(row.certificate_pem).raw.toString('base64'),
      };
      this.#material.set(row.id, material);
    }
    return {
      id: row.id,
      purpose: row.purpose as SigningKeyPurpose,
      algorithm: algorithmOf(row.purpose as SigningKeyPurpose),
      certificatePem: row.certificate_pem,
      certificateBase64: material.certificateBase64,
      privateKey: material.privateKey,
      state: row.state,
      createdAt: row.created_at,
      activatedAt: row.activated_at,
    };
  }
}

/** Sealing context: a sealed private key can't be moved to another row. */
export function sealContext(id: string): string {
  return `signing-key:${id}`;
}
