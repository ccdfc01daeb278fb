import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

/** Serials reserved per round trip to the database. */
export const SERIAL_BLOCK = 1000;

/**
 * Certificate serials, unique across every instance sharing the database, without a write to one
 * shared row per certificate (issue 16): a block of SERIAL_BLOCK serials is reserved by one committed
 * update of `ssh_serials` and handed out from memory. Serials an instance reserved but did not use
 * before it stopped are never used by anyone (gaps are harmless: sshd and the KRL only need each
 * serial to name one certificate).
 */
export class SerialBlocks {
  #next = 0n;
  #end = 0n;
  #reserving: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly block: number = SERIAL_BLOCK,
  ) {}

  async next(): Promise<bigint> {
    while (this.#next >= this.#end) {
      this.#reserving ??= this.#reserve().finally(() => {
        this.#reserving = undefined;
      });
      await this.#reserving;
    }
    const serial = this.#next;
    this.#next += 1n;
    return serial;
  }

  async #reserve(): Promise<void> {
    // One statement, committed on its own: the block is ours before any certificate carries it.
    const row = await this.db
      .updateTable('ssh_serials')
      .set((eb) => ({ last_serial: eb('last_serial', '+', this.block) }))
      .where('id', '=', 1)
      .returning('last_serial')
      .executeTakeFirstOrThrow();
    const last = BigInt(row.last_serial);
    this.#next = last - BigInt(this.block) + 1n;
    this.#end = last + 1n;
  }
}
