import { createPrivateKey, generateKeyPair, type KeyObject, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { type Kysely, sql } from 'kysely';
import { type AuditContext, systemActor } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { Conflict } from '../errors.js';
import type { Store } from '../store/open.js';
import type { Database, SshCaKeysTable } from '../store/schema.js';
import type { MasterKey } from './master-key.js';

/** What a CA key certifies: people's keys (TrustedUserCAKeys) or servers' keys (@cert-authority). */
export type SshCaUse = 'user' | 'host';
/** The signature each CA key makes: Ed25519, or RSA with SHA-512 for servers without Ed25519. */
export type SshCaAlgorithm = 'ssh-ed25519' | 'rsa-sha2-512';
export type SshCaState = 'next' | 'current' | 'retired';

/** A CA key; `privateKey` never leaves the process (never log it). */
export interface SshCaKey {
  id: string;
  use: SshCaUse;
  algorithm: SshCaAlgorithm;
  /** `<type> <base64>` */
  publicKey: string;
  privateKey: KeyObject;
  state: SshCaState;
  createdAt: string;
  activatedAt: string | null;
}

export const SSH_CA_RSA_BITS = 3072;
/**
 * How long an instance signs with the current key it last read before reading again (issue 16: the
 * read cost as much as the signature). Changes made here take effect at once; another instance's
 * activation within this long (servers keep trusting a retired key until they next fetch ca.pub).
 */
export const CURRENT_KEY_CACHE_MS = 1000;
const generate = promisify(generateKeyPair);
type Db = Kysely<Database>;

/** Public key line of a fresh key pair (the OpenSSH encoding lives in ssh/, a floor above). */
export type PublicLineOf = (privateKey: KeyObject) => string;

/**
 * The SSH certificate authority's keys, sealed with the master key at rest. Like SigningKeys, a
 * rotation stages a `next` key that ca.pub and known_hosts publish beside the current one before it
 * signs anything, so servers learn it before the first certificate it signed arrives. Changes take a
 * per-(use, algorithm) lock and re-read, so instances starting at once end with one current key.
 */
export class SshCaKeys {
  readonly #material = new Map<string, KeyObject>();
  /** the current key per use and algorithm as last read, and until when (clock ms) it is taken as is */
  readonly #current = new Map<string, { key: SshCaKey; until: number }>();
  /** moves when a change of keys begins and when it ends (see signing()) */
  #epoch = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
    private readonly publicLineOf: PublicLineOf,
  ) {}

  /** The current key for a use and algorithm, created (and audited) when there is none. */
  async ensureCurrent(use: SshCaUse, algorithm: SshCaAlgorithm, ctx?: AuditContext): Promise<SshCaKey> {
    const existing = await this.#find(this.store.db, use, algorithm, 'current');
    if (existing) return this.#toKey(existing);
    const privateKey = await newKey(algorithm);
    const row = await this.#locked(use, algorithm, async (trx) => {
      const raced = await this.#find(trx, use, algorithm, 'current');
      if (raced) return raced;
      const created = await this.#insert(trx, use, algorithm, privateKey, 'current');
      await this.#audit(trx, ctx, 'ssh-ca-key.created', created);
      return created;
    });
    return this.#toKey(row);
  }

  /**
   * The key that signs now: ensureCurrent's answer, read again at most every CURRENT_KEY_CACHE_MS
   * (at once after a rotation or activation made by this instance).
   */
  async signing(use: SshCaUse, algorithm: SshCaAlgorithm): Promise<SshCaKey> {
    const name = `${use}/${algorithm}`;
    const now = this.clock.now().getTime();
    const cached = this.#current.get(name);
    if (cached && now < cached.until && now >= cached.until - CURRENT_KEY_CACHE_MS) return cached.key;
    const epoch = this.#epoch;
    const key = await this.ensureCurrent(use, algorithm);
    // A change of keys began or ended while this read ran: its answer may be the retired key; not kept.
    if (epoch === this.#epoch) this.#current.set(name, { key, until: now + CURRENT_KEY_CACHE_MS });
    return key;
  }

  /** Keys servers should trust now: current and staged, every algorithm, Ed25519 first. */
  async published(use: SshCaUse): Promise<SshCaKey[]> {
    const rows = await this.store.db
      .selectFrom('ssh_ca_keys')
      .selectAll()
      .where('use', '=', use)
      .where('state', 'in', ['current', 'next'])
      .orderBy('algorithm')
      .orderBy('created_at')
      .execute();
    const rank = (r: SshCaKeysTable) =>
      (r.algorithm === 'ssh-ed25519' ? 0 : 2) + (r.state === 'current' ? 0 : 1);
    return rows.sort((a, b) => rank(a) - rank(b)).map((r) => this.#toKey(r));
  }

  /** Every key of a use that may still have signed a live certificate (for the KRL). */
  async all(use: SshCaUse): Promise<SshCaKey[]> {
    const rows = await this.store.db.selectFrom('ssh_ca_keys').selectAll().where('use', '=', use).execute();
    return rows.map((r) => this.#toKey(r));
  }

  /** Stages a next key. Conflict when one is staged already or there is no current key. */
  async rotate(use: SshCaUse, algorithm: SshCaAlgorithm, ctx: AuditContext): Promise<SshCaKey> {
    const privateKey = await newKey(algorithm);
    const row = await this.#locked(use, algorithm, async (trx) => {
      if (!(await this.#find(trx, use, algorithm, 'current')))
        throw new Conflict(`there is no current ${use} CA key (${algorithm}) to rotate from`);
      if (await this.#find(trx, use, algorithm, 'next'))
        throw new Conflict(`a next ${use} CA key (${algorithm}) is already staged; activate it first`);
      const staged = await this.#insert(trx, use, algorithm, privateKey, 'next');
      await this.#audit(trx, ctx, 'ssh-ca-key.staged', staged);
      return staged;
    });
    return this.#toKey(row);
  }

  /** next → current, old current → retired (still listed for the KRL, no longer published). */
  async activateNext(use: SshCaUse, algorithm: SshCaAlgorithm, ctx: AuditContext): Promise<SshCaKey> {
    const row = await this.#locked(use, algorithm, async (trx) => {
      const next = await this.#find(trx, use, algorithm, 'next');
      if (!next) throw new Conflict(`no next ${use} CA key (${algorithm}) is staged; rotate first`);
      const now = iso(this.clock.now());
      await trx
        .updateTable('ssh_ca_keys')
        .set({ state: 'retired', retired_at: now })
        .where('use', '=', use)
        .where('algorithm', '=', algorithm)
        .where('state', '=', 'current')
        .execute();
      await trx
        .updateTable('ssh_ca_keys')
        .set({ state: 'current', activated_at: now })
        .where('id', '=', next.id)
        .execute();
      const activated: SshCaKeysTable = { ...next, state: 'current', activated_at: now };
      await this.#audit(trx, ctx, 'ssh-ca-key.activated', activated);
      return activated;
    });
    return this.#toKey(row);
  }

  #locked<T>(use: SshCaUse, algorithm: SshCaAlgorithm, fn: (trx: Db) => Promise<T>): Promise<T> {
    // Forget the signing key before and after, and move the epoch both times: a read meanwhile may
    // have seen the old key, and must not put it back in the cache once the change has committed.
    this.#epoch++;
    this.#current.clear();
    return this.store.db
      .transaction()
      .execute(async (trx) => {
        if (this.store.engine === 'postgres') {
          await sql`select pg_advisory_xact_lock(hashtextextended(${`ferry/ssh-ca/${use}/${algorithm}`}, 0))`.execute(
            trx,
          );
        }
        return fn(trx);
      })
      .finally(() => {
        this.#epoch++;
        this.#current.clear();
      });
  }

  #find(db: Db, use: SshCaUse, algorithm: SshCaAlgorithm, state: SshCaState) {
    return db
      .selectFrom('ssh_ca_keys')
      .selectAll()
      .where('use', '=', use)
      .where('algorithm', '=', algorithm)
      .where('state', '=', state)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
  }

  async #insert(
    trx: Db,
    use: SshCaUse,
    algorithm: SshCaAlgorithm,
    privateKey: KeyObject,
    state: 'current' | 'next',
  ): Promise<SshCaKeysTable> {
    const id = randomUUID();
    const now = iso(this.clock.now());
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const row: SshCaKeysTable = {
      id,
      use,
      algorithm,
      private_key_sealed: this.masterKey.seal(pem, sealContext(id)),
      public_key: this.publicLineOf(privateKey),
      state,
      created_at: now,
      activated_at: state === 'current' ? now : null,
      retired_at: null,
    };
    await trx.insertInto('ssh_ca_keys').values(row).execute();
    this.#material.set(id, privateKey);
    return row;
  }

  async #audit(trx: Db, ctx: AuditContext | undefined, type: string, row: SshCaKeysTable): Promise<void> {
    await appendAudit(trx, this.store.engine, this.clock, {
      type,
      outcome: 'success',
      actor: ctx?.actor ?? systemActor('ssh-ca'),
      subject: row.id,
      ip: ctx?.ip ?? null,
      requestId: ctx?.requestId ?? null,
      data: { use: row.use, algorithm: row.algorithm, state: row.state, publicKey: row.public_key },
    });
  }

  #toKey(row: SshCaKeysTable): SshCaKey {
    let privateKey = this.#material.get(row.id);
    if (!privateKey) {
      privateKey = createPrivateKey(this.masterKey.unseal(row.private_key_sealed, sealContext(row.id)));
      this.#material.set(row.id, privateKey);
    }
    return {
      id: row.id,
      use: row.use,
      algorithm: row.algorithm,
      publicKey: row.public_key,
      privateKey,
      state: row.state,
      createdAt: row.created_at,
      activatedAt: row.activated_at,
    };
  }
}

async function newKey(algorithm: SshCaAlgorithm): Promise<KeyObject> {
  if (algorithm === 'ssh-ed25519') return (await generate('ed25519')).privateKey;
  return (await generate('rsa', { modulusLength: SSH_CA_RSA_BITS })).privateKey;
}

/** Sealing context: a sealed private key can't be moved to another row. */
export function sealContext(id: string): string {
  return `ssh-ca-key:${id}`;
}
